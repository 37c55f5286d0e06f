"""The two cue stages (method §3): train the saliency (background) and CAM (foreground) networks,
then turn them into localization cues for every training image."""
import logging
import math
import os

import mxnet as mx
import numpy as np
from tqdm import tqdm

from cores import checkpoint, cues, events as event_log, stages
from cores.grid import corner_nearest, grid_mask
from cores.classifier import (batched, bind_network, check_classifier, check_negatives,
                              net_config, stack_batch, train_cue_network, train_shapes,
                              train_symbol)
from cores.data.dataset import load_index, read_mask
from cores.data.iterators import inference_stream
from cores.data.transforms import load_rgb, resize_rgb
from cores.distributed import Cluster
from cores.errors import SECError
from cores.io import check_writable, save_config
from cores.symbols import networks
from cores.visualize import cue_picture, label_tiles


def bg_cues_for(cfg, ctx, arg, aux, entries, batch_size, scores=None):
    """{id: (3, M)} background cues: saliency = d(sum of class scores)/d(saliency-layer
    pre-activation), max |.| over channels, 3x3 median, lowest BG_FRACTION (method §3).
    ``scores``, a dict, receives each image's class scores (C-1,)."""
    front, back = networks.saliency_parts(cfg)
    size = cfg.INPUT_SIZE
    net = net_config(cfg, stages.SALIENCY)
    front_mod = bind_network(front, ctx, "data", (batch_size, 3, size, size), arg, aux)
    feat_shape = front.infer_shape(data=(batch_size, 3, size, size))[1][0]
    back_mod = bind_network(back, ctx, "saliency_input", feat_shape, arg, aux, need_grad=True)
    ones = mx.nd.ones((batch_size, cfg.CLASS_NUM - 1))
    out = {}
    stream = inference_stream(net, [dict(e, mask=None) for e in entries])
    for chunk in tqdm(batched(stream, batch_size), total=math.ceil(len(entries) / batch_size),
                      desc="background cues"):
        front_mod.forward(stack_batch(chunk, batch_size), is_train=False)
        preact = front_mod.get_outputs()[0]
        back_mod.forward(mx.io.DataBatch([preact]), is_train=True)
        back_mod.backward([ones])
        grad = back_mod.get_input_grads()[0].asnumpy()
        logits = back_mod.get_outputs()[0].asnumpy()
        for k, (entry, _, _, _) in enumerate(chunk):
            if scores is not None:
                scores[entry["id"]] = logits[k]
            bg = cues.bg_cue_rule(cues.saliency_map(grad[k]), cfg.BG_FRACTION,
                                  cfg.BG_MEDIAN_SIZE)
            out[entry["id"]] = cues.masks_to_sparse({0: bg})
    return out


def fg_cues_for(cfg, ctx, arg, aux, entries, batch_size, scores=None, symbol=None):
    """{id: (3, M)} foreground cues: CAM_c > FG_THRESHOLD max CAM_c per labelled class, read
    on the CAM network's own grid (``net_config``), sampled where the score cells sit.
    ``scores``, a dict, receives each image's class scores (C-1,): the spatial mean of its
    CAMs (the classifier has no bias). ``symbol``: another CAM network with ``arg``/``aux``
    (the INT8 one)."""
    read = net_config(cfg, stages.CAM)
    size = read.INPUT_SIZE
    grid = stages.score_size(cfg)
    mod = bind_network(networks.cam_symbol(read) if symbol is None else symbol, ctx, "data",
                (batch_size, 3, size, size), arg, aux)
    out = {}
    stream = inference_stream(read, [dict(e, mask=None) for e in entries])
    for chunk in tqdm(batched(stream, batch_size), total=math.ceil(len(entries) / batch_size),
                      desc="foreground cues"):
        mod.forward(stack_batch(chunk, batch_size), is_train=False)
        cams = mod.get_outputs()[0].asnumpy()
        rows = corner_nearest(cams.shape[2], grid)
        cols = corner_nearest(cams.shape[3], grid)
        for k, (entry, _, _, _) in enumerate(chunk):
            if scores is not None:
                scores[entry["id"]] = cams[k].mean(axis=(1, 2))
            masks = cues.fg_cue_rule(cams[k], entry["labels"], cfg.FG_THRESHOLD)
            out[entry["id"]] = cues.masks_to_sparse(
                {c: m[np.ix_(rows, cols)] for c, m in masks.items()})
    return out


# the cue rule of each cue stage (stages.CUE_STAGES)
EXTRACT = {"bg": bg_cues_for, "fg": fg_cues_for}


def cue_pictures(cfg, stage, ctx, entries, events):
    """A ``pictures`` for train_cue_network: a fixed handful of training images as image |
    current cues | ground truth, in the event log."""
    shown = event_log.sample_entries(cfg, entries, 32)[:event_log.SAMPLE_IMAGES]
    extract = EXTRACT[stage.cue]
    size = stages.score_size(cfg)

    def pictures(iteration, arg, aux):
        cue_set = extract(cfg, ctx, arg, aux, shown, len(shown))
        for entry in shown:
            rgb = resize_rgb(load_rgb(entry["image"]), cfg.INPUT_SIZE).astype(np.uint8)
            gt = grid_mask(read_mask(entry["mask"]), size) if entry.get("mask") else None
            events.image("train/%s/image_cues_truth" % entry["id"],
                         label_tiles(rgb, [cues.cue_label_map(cue_set[entry["id"]], size), gt]),
                         iteration)
    return pictures


def report_cues(cfg, kind, cue_set, size, entries, classes, vis=0, int8_agreement=None):
    """Print and save the cue report; write ``vis`` pictures (image | cues | ground truth).
    ``int8_agreement``: INT8 against fp32 cues per class (cores/quantize.agreement)."""
    report = cues.cue_report(cue_set, size, entries, classes, read_mask)
    if int8_agreement is not None:
        report["int8_agreement"] = int8_agreement
        logging.info("INT8 cues against fp32 on %d images, |both| / |either| per class: %s",
                     cfg.INT8_CHECK_IMAGES, ", ".join(
                         "%s %s" % (k, "-" if v is None else "%.4f" % v)
                         for k, v in int8_agreement.items()))
    cues.save_report(stages.cue_report_path(cfg, kind), report)
    logging.info("%s cue report\n%s", kind, cues.format_report(report))
    for entry in entries[:vis]:
        gt = grid_mask(read_mask(entry["mask"]), size) if entry.get("mask") else None
        rgb = resize_rgb(load_rgb(entry["image"]), cfg.INPUT_SIZE).astype(np.uint8)
        cue_picture(os.path.join(cfg.CACHE_PATH, "vis_%s" % kind, entry["id"] + ".png"), rgb,
                    cues.cue_label_map(cue_set[entry["id"]], size), gt)
    return report


def run_cue_stage(cfg, stage, ctx, skip_train=False, resume=False, epoch=None, vis=0,
                  cluster=None, allow_config_change=False, int8=False, overwrite=False):
    """Train (unless skipped) the network of cue stage ``stage`` (stages.SALIENCY or
    stages.CAM) and write CACHE_PATH/<bg|fg>_cues.npz for every train_aug image; returns the
    cue report (None on workers other than rank 0). ``epoch`` names the snapshot to start
    from, as everywhere: training continues from it, and with ``skip_train`` the cues come
    from it. Under a distributed kvstore each worker computes the cues of its share of the
    images and rank 0 merges the shares. ``int8`` (foreground only: the background cues need
    a gradient): the CAM network's forward runs quantized, and the report gives its cues'
    agreement with fp32 ones on INT8_CHECK_IMAGES images."""
    cluster = cluster or Cluster()
    if int8:
        if stage is not stages.CAM:
            raise SECError("--int8 is for the foreground cues: the background cues need the "
                           "gradient of the network, which stays fp32")
        from cores import quantize
        quantize.check_support(ctx)
    classes, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    check_writable(cfg.CACHE_PATH, *(() if skip_train else (cfg.SNAPSHOT_PATH,)))
    check_negatives(train, classes)
    events = event_log.open_run(cfg, stage, cluster.rank)
    try:
        last = (cue_snapshot(cfg, stage, epoch) if skip_train else train_cue_network(
            cfg, stage, ctx, train, resume, epoch, cluster, allow_config_change, events,
            overwrite, cue_pictures(cfg, stage, ctx, train, events) if events else None))
        mine = cluster.my_share(train)
        scores = {}
        cue_set, agreement = extract_cues(cfg, stage, ctx, last, mine, scores,
                                          (train, classes) if int8 else None)
        # under a distributed kvstore each worker checks its own share
        check_classifier(cfg, stage.name, scores, mine, classes,
                         stages.classification_path(cfg, stage) if cluster.is_root else None,
                         events, last * stages.Schedule(cfg, stage).epoch_size)
    finally:
        events.close()
    cue_set = write_cues(cfg, stage, cue_set, cluster, [e["id"] for e in train])
    if cue_set is None:
        return None
    return report_cues(cfg, stage.cue, cue_set, stages.score_size(cfg), train, classes, vis,
                       agreement)


def cue_snapshot(cfg, stage, epoch=None):
    """The epoch of the snapshot cues come from without training (--skip-train): ``epoch``
    or the latest; its config is checked against this one."""
    prefix = stages.prefix(cfg, stage)
    last = epoch or checkpoint.latest_epoch(prefix)
    if not last:
        raise checkpoint.CheckpointError("--skip-train: no snapshot %s-NNNN.params to start "
                                         "from" % prefix)
    if os.path.isfile(checkpoint.snapshot_path(prefix, last)):
        checkpoint.check_snapshot_config(prefix, last, cfg, stage, "writing cues with")
    return last


def extract_cues(cfg, stage, ctx, epoch, entries, scores, int8=None):
    """({id: (3, M)} cues of ``entries`` by snapshot ``epoch`` of ``stage``, None); ``scores``
    receives each image's class scores. ``int8`` (train_aug entries, class names): the CAM
    network quantized instead (calibrated on train_aug), and its cues' agreement with fp32
    ones in place of None."""
    prefix = stages.prefix(cfg, stage)
    batch = stages.Schedule(cfg, stage).batch_size
    arg, aux, _ = checkpoint.load_snapshot(prefix, epoch, train_symbol(cfg, stage),
                                           train_shapes(net_config(cfg, stage), batch))
    logging.info("writing %s cues with %s", stage.cue, checkpoint.snapshot_path(prefix, epoch))
    if int8 is None:
        return EXTRACT[stage.cue](cfg, ctx, arg, aux, entries, batch, scores), None
    from cores import quantize
    train, classes = int8
    qsym, qarg, qaux = quantize.quantized(
        net_config(cfg, stage), networks.cam_symbol(cfg), arg, aux,
        checkpoint.snapshot_path(prefix, epoch), train, corners=False)
    cue_set = fg_cues_for(cfg, ctx, qarg, qaux, entries, batch, scores, qsym)
    check = quantize.sample(entries, max(1, cfg.INT8_CHECK_IMAGES), cfg.SEED + 1)
    fp32 = fg_cues_for(cfg, ctx, arg, aux, check, batch)
    return cue_set, quantize.agreement(fp32, {e["id"]: cue_set[e["id"]] for e in check},
                                       classes)


def write_cues(cfg, stage, cue_set, cluster, ids):
    """Save the cue file of ``stage`` (and the config that made it, beside it; a failed stage
    leaves both as they were). Under a distributed kvstore every worker saves its share and
    rank 0 merges them; returns the whole cue set there, None on the other workers."""
    size = stages.score_size(cfg)
    if cluster.num_workers > 1:
        cues.save_cues(stages.cue_part_path(cfg, stage.cue, cluster.rank, cluster.num_workers),
                       cue_set, size)
        cluster.barrier()
        if not cluster.is_root:
            return None
        cue_set = merge_shares(cfg, stage.cue, cluster.num_workers, ids)
    path = stages.cue_path(cfg, stage.cue)
    cues.save_cues(path, cue_set, size)
    save_config(cfg, stages.cue_config_path(cfg, stage.cue))
    logging.info("wrote %s (%d images)", path, len(cue_set))
    return cue_set


def merge_shares(cfg, kind, num_workers, ids):
    """The workers' shares of the ``kind`` cue file merged into one dict; every id exactly
    once."""
    merged = {}
    parts = [stages.cue_part_path(cfg, kind, r, num_workers) for r in range(num_workers)]
    for part in parts:
        share, _ = cues.load_cues(part)
        twice = set(share) & set(merged)
        if twice:
            raise cues.CueFileError("%s repeats images of another share, e.g. %s"
                                    % (part, sorted(twice)[:5]))
        merged.update(share)
    if set(merged) != set(ids):
        missing = sorted(set(ids) - set(merged))
        raise cues.CueFileError("the cue shares miss %d images, e.g. %s" % (len(missing),
                                                                          missing[:5]))
    for part in parts:
        os.remove(part)
    return merged
