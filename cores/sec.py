"""SEC training (method §4, 6): merged cues, the SEC network, the shared fit loop."""
import logging
import os

import numpy as np

from tqdm import tqdm

from cores import checkpoint, cues, events as event_log, stages
from cores.data.dataset import DatasetError, load_index, read_mask
from cores.data.iterators import sec_iter
from cores.io import check_writable
from cores.symbols import networks
from cores.train import fit, named_losses


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
    the fg and bg cue files whenever those are newer (method §3)."""
    if cue_file == "original":
        cue_file = stages.cue_path(cfg, "original")
        if not os.path.isfile(cue_file):
            raise cues.CueFileError("%s not found; convert the authors' cues first with "
                                    "tools/convert_original_cues.py" % cue_file)
    if cue_file:
        return cues.load_cues(cue_file)
    merged = stages.cue_path(cfg, "sec")
    fg, bg = stages.cue_path(cfg, "fg"), stages.cue_path(cfg, "bg")
    for path, script in ((fg, "train_fg_cues.py"), (bg, "train_bg_cues.py")):
        if not os.path.isfile(path) and not os.path.isfile(merged):
            raise cues.CueFileError("cue file not found: %s; run %s first" % (path, script))
    stale = not os.path.isfile(merged) or any(
        os.path.isfile(p) and os.path.getmtime(p) > os.path.getmtime(merged) for p in (fg, bg))
    if stale:
        logging.info("merging %s and %s into %s", fg, bg, merged)
        return cues.merge_cue_files(fg, bg, merged)
    return cues.load_cues(merged)


def train_sec(cfg, ctx, resume=False, epoch=None, cue_file=None, cluster=None,
              supervised=False, allow_config_change=False, overwrite=False):
    """Train the SEC network; ``resume`` continues from the latest snapshot (or ``epoch``).
    ``supervised``: the same network, schedule and fit loop on the ground-truth masks (the
    upper bound SEC is measured against). ``overwrite``: delete the snapshots of an earlier
    run in the folder first (refused otherwise). Returns the loss history."""
    _, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    check_writable(cfg.SNAPSHOT_PATH, cfg.CACHE_PATH)
    kind = "supervised" if supervised else "sec"
    grid = stages.score_size(cfg)
    if supervised:
        cue_set, size = supervised_cues(train, grid), grid
        symbol = networks.supervised_train_symbol(cfg)
    else:
        cue_set, size = training_cues(cfg, cue_file)
        cues.check_classes(cue_set, cfg.CLASS_NUM, cue_file or "the merged cues")
        symbol = networks.sec_train_symbol(cfg)
    if size != grid:
        raise cues.CueFileError("the cues are on a %dx%d grid but the network gives %dx%d "
                                "scores for INPUT_SIZE=%d" % (size, size, grid, grid,
                                                              cfg.INPUT_SIZE))
    shapes = {k: v for k, v in stages.sec_input_shapes(cfg, size).items()
              if k in symbol.list_arguments()}
    schedule = stages.Schedule(cfg, kind)
    prefix = stages.prefix(cfg, kind)
    start = checkpoint.initial_params(cfg, kind, symbol, shapes, resume, epoch,
                                      allow_config_change, overwrite,
                                      cluster is None or cluster.is_root)
    it = sec_iter(cfg, train, cue_set, size, schedule.batch_size,
                  start_batch=start.begin_epoch * schedule.epoch_size, cluster=cluster,
                  supervised=supervised)
    names = networks.loss_names(symbol)
    events = event_log.open_run(cfg, kind, cluster.rank if cluster else 0)
    on_epoch = epoch_pictures(cfg, events, train, cue_set, size) if events else None
    try:
        history = fit(cfg, symbol, it, ctx, prefix, schedule,
                      lambda o, b: named_losses(o, b, names), start, mean_losses=True,
                      cluster=cluster, events=events, on_epoch=on_epoch)
    finally:
        it.close()
        events.close()
    if cluster is None or cluster.is_root:
        final = stages.Schedule(cfg, kind).final_epoch
        arg, aux, _ = checkpoint.load_snapshot(prefix, final, symbol, shapes)
        check_collapse(cfg, arg, aux, train, kind)
    return history


class _Sample:
    """A fixed handful of training images, decoded once, and the network's argmax on them."""

    def __init__(self, cfg, entries, count):
        import mxnet as mx
        from cores.data.transforms import load_rgb, resize_rgb, to_net_input
        self.cfg = cfg
        self.entries = event_log.sample_entries(cfg, entries, count)
        self.rgbs = [resize_rgb(load_rgb(e["image"]), cfg.INPUT_SIZE) for e in self.entries]
        self.data = mx.nd.array(np.stack([to_net_input(r, cfg.PIXEL_MEAN, cfg.CHANNEL_ORDER)
                                          for r in self.rgbs]))
        self.symbol = networks.sec_infer_symbol(cfg)

    def predict(self, arg, aux):
        import mxnet as mx
        from cores.inference import bind_inference
        mod = bind_inference(self.cfg, [mx.cpu()], self.symbol, arg, aux, len(self.entries))
        mod.forward(mx.io.DataBatch([self.data]), is_train=False)
        return mod.get_outputs()[0].asnumpy().argmax(axis=1)


def check_collapse(cfg, arg, aux, entries, kind="sec", count=16):
    """Warn loudly when the trained network labels every pixel of ``count`` training images
    with one class although they hold foreground classes: a collapsed run (seen once on toy
    data at twice the paper's lr), whose losses stay finite. Returns the classes predicted."""
    sample = _Sample(cfg, entries, count)
    predicted = sorted(set(int(c) for c in np.unique(sample.predict(arg, aux))))
    labelled = sorted(set(c for e in sample.entries for c in e["labels"]))
    if len(predicted) == 1 and labelled:
        logging.warning(
            "WARNING: the %s network predicts class %d on every pixel of %d training images "
            "that hold classes %s: the run collapsed to a constant output. Its losses stayed "
            "finite, so nothing stopped it; retrain with a lower LR (the paper's 1e-3) or check "
            "the cues (cue report)", kind, predicted[0], len(sample.entries), labelled)
    return predicted


def epoch_pictures(cfg, events, entries, cue_set, size):
    """An ``on_epoch`` for fit: a fixed handful of training images as image | cues | the
    current prediction | ground truth, at score resolution, in the event log."""
    from cores.visualize import label_tiles
    sample = _Sample(cfg, entries, event_log.SAMPLE_IMAGES)
    gts = [cues.grid_mask(read_mask(e["mask"]), size) if e.get("mask") else None
           for e in sample.entries]

    def on_epoch(epoch, iteration, arg, aux):
        preds = sample.predict(arg, aux)
        for entry, rgb, pred, gt in zip(sample.entries, sample.rgbs, preds, gts):
            cue_map = cues.cue_label_map(cue_set[entry["id"]], size)
            events.image("train/%s/image_cues_prediction_truth" % entry["id"],
                         label_tiles(rgb.astype(np.uint8), [cue_map, pred, gt]), iteration)
    return on_epoch
