"""SEC training (spec 4, 6): merged cues, the SEC network, the shared fit loop."""
import logging
import os

import mxnet as mx
from tqdm import tqdm

from cores import checkpoint, cues
from cores.data.dataset import DatasetError, load_index, read_mask
from cores.data.iterators import sec_iter
from cores.io import check_writable
from cores.localization import cue_path, score_size
from cores.symbols import networks
from cores.train import fit, named_losses
from cores.visualize import loss_curves


def sec_prefix(cfg, supervised=False):
    """Snapshot prefix of SEC, or of the fully supervised bound."""
    return os.path.join(cfg.SNAPSHOT_PATH, "%s_%s" % ("supervised" if supervised else "sec",
                                                     cfg.BASE_NET))


def supervised_cues(entries, size):
    """{id: (3, M)} every labelled pixel of each training image's ground-truth mask."""
    missing = [e["image"] for e in entries if not e.get("mask")]
    if missing:
        raise DatasetError("the supervised bound needs a mask for every training image; %d have "
                           "none, e.g. %s (custom mode: create_dataset.py --masks DIR)"
                           % (len(missing), missing[0]))
    return {e["id"]: cues.mask_cues(read_mask(e["mask"]), size)
            for e in tqdm(entries, desc="ground-truth masks")}


def training_cues(cfg, cue_file=None):
    """({id: (3, M)}, grid size): ``cue_file`` if given ('original': the authors' cues
    converted by tools/convert_original_cues.py), else CACHE_PATH/sec_cues.npz, merged from
    the fg and bg cue files whenever those are newer (spec 3)."""
    if cue_file == "original":
        cue_file = os.path.join(cfg.CACHE_PATH, "original_cues.npz")
        if not os.path.isfile(cue_file):
            raise cues.CueFileError("%s not found; convert the authors' cues first with "
                                    "tools/convert_original_cues.py" % cue_file)
    if cue_file:
        return cues.load_cues(cue_file)
    merged = os.path.join(cfg.CACHE_PATH, "sec_cues.npz")
    fg, bg = cue_path(cfg, "fg"), cue_path(cfg, "bg")
    for path, script in ((fg, "train_fg_cues.py"), (bg, "train_bg_cues.py")):
        if not os.path.isfile(path) and not os.path.isfile(merged):
            raise cues.CueFileError("cue file not found: %s; run %s first" % (path, script))
    stale = not os.path.isfile(merged) or any(
        os.path.isfile(p) and os.path.getmtime(p) > os.path.getmtime(merged) for p in (fg, bg))
    if stale:
        logging.info("merging %s and %s into %s", fg, bg, merged)
        return cues.merge_cue_files(fg, bg, merged)
    return cues.load_cues(merged)


def input_shapes(cfg, size):
    n, c = cfg.BATCH_SIZE, cfg.CLASS_NUM
    return {"data": (n, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE), "small_images": (n, size, size, 3),
            "labels": (n, c), "cues": (n, c, size, size)}


SEC_RESUME_KEYS = ("BATCH_SIZE", "LR", "LR_STEP", "EPOCH_SIZE", "MIRROR", "Q_FG", "Q_BG",
                   "MIN_PROB", "CRF_SCALE", "CRF_POS_XY_STD", "CRF_POS_W", "CRF_BI_XY_STD",
                   "CRF_BI_RGB_STD", "CRF_BI_W", "CRF_MAXITER")


def train_sec(cfg, ctx, resume=False, epoch=None, cue_file=None, cluster=None,
              supervised=False, allow_config_change=False):
    """Train the SEC network; ``resume`` continues from the latest snapshot (or ``epoch``).
    ``supervised``: the same network, schedule and fit loop on the ground-truth masks (the
    upper bound SEC is measured against). Returns the loss history."""
    _, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    check_writable(cfg.SNAPSHOT_PATH, cfg.CACHE_PATH)
    if supervised:
        size = score_size(cfg)
        cue_set = supervised_cues(train, size)
        symbol = networks.supervised_train_symbol(cfg)
    else:
        cue_set, size = training_cues(cfg, cue_file)
        cues.check_classes(cue_set, cfg.CLASS_NUM, cue_file or "the merged cues")
        symbol = networks.sec_train_symbol(cfg)
    if size != score_size(cfg):
        raise cues.CueFileError("the cues are on a %dx%d grid but the network gives %dx%d "
                                "scores for INPUT_SIZE=%d" % (size, size, score_size(cfg),
                                                              score_size(cfg), cfg.INPUT_SIZE))
    shapes = {k: v for k, v in input_shapes(cfg, size).items() if k in symbol.list_arguments()}
    prefix = sec_prefix(cfg, supervised)
    os.makedirs(cfg.SNAPSHOT_PATH, exist_ok=True)
    arg, aux, state, begin = checkpoint.initial_params(
        cfg, prefix, symbol, shapes, resume, epoch, SEC_RESUME_KEYS, allow_config_change,
        cfg.EPOCH_SIZE)
    it = sec_iter(cfg, train, cue_set, size, cfg.BATCH_SIZE, start_batch=begin * cfg.EPOCH_SIZE,
                  cluster=cluster, supervised=supervised)
    names = networks.loss_names(symbol)
    try:
        history = fit(cfg, symbol, it, ctx, prefix, cfg.LR, cfg.LR_STEP, cfg.MAX_ITER,
                      cfg.EPOCH_SIZE, lambda o, b: named_losses(o, b, names), arg, aux,
                      begin, state, mean_losses=True, cluster=cluster)
    finally:
        it.close()
    if cluster is None or cluster.is_root:
        loss_curves(prefix + "-losses.png", history, names)
    return history


def load_inference_params(cfg, epoch, supervised=False):
    """(arg, aux) of SEC (or supervised-bound) snapshot ``epoch`` (default: the latest),
    checked against the inference network."""
    prefix = sec_prefix(cfg, supervised)
    if epoch is not None and epoch < 1:
        raise checkpoint.CheckpointError("--epoch %d: snapshot epochs start at 1 (leave --epoch "
                                         "out for the latest)" % epoch)
    epoch = epoch or checkpoint.latest_epoch(prefix)
    if not epoch:
        raise checkpoint.CheckpointError("no snapshot %s-NNNN.params; run train_SEC.py%s "
                                         "first" % (prefix, " --supervised" if supervised
                                                    else ""))
    symbol = networks.sec_infer_symbol(cfg)
    arg, aux, _ = checkpoint.load_snapshot(
        prefix, epoch, symbol, {"data": (1, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE)})
    return symbol, arg, aux, epoch


def bind_inference(cfg, ctx, symbol, arg, aux, batch):
    mod = mx.mod.Module(symbol, data_names=["data"], label_names=None, context=ctx)
    mod.bind(data_shapes=[("data", (batch, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE))],
             for_training=False)
    mod.set_params(arg, aux, allow_missing=False, allow_extra=True)
    return mod
