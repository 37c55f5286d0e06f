"""INT8 inference on the CPU: post-training quantization of a snapshot's inference network with
oneDNN (MXNet's MKLDNN backend), calibrated on a fixed, seeded sample of train_aug images and
cached beside the snapshot (``<snapshot>-int8-symbol.json``, ``-int8.params``, ``-int8.json``).

The cache is reused only while its settings (the snapshot file's size and time, the
calibration mode, sample and seed, the input pipeline, the MXNet version) match; otherwise it
is rebuilt. The settings file is written last, so a killed build leaves no cache that would be
taken for complete.
"""
import json
import logging
import os

import mxnet as mx
import numpy as np

from cores import checkpoint
from cores.errors import SECError
from cores.io import atomic_path

CALIB_MODES = ("entropy", "naive")


class Int8Error(SECError):
    """--int8 cannot run here."""


def check_support(ctx):
    """Stop with one line where oneDNN's quantized operators cannot run."""
    gpus = [c for c in ctx if c.device_type != "cpu"]
    if gpus:
        raise Int8Error("--int8 runs on the CPU only (oneDNN's quantized operators); this run "
                        "uses %s: leave --int8 out, or run with --cpus 1" % gpus[0])
    if not mx.runtime.Features().is_enabled("MKLDNN"):
        raise Int8Error("--int8 needs MXNet built with oneDNN (MKLDNN), as the pip wheel "
                        "mxnet==1.9.1 is; this build (%s) has none" % mx.__version__)


def sample(entries, count, seed):
    """``count`` entries drawn with ``seed``, in list order (the calibration images:
    INT8_CALIB_IMAGES with SEED)."""
    pick = np.random.RandomState(seed).choice(len(entries), min(count, len(entries)),
                                              replace=False)
    return [entries[i] for i in sorted(pick)]


def calibration_iter(cfg, entries, corners):
    """The decoded ``entries`` as eval feeds them, one per batch."""
    from cores.data.iterators import inference_stream
    data = np.stack([d for _, d, _, _ in inference_stream(
        cfg, [dict(e, mask=None) for e in entries], corners=corners)])
    return mx.io.NDArrayIter(data, batch_size=1, data_name="data")


def cache_paths(snapshot):
    from cores.stages import int8_paths
    return int8_paths(snapshot)


def settings(cfg, snapshot, calib_ids, corners):
    stat = os.stat(snapshot)
    return {"snapshot": os.path.basename(snapshot), "snapshot_bytes": stat.st_size,
            "snapshot_mtime_ns": stat.st_mtime_ns, "calib_mode": cfg.INT8_CALIB_MODE,
            "calib_images": list(calib_ids), "input_size": cfg.INPUT_SIZE,
            "pixel_mean": list(cfg.PIXEL_MEAN), "channel_order": cfg.CHANNEL_ORDER,
            "corners": corners, "mxnet": mx.__version__}


def _read_cache(paths, wanted):
    sym_path, params_path, meta_path = paths
    if not all(os.path.exists(p) for p in paths):
        return None
    try:
        with open(meta_path) as f:
            if json.load(f) != wanted:
                return None
        symbol = mx.sym.load(sym_path)
        arg, aux = checkpoint.load_params_file(params_path)
    except (OSError, ValueError, mx.base.MXNetError, checkpoint.CheckpointError):
        return None
    return symbol, arg, aux


def quantize_network(symbol, arg, aux, calib_data, count, mode="entropy"):
    """(symbol, arg, aux) of ``symbol`` fused and quantized by oneDNN, thresholds calibrated
    on ``count`` batches of ``calib_data`` (an iterator of 'data'); layers oneDNN cannot
    quantize (the softmax) stay fp32."""
    from mxnet.contrib.quantization import quantize_model_mkldnn
    previous = logging.getLogger().level
    logging.getLogger().setLevel(max(previous, logging.WARNING))   # MXNet logs every layer
    try:
        return quantize_model_mkldnn(
            symbol, {k: v.copyto(mx.cpu()) for k, v in arg.items()},
            {k: v.copyto(mx.cpu()) for k, v in aux.items()}, data_names=("data",),
            label_names=(), ctx=mx.cpu(), calib_mode=mode, calib_data=calib_data,
            num_calib_examples=count, quantized_dtype="auto")
    finally:
        logging.getLogger().setLevel(previous)


def quantized(cfg, symbol, arg, aux, snapshot, train_entries, corners=True):
    """(symbol, arg, aux) of the INT8 version of ``symbol`` with the parameters of the
    ``snapshot`` file, from the cache beside it or built now (and cached)."""
    calib = sample(train_entries, cfg.INT8_CALIB_IMAGES, cfg.SEED)
    wanted = settings(cfg, snapshot, [e["id"] for e in calib], corners)
    paths = cache_paths(snapshot)
    cached = _read_cache(paths, wanted)
    if cached is not None:
        logging.info("INT8 model from %s", paths[1])
        return cached
    logging.info("quantizing %s to INT8 (%s calibration on %d train_aug images)", snapshot,
                 cfg.INT8_CALIB_MODE, len(calib))
    qsym, qarg, qaux = quantize_network(symbol, arg, aux, calibration_iter(cfg, calib, corners),
                                        len(calib), cfg.INT8_CALIB_MODE)
    sym_path, params_path, meta_path = paths
    with atomic_path(sym_path) as tmp:
        qsym.save(tmp)
    checkpoint.save_params(params_path, qarg, qaux)
    with atomic_path(meta_path) as tmp:            # last: marks the cache complete
        with open(tmp, "w") as f:
            json.dump(wanted, f, indent=1)
    logging.info("wrote the INT8 model to %s", params_path)
    return qsym, qarg, qaux


def agreement(fp32, int8, classes):
    """Per class, |A & B| / |A | B| of the two cue sets' pixels over the images of both
    ({id: (3, M)}); 'all': the same over every class. None where neither has a pixel."""
    both, either = np.zeros(len(classes)), np.zeros(len(classes))
    for image_id in fp32:
        a = {tuple(p) for p in fp32[image_id].T}
        b = {tuple(p) for p in int8[image_id].T}
        for c in range(len(classes)):
            ac = {p for p in a if p[0] == c}
            bc = {p for p in b if p[0] == c}
            both[c] += len(ac & bc)
            either[c] += len(ac | bc)
    out = {classes[c]: (both[c] / either[c] if either[c] else None)
           for c in range(len(classes))}
    out["all"] = both.sum() / either.sum() if either.sum() else None
    return out
