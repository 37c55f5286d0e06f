"""Parameter files: pretrained initialisation, snapshots with optimizer state, all as .params
(MXNet's NDArray format, no pickle) written under a temporary name and renamed."""
import collections
import glob
import json
import logging
import os
import re

import mxnet as mx

from cores.config import save_config
from cores.errors import SECError
from cores.io import atomic_path
from cores.stages import Schedule, prefix as stage_prefix, weights_path
from cores.symbols.layers import new_param_names

WEIGHTS_HELP = (
    "Convert DeepLab's vgg16_20M.caffemodel, the Caffe ResNet-50 or a Gluon model-zoo file "
    "with tools/convert_weights.py (README.md, 'Pretrained weights'); or set RANDOM_INIT: true "
    "for toy runs.")


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
        if mean and max(abs(a - b) for a, b in zip(mean, cfg.PIXEL_MEAN)) > 0.5:
            raise CheckpointError("%s expects PIXEL_MEAN %s (%s) but the config has %s"
                                  % (path, mean, sidecar, cfg.PIXEL_MEAN))
    arg, aux = load_params_file(path)
    return _check(path, symbol, input_shapes, arg, aux, skip=new_param_names(symbol))


def save_params(path, arg, aux):
    """``arg``/``aux`` as one .params file ('arg:'/'aux:' names), written atomically."""
    payload = {"arg:" + k: mx.nd.array(v) for k, v in arg.items()}
    payload.update({"aux:" + k: mx.nd.array(v) for k, v in aux.items()})
    with atomic_path(path) as tmp:
        mx.nd.save(tmp, payload)


def save_weights(path, arg, aux, meta):
    """Pretrained weights for MODEL_PATH: ``path`` plus a JSON sidecar ``meta`` recording the
    input the first convolution expects (channel_order, pixel_mean) and the source."""
    save_params(path, arg, aux)
    with atomic_path(os.path.splitext(path)[0] + ".json") as tmp:
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=1)


def snapshot_path(prefix, epoch):
    return "%s-%04d.params" % (prefix, epoch)


def latest_epoch(prefix):
    """The highest epoch with a complete snapshot under ``prefix``, or 0."""
    epochs = [int(m.group(1)) for p in glob.glob(prefix + "-*.params")
              for m in [re.match(re.escape(prefix) + r"-(\d{4})\.params$", p)] if m]
    return max(epochs, default=0)


def save_snapshot(prefix, epoch, arg, aux, cfg, optimizer_state=None, iteration=None):
    """prefix-NNNN.params (+ prefix-NNNN.optimizer.params) and the effective config beside
    them (prefix-config.json); ``iteration``, the number of updates so far, is stored in the
    snapshot (``meta:iteration``)."""
    payload = {"arg:" + k: v for k, v in arg.items()}
    if iteration is not None:
        payload["meta:iteration"] = mx.nd.array([iteration], dtype="int64")
    payload.update({"aux:" + k: v for k, v in aux.items()})
    if optimizer_state:
        with atomic_path("%s-%04d.optimizer.params" % (prefix, epoch)) as tmp:
            mx.nd.save(tmp, optimizer_state)
    with atomic_path(snapshot_path(prefix, epoch)) as tmp:
        mx.nd.save(tmp, payload)
    save_config(cfg, prefix + "-config.json")


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
    state_path = "%s-%04d.optimizer.params" % (prefix, epoch)
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
    path = prefix + "-config.json"
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError("cannot read %s: %s" % (path, e)) from None
    return {k: (saved[k], cfg[k]) for k in keys if k in saved and saved[k] != cfg[k]}


def snapshot_iteration(prefix, epoch):
    """The iteration stored in snapshot ``epoch`` (None for snapshots without one)."""
    try:
        loaded = mx.nd.load(snapshot_path(prefix, epoch))
    except Exception as e:
        raise CheckpointError("cannot read %s: %s" % (snapshot_path(prefix, epoch),
                                                      _first_line(e))) from None
    value = loaded.get("meta:iteration") if isinstance(loaded, dict) else None
    return int(value.asnumpy()[0]) if value is not None else None


Start = collections.namedtuple("Start", "arg aux optimizer_state begin_epoch")


def initial_params(cfg, kind, symbol, shapes, resume=False, epoch=None,
                   allow_config_change=False):
    """Where stage ``kind`` (cores/stages.py) starts, as a ``Start``: its snapshot ``epoch``
    (continue training after that epoch), or its latest with ``resume``, else the pretrained
    weights (epoch 0). The only way any stage gets its initial parameters. A resume whose
    training config (RESUME_KEYS + the stage's keys) differs from the one saved with the
    snapshots is refused, listing the keys, unless ``allow_config_change``."""
    prefix, schedule = stage_prefix(cfg, kind), Schedule(cfg, kind)
    if epoch is not None and epoch < 1:
        raise CheckpointError("--epoch %d: snapshot epochs start at 1 (leave --epoch out to "
                              "start from the pretrained weights)" % epoch)
    begin = epoch or (latest_epoch(prefix) if resume else 0)
    if resume and not begin:
        logging.warning("--resume: no snapshot %s-NNNN.params yet; starting from the "
                        "beginning", prefix)
    if not begin:
        arg, aux = pretrained_params(cfg, symbol, shapes)
        return Start(arg, aux, None, 0)
    changed = config_changes(prefix, cfg, RESUME_KEYS + schedule.resume_keys)
    if changed and not allow_config_change:
        raise CheckpointError(
            "cannot resume %s: the training config differs from the one saved with it (%s): %s. "
            "Resume with the saved values, start a new run in another SNAPSHOT_PATH, or pass "
            "--allow-config-change to resume anyway" % (
                snapshot_path(prefix, begin), prefix + "-config.json",
                "; ".join("%s %r -> %r" % (k, a, b) for k, (a, b) in sorted(changed.items()))))
    if changed:
        logging.warning("resuming with changed config: %s", ", ".join(sorted(changed)))
    arg, aux, state = load_snapshot(prefix, begin, symbol, shapes)
    stored = snapshot_iteration(prefix, begin)
    if stored is not None and stored != begin * schedule.epoch_size:
        raise CheckpointError(
            "cannot resume %s: it was saved at iteration %d, but epoch %d with the current "
            "epoch size %d would restart at iteration %d; resume with the saved epoch size "
            "(%s)" % (snapshot_path(prefix, begin), stored, begin, schedule.epoch_size,
                      begin * schedule.epoch_size, prefix + "-config.json"))
    logging.info("resuming from %s (iteration %s)", snapshot_path(prefix, begin), stored)
    return Start(arg, aux, state, begin)
