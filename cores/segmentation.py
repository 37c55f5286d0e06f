"""Training a segmentation method (cores/methods/: SEC on the merged cues, its ablations,
DSRG, a retraining round, the bound on the masks) on the SEC network with the shared fit loop
(method §4, 6), and the checks and pictures of its run."""
import logging

import numpy as np

from cores import checkpoint, cues, events as event_log, stages
from cores.grid import grid_mask
from cores.data.dataset import load_index, read_mask
from cores.data.iterators import segmentation_iter
from cores.io import check_writable
from cores.symbols import networks
from cores.train import fit, named_losses


def train(cfg, method, ctx, resume=False, epoch=None, cue_file=None, cluster=None,
          allow_config_change=False, overwrite=False):
    """Train segmentation method ``method`` (a cores.methods Method) on its targets; ``resume``
    continues from the latest snapshot (or ``epoch``); ``overwrite``: delete the snapshots of
    an earlier run in the folder first (refused otherwise). Returns the loss history."""
    _, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    check_writable(cfg.SNAPSHOT_PATH, cfg.CACHE_PATH)
    train = method.entries(cfg, train)
    grid = stages.score_size(cfg)
    cue_set, size = method.targets(cfg, train, grid, cue_file)
    if size != grid:
        raise cues.CueFileError("the cues are on a %dx%d grid but the network gives %dx%d "
                                "scores for INPUT_SIZE=%d" % (size, size, grid, grid,
                                                              cfg.INPUT_SIZE))
    symbol = method.symbol(cfg)
    schedule = stages.Schedule(cfg, method)
    shapes = {k: v for k, v in method.input_shapes(cfg, schedule.batch_size, size).items()
              if k in symbol.list_arguments()}
    prefix = stages.prefix(cfg, method)
    start = checkpoint.initial_params(cfg, method, symbol, shapes, resume, epoch,
                                      allow_config_change, overwrite,
                                      cluster is None or cluster.is_root)
    it = segmentation_iter(cfg, train, cue_set, size, schedule, method.task(cfg), shapes,
                           start_batch=start.begin_epoch * schedule.epoch_size, cluster=cluster)
    names = networks.loss_names(symbol)
    events = event_log.open_run(cfg, method, cluster.rank if cluster else 0)
    on_epoch = epoch_pictures(cfg, events, train, cue_set, size) if events else None
    try:
        history = fit(cfg, symbol, it, ctx, prefix, schedule,
                      lambda o, b: named_losses(o, b, names), start, mean_losses=True,
                      cluster=cluster, events=events, on_epoch=on_epoch)
    finally:
        it.close()
        events.close()
    if cluster is None or cluster.is_root:
        arg, aux, _ = checkpoint.load_snapshot(prefix, schedule.final_epoch, symbol, shapes)
        check_collapse(cfg, arg, aux, train, method.name)
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
    gts = [grid_mask(read_mask(e["mask"]), size) if e.get("mask") else None
           for e in sample.entries]

    def on_epoch(epoch, iteration, arg, aux):
        preds = sample.predict(arg, aux)
        for entry, rgb, pred, gt in zip(sample.entries, sample.rgbs, preds, gts):
            cue_map = cues.cue_label_map(cue_set[entry["id"]], size)
            events.image("train/%s/image_cues_prediction_truth" % entry["id"],
                         label_tiles(rgb.astype(np.uint8), [cue_map, pred, gt]), iteration)
    return on_epoch
