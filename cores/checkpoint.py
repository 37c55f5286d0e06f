"""Parameter files: pretrained initialisation, snapshots with optimizer state, all as .params
(MXNet's NDArray format, no pickle) written under a temporary name and renamed."""
import collections
import json
import logging
import os

import mxnet as mx
import numpy as np

from cores.errors import OutputError, SECError
from cores.io import atomic_path, save_config
from cores.stages import (Schedule, config_path, int8_paths, latest_epoch,  # noqa: F401
                          optimizer_path, prefix as stage_prefix, run_files, snapshot_epochs,
                          snapshot_path, weights_path)
from cores.symbols.layers import new_param_names

WEIGHTS_HELP = (
    "Convert DeepLab's vgg16_20M.caffemodel, the Caffe ResNet-50 or a Gluon model-zoo file "
    "with tools/convert_weights.py (docs/weights.md), or pretrain one on your image labels "
    "with demo/pretrain_backbone.py; or set RANDOM_INIT: true for toy runs.")


class CheckpointError(SECError):
    """A missing or mismatching parameter file; the message names it."""


def _first_line(error):
    """MXNet's messages carry its C++ stack trace after the first lines: keep the reason."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    reason = [line for line in lines if "Check failed" in line or "Error" in line]
    return (reason or lines or [type(error).__name__])[0].strip()


def load_params_file(path):
    """(arg_params, aux_params) from a .params file with or without 'arg:'/'aux:' prefixes."""
    if not os.path.isfile(path):
        raise CheckpointError("parameter file not found: %s" % path)
    try:
        loaded = mx.nd.load(path)
    except Exception as e:
        raise CheckpointError("cannot read parameter file %s (truncated or not an MXNet "
                              ".params file): %s" % (path, _first_line(e))) from None
    if not isinstance(loaded, dict):
        raise CheckpointError("%s holds a list of arrays, not named parameters" % path)
    arg, aux = {}, {}
    for key, value in loaded.items():
        kind, _, name = key.partition(":")
        if not name:
            kind, name = "", key
        if kind == "meta":
            continue
        (aux if kind == "aux" or (not kind and "moving_" in name) else arg)[name] = value
    return arg, aux


def expected_shapes(symbol, input_shapes):
    """{name: shape} of the symbol's parameters and auxiliary states."""
    arg_shapes, _, aux_shapes = symbol.infer_shape(**dict(input_shapes))
    args = dict(zip(symbol.list_arguments(), arg_shapes))
    for name in input_shapes:
        args.pop(name, None)
    return args, dict(zip(symbol.list_auxiliary_states(), aux_shapes))


def _check(path, symbol, input_shapes, arg, aux, skip=()):
    want_arg, want_aux = expected_shapes(symbol, input_shapes)
    problems = []
    for want, have in ((want_arg, arg), (want_aux, aux)):
        for name, shape in want.items():
            if name in skip:
                continue
            if name not in have:
                problems.append("%s is missing" % name)
            elif tuple(have[name].shape) != tuple(shape):
                problems.append("%s has shape %s, the network needs %s"
                                % (name, tuple(have[name].shape), tuple(shape)))
    if problems:
        more = "" if len(problems) <= 8 else " (and %d more)" % (len(problems) - 8)
        raise CheckpointError("%s does not match the network: %s%s"
                              % (path, "; ".join(problems[:8]), more))
    return ({n: arg[n] for n in want_arg if n in arg and n not in skip},
            {n: aux[n] for n in want_aux if n in aux and n not in skip})


def pretrained_params(cfg, symbol, input_shapes):
    """Initial (arg, aux) for a network from MODEL_PATH/<BASE_NET>.params: every layer that is
    not new must be there with the right shape; new layers keep their own initialisers."""
    path = weights_path(cfg)
    if not os.path.isfile(path):
        if cfg.RANDOM_INIT:
            logging.warning("no %s: RANDOM_INIT is set, every layer starts from random weights",
                            path)
            return {}, {}
        raise CheckpointError("pretrained weights not found: %s. %s" % (path, WEIGHTS_HELP))
    sidecar = os.path.splitext(path)[0] + ".json"
    if os.path.isfile(sidecar):
        try:
            with open(sidecar) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise CheckpointError("cannot read %s, the sidecar of %s: %s" % (sidecar, path, e)) \
                from None
        if not isinstance(meta, dict):
            raise CheckpointError("%s, the sidecar of %s, is not a JSON object" % (sidecar,
                                                                                   path))
        order, mean = meta.get("channel_order"), meta.get("pixel_mean")
        if order and order != cfg.CHANNEL_ORDER:
            raise CheckpointError("%s expects %s input (%s) but CHANNEL_ORDER=%s; set "
                                  "CHANNEL_ORDER and PIXEL_MEAN to match the weights"
                                  % (path, order, sidecar, cfg.CHANNEL_ORDER))
        for key in ("PIXEL_MEAN", "PIXEL_MEAN_CUES"):      # the weights start every network
            if mean and max(abs(a - b) for a, b in zip(mean, cfg[key])) > 0.5:
                raise CheckpointError("%s expects a pixel mean of %s (%s) but the config has "
                                      "%s=%s; set PIXEL_MEAN and PIXEL_MEAN_CUES to match the "
                                      "weights" % (path, mean, sidecar, key, cfg[key]))
    arg, aux = load_params_file(path)
    from cores.symbols.layers import copied_params
    arg.update(copied_params(symbol, arg))
    return _check(path, symbol, input_shapes, arg, aux, skip=new_param_names(symbol))


def nd_save(path, payload):
    """mx.nd.save under a temporary name; a full disk or a file-size limit is one error naming
    ``path`` (MXNet's own is a C++ stack trace), and nothing half written is left."""
    with atomic_path(path) as tmp:
        try:
            mx.nd.save(tmp, payload)
        except mx.base.MXNetError as e:
            raise OutputError("cannot write %s: %s (disk full or a file-size limit?)"
                              % (path, _first_line(e))) from None


def save_params(path, arg, aux):
    """``arg``/``aux`` as one .params file ('arg:'/'aux:' names), written atomically."""
    payload = {"arg:" + k: mx.nd.array(v) for k, v in arg.items()}
    payload.update({"aux:" + k: mx.nd.array(v) for k, v in aux.items()})
    nd_save(path, payload)


def save_weights(path, arg, aux, meta):
    """Pretrained weights for MODEL_PATH: ``path`` plus a JSON sidecar ``meta`` recording the
    input the first convolution expects (channel_order, pixel_mean) and the source."""
    save_params(path, arg, aux)
    with atomic_path(os.path.splitext(path)[0] + ".json") as tmp:
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=1)


def _config_array(cfg):
    text = json.dumps(dict(cfg), sort_keys=True).encode("utf-8")
    return mx.nd.array(np.frombuffer(text, np.uint8), dtype="uint8")


def save_snapshot(prefix, epoch, arg, aux, cfg, optimizer_state=None, iteration=None):
    """prefix-NNNN.params (+ prefix-NNNN.optimizer.params) and the effective config beside
    them (prefix-config.json); ``iteration``, the number of updates so far, and the config the
    snapshot was trained with are stored in the snapshot itself (``meta:iteration``,
    ``meta:config``), so that every snapshot says which run it belongs to."""
    payload = {"arg:" + k: v for k, v in arg.items()}
    if iteration is not None:
        payload["meta:iteration"] = mx.nd.array([iteration], dtype="int64")
    payload["meta:config"] = _config_array(cfg)
    payload.update({"aux:" + k: v for k, v in aux.items()})
    if optimizer_state:
        nd_save(optimizer_path(prefix, epoch), optimizer_state)
    nd_save(snapshot_path(prefix, epoch), payload)
    save_config(cfg, config_path(prefix))


def load_snapshot(prefix, epoch, symbol, input_shapes):
    """(arg, aux, optimizer state or None) of a snapshot, checked against the network."""
    path = snapshot_path(prefix, epoch)
    if not os.path.isfile(path):
        found = latest_epoch(prefix)
        raise CheckpointError("snapshot not found: %s (latest epoch there: %s)"
                              % (path, found or "none"))
    hint = (" Resume from the snapshot before it with --epoch %d, or delete it" % (epoch - 1)
            if epoch > 1 else "")
    try:
        arg, aux = load_params_file(path)
    except CheckpointError as e:
        raise CheckpointError(str(e) + "." + hint) from None
    arg, aux = _check(path, symbol, input_shapes, arg, aux)
    state_path = optimizer_path(prefix, epoch)
    state = None
    if os.path.isfile(state_path):
        try:
            state = mx.nd.load(state_path)
        except Exception as e:
            raise CheckpointError("cannot read optimizer state %s (truncated?): %s.%s"
                                  % (state_path, _first_line(e), hint)) from None
    return arg, aux, state


# Keys that decide what a run computes: a resume that changes one of them would silently mix two
# trainings (and cut the loss history at the wrong iteration).
RESUME_KEYS = ("BASE_NET", "WIDTH_MULT", "INPUT_SIZE", "POOLING_CONVENTION", "CLASS_NUM",
               "CHANNEL_ORDER", "PIXEL_MEAN", "DROPOUT", "SEED", "MOMENTUM", "WD", "LR_FACTOR",
               "WARMUP_ITER", "CLIP_GRADIENT")


def config_changes(prefix, cfg, keys):
    """{key: (saved, now)} for the ``keys`` whose value differs from the config saved beside
    the snapshots of ``prefix`` (empty when none was saved)."""
    return differences(saved_config(prefix), cfg, keys)


def snapshot_meta(prefix, epoch):
    """(iteration, config) stored in snapshot ``epoch``; either is None for snapshots written
    before it was stored."""
    try:
        loaded = mx.nd.load(snapshot_path(prefix, epoch))
    except Exception as e:
        raise CheckpointError("cannot read %s: %s" % (snapshot_path(prefix, epoch),
                                                      _first_line(e))) from None
    if not isinstance(loaded, dict):
        return None, None
    value, text = loaded.get("meta:iteration"), loaded.get("meta:config")
    iteration = int(value.asnumpy()[0]) if value is not None else None
    config = None
    if text is not None:
        try:
            config = json.loads(bytes(text.asnumpy().astype(np.uint8)).decode("utf-8"))
        except ValueError:
            config = None
    return iteration, config


def snapshot_iteration(prefix, epoch):
    """The iteration stored in snapshot ``epoch`` (None for snapshots without one)."""
    return snapshot_meta(prefix, epoch)[0]


def saved_config(prefix):
    """The config saved beside ``prefix``'s snapshots (prefix-config.json), or None."""
    path = config_path(prefix)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError("cannot read %s: %s" % (path, e)) from None


def differences(saved, cfg, keys=None):
    """{key: (saved, now)} where the ``saved`` config differs from ``cfg``: over ``keys``, or
    over every key but the folders (*_PATH) when None."""
    if not saved:
        return {}
    keys = keys if keys is not None else [k for k in cfg if not k.endswith("_PATH")]
    return {k: (saved[k], cfg[k]) for k in keys if k in saved and saved[k] != cfg[k]}


def format_differences(changed, limit=8):
    items = ["%s %r -> %r" % (k, a, b) for k, (a, b) in sorted(changed.items())]
    more = "" if len(items) <= limit else " (and %d more)" % (len(items) - limit)
    return "; ".join(items[:limit]) + more


def _epoch_ranges(epochs):
    """[1, 2, 3, 6] -> '1-3, 6'."""
    runs, out = [], []
    for e in epochs:
        if runs and e == runs[-1][1] + 1:
            runs[-1][1] = e
        else:
            runs.append([e, e])
    for a, b in runs:
        out.append("%d" % a if a == b else "%d-%d" % (a, b))
    return ", ".join(out)


def stage_files(prefix, after=0):
    """The files of ``prefix``'s run that a run starting after epoch ``after`` would not
    write again: later snapshots with their optimizer states, INT8 caches and, for a run from
    the beginning, the config, loss history, loss figure and classification report."""
    files = []
    for epoch in snapshot_epochs(prefix):
        if epoch > after:
            files += [snapshot_path(prefix, epoch), optimizer_path(prefix, epoch)]
            files += list(int8_paths(snapshot_path(prefix, epoch)))
    if not after:
        files += run_files(prefix)
    return [f for f in files if os.path.isfile(f)]


def check_fresh_start(prefix, cfg, begin, overwrite=False, remove=True):
    """A run that starts after epoch ``begin`` (0: from the beginning) into a folder that
    already holds later snapshots of the same stage would keep them beside its own, and eval
    or --resume would later pick them up: refuse, naming the folder, the epochs and how their
    config differs, unless ``overwrite``; then delete them (on the process that writes,
    ``remove``)."""
    later = [e for e in snapshot_epochs(prefix) if e > begin]
    if not later:
        return []
    folder, name = os.path.split(prefix)
    if not overwrite:
        _, theirs = snapshot_meta(prefix, later[-1])
        changed = differences(theirs or saved_config(prefix), cfg)
        what = ("their config differs from this one in: " + format_differences(changed)
                if changed else "their config equals this one")
        start = "from the beginning" if not begin else "from epoch %d" % begin
        raise CheckpointError(
            "%s already holds snapshots %s-NNNN.params of epochs %s from another run (%s). "
            "A new run %s would mix with them. Continue that run with --resume, train into "
            "another folder (--set SNAPSHOT_PATH=...), or pass --overwrite to delete them "
            "and start again" % (folder or ".", name, _epoch_ranges(later), what, start))
    files = stage_files(prefix, begin)
    if remove:
        for path in files:
            os.remove(path)
        logging.info("--overwrite: deleted %d files of the earlier run in %s (epochs %s)",
                     len(files), folder or ".", _epoch_ranges(later))
    return files


def check_snapshot_config(prefix, epoch, cfg, stage, what="evaluating"):
    """Say (a warning) when snapshot ``epoch`` was trained with a config that differs from
    ``cfg`` in the keys that decide what it computes, or lies past the end of ``cfg``'s
    schedule (a snapshot of a longer, earlier run). Returns the list of warnings."""
    schedule = Schedule(cfg, stage)
    iteration, theirs = snapshot_meta(prefix, epoch)
    keys = RESUME_KEYS + schedule.resume_keys + (schedule.max_iter_key,)
    changed = differences(theirs or saved_config(prefix), cfg, keys)
    notes = []
    if changed:
        notes.append("%s %s, trained with a config that differs from this one: %s"
                     % (what, snapshot_path(prefix, epoch), format_differences(changed)))
    if epoch > schedule.final_epoch or (iteration or 0) > schedule.max_iter:
        notes.append("%s %s (iteration %s), which lies past the end of this config's schedule "
                     "(%d iterations, last epoch %d): it comes from another, longer run"
                     % (what, snapshot_path(prefix, epoch), iteration, schedule.max_iter,
                        schedule.final_epoch))
    for note in notes:
        logging.warning("WARNING: %s", note)
    return notes


Start = collections.namedtuple("Start", "arg aux optimizer_state begin_epoch")


def initial_params(cfg, stage, symbol, shapes, resume=False, epoch=None,
                   allow_config_change=False, overwrite=False, writer=True):
    """Where ``stage`` (cores/stages.py, or a method of cores/methods/) starts, as a ``Start``: its snapshot ``epoch``
    (continue training after that epoch), or its latest with ``resume``, else the pretrained
    weights (epoch 0). The only way any stage gets its initial parameters. Later snapshots of
    an earlier run in the same folder are refused unless ``overwrite`` (``check_fresh_start``;
    deleted by the ``writer`` process). A resume whose training config (RESUME_KEYS + the
    stage's keys) differs from the one stored with the snapshot is refused, listing the keys,
    unless ``allow_config_change``; so is one past the end of the schedule."""
    prefix, schedule = stage_prefix(cfg, stage), Schedule(cfg, stage)
    if epoch is not None and epoch < 1:
        raise CheckpointError("--epoch %d: snapshot epochs start at 1 (leave --epoch out to "
                              "start from the pretrained weights)" % epoch)
    begin = epoch or (latest_epoch(prefix) if resume else 0)
    if resume and not begin:
        logging.warning("--resume: no snapshot %s-NNNN.params yet; starting from the "
                        "beginning", prefix)
    check_fresh_start(prefix, cfg, begin, overwrite, writer)
    if not begin:
        arg, aux = pretrained_params(cfg, symbol, shapes)
        return Start(arg, aux, None, 0)
    arg, aux, state = load_snapshot(prefix, begin, symbol, shapes)
    stored, theirs = snapshot_meta(prefix, begin)
    changed = differences(theirs or saved_config(prefix), cfg,
                          RESUME_KEYS + schedule.resume_keys)
    if changed and not allow_config_change:
        raise CheckpointError(
            "cannot resume %s: the training config differs from the one saved with it (%s): %s. "
            "Resume with the saved values, start a new run in another SNAPSHOT_PATH, or pass "
            "--allow-config-change to resume anyway" % (
                snapshot_path(prefix, begin), "stored in the snapshot" if theirs
                else config_path(prefix), format_differences(changed, limit=100)))
    if changed:
        logging.warning("resuming with changed config: %s", ", ".join(sorted(changed)))
    if stored is not None and stored != begin * schedule.epoch_size:
        raise CheckpointError(
            "cannot resume %s: it was saved at iteration %d, but epoch %d with the current "
            "epoch size %d would restart at iteration %d; resume with the saved epoch size "
            "(%s)" % (snapshot_path(prefix, begin), stored, begin, schedule.epoch_size,
                      begin * schedule.epoch_size, config_path(prefix)))
    if begin > schedule.final_epoch:
        raise CheckpointError(
            "cannot resume %s (iteration %s): this config's schedule ends at iteration %d "
            "(%s), epoch %d, so the snapshot comes from a longer run. Raise %s to continue "
            "it, or start again with --overwrite"
            % (snapshot_path(prefix, begin), stored, schedule.max_iter, schedule.max_iter_key,
               schedule.final_epoch, schedule.max_iter_key))
    logging.info("resuming from %s (iteration %s)", snapshot_path(prefix, begin), stored)
    return Start(arg, aux, state, begin)
