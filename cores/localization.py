"""The two cue stages (method §3): train the saliency (background) and CAM (foreground) networks,
then turn them into localization cues for every training image."""
import logging
import math
import os

import mxnet as mx
import numpy as np
from tqdm import tqdm

from cores import checkpoint, cues, events as event_log, stages
from cores.config import save_config
from cores.data.dataset import load_index, read_mask
from cores.data.iterators import inference_stream, multilabel_iter
from cores.data.transforms import load_rgb, resize_rgb
from cores.distributed import Cluster
from cores.errors import SECError
from cores.io import check_writable
from cores.metrics import classification_report
from cores.symbols import networks
from cores.train import fit, multilabel_loss
from cores.visualize import cue_picture, label_tiles

TRAIN_SYMBOLS = {"pretrain": networks.classifier_train_symbol,
                 "bg": networks.saliency_train_symbol, "fg": networks.cam_train_symbol}


def _shapes(cfg, batch):
    return {"data": stages.image_shape(cfg, batch), "label": (batch, cfg.CLASS_NUM - 1)}


def train_cue_network(cfg, kind, ctx, entries, resume=False, epoch=None, cluster=None,
                      allow_config_change=False, events=None, overwrite=False):
    """Train the saliency ('bg') or CAM ('fg') network (or the pretraining classifier);
    returns the final snapshot's epoch. ``events``: after every epoch, the classification mAP
    of a fixed sample of training images and (bg, fg) their current cues go there."""
    schedule = stages.Schedule(cfg, kind)
    symbol = TRAIN_SYMBOLS[kind](cfg)
    net = net_config(cfg, kind)
    start = checkpoint.initial_params(cfg, kind, symbol, _shapes(net, schedule.batch_size),
                                      resume, epoch, allow_config_change, overwrite,
                                      cluster is None or cluster.is_root)
    it = multilabel_iter(net, entries, schedule.batch_size, schedule.epoch_size,
                         start_batch=start.begin_epoch * schedule.epoch_size, cluster=cluster,
                         mirror=cfg.MIRROR_CUES)
    on_epoch = _epoch_report(cfg, kind, ctx, entries, events) if events else None
    try:
        fit(cfg, symbol, it, ctx, stages.prefix(cfg, kind), schedule, multilabel_loss, start,
            cluster=cluster, events=events, on_epoch=on_epoch)
    finally:
        it.close()
    return schedule.final_epoch


def _epoch_report(cfg, kind, ctx, entries, events, count=32):
    """An ``on_epoch`` for fit: the mAP of ``count`` fixed training images and, for the cue
    networks, a handful of them as image | current cues | ground truth."""
    scored = event_log.sample_entries(cfg, entries, count)
    shown = scored[:event_log.SAMPLE_IMAGES]
    num_classes = cfg.CLASS_NUM

    def on_epoch(epoch, iteration, arg, aux):
        scores = classifier_scores(cfg, kind, ctx, arg, aux, scored)
        labels = np.zeros((len(scored), num_classes - 1))
        for row, entry in enumerate(scored):
            labels[row, np.asarray(entry["labels"], int) - 1] = 1
        report = classification_report(np.stack([scores[e["id"]] for e in scored]), labels,
                                       [str(c) for c in range(1, num_classes)])
        if report["mAP"] is not None:
            events.scalar("mAP_of_%d_train_images" % len(scored), report["mAP"], iteration)
        if kind not in ("bg", "fg"):
            return
        extract = bg_cues_for if kind == "bg" else fg_cues_for
        size = stages.score_size(cfg)
        cue_set = extract(cfg, ctx, arg, aux, shown, len(shown))
        for entry in shown:
            rgb = resize_rgb(load_rgb(entry["image"]), cfg.INPUT_SIZE).astype(np.uint8)
            gt = cues.grid_mask(read_mask(entry["mask"]), size) if entry.get("mask") else None
            events.image("train/%s/image_cues_truth" % entry["id"],
                         label_tiles(rgb, [cues.cue_label_map(cue_set[entry["id"]], size), gt]),
                         iteration)
    return on_epoch


def _batched(stream, batch_size):
    chunk = []
    for item in stream:
        chunk.append(item)
        if len(chunk) == batch_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _stack(chunk, batch_size):
    """Data of a possibly short last batch, padded by repeating its last image."""
    data = np.stack([c[1] for c in chunk] + [chunk[-1][1]] * (batch_size - len(chunk)))
    return mx.io.DataBatch([mx.nd.array(data)])


def _bind(symbol, ctx, data_name, shape, arg, aux, need_grad=False):
    mod = mx.mod.Module(symbol, data_names=[data_name], label_names=None, context=ctx)
    mod.bind(data_shapes=[(data_name, shape)], for_training=need_grad,
             inputs_need_grad=need_grad)
    mod.set_params(arg, aux, allow_missing=False, allow_extra=True)
    return mod


def bg_cues_for(cfg, ctx, arg, aux, entries, batch_size, scores=None):
    """{id: (3, M)} background cues: saliency = d(sum of class scores)/d(saliency-layer
    pre-activation), max |.| over channels, 3x3 median, lowest BG_FRACTION (method §3).
    ``scores``, a dict, receives each image's class scores (C-1,)."""
    front, back = networks.saliency_parts(cfg)
    size = cfg.INPUT_SIZE
    net = net_config(cfg, "bg")
    front_mod = _bind(front, ctx, "data", (batch_size, 3, size, size), arg, aux)
    feat_shape = front.infer_shape(data=(batch_size, 3, size, size))[1][0]
    back_mod = _bind(back, ctx, "saliency_input", feat_shape, arg, aux, need_grad=True)
    ones = mx.nd.ones((batch_size, cfg.CLASS_NUM - 1))
    out = {}
    stream = inference_stream(net, [dict(e, mask=None) for e in entries])
    for chunk in tqdm(_batched(stream, batch_size), total=math.ceil(len(entries) / batch_size),
                      desc="background cues"):
        front_mod.forward(_stack(chunk, batch_size), is_train=False)
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


def net_config(cfg, kind):
    """The config a stage's network runs with. The cue networks and the pretraining classifier
    subtract PIXEL_MEAN_CUES (the authors' cue notebooks), SEC and the bound PIXEL_MEAN (their
    training prototxt and demo). The CAM network ('fg') takes input
    (INPUT_SIZE - 1) k + 1 for ``CAM_INPUT_SCALE`` k, in training and for cues; its grid is then
    about k times finer than the score grid, and each score cell takes the nearest CAM cell on
    the corner grid (method §3). k = 1 is the authors' (SEC's input); a larger k gives small
    objects more CAM cells, but only with a backbone that recognises them at that scale
    (docs/method.md, section 7)."""
    changes = {}
    if kind in ("bg", "fg", "pretrain") and cfg.PIXEL_MEAN_CUES != cfg.PIXEL_MEAN:
        changes["PIXEL_MEAN"] = cfg.PIXEL_MEAN_CUES
    k = cfg.CAM_INPUT_SCALE
    if kind == "fg" and k != 1:
        changes["INPUT_SIZE"] = int(round((cfg.INPUT_SIZE - 1) * k)) + 1
    return type(cfg)(cfg, **changes) if changes else cfg


def fg_cues_for(cfg, ctx, arg, aux, entries, batch_size, scores=None, symbol=None):
    """{id: (3, M)} foreground cues: CAM_c > FG_THRESHOLD max CAM_c per labelled class, read
    on the CAM network's own grid (``net_config``), sampled where the score cells sit.
    ``scores``, a dict, receives each image's class scores (C-1,): the spatial mean of its
    CAMs (the classifier has no bias). ``symbol``: another CAM network with ``arg``/``aux``
    (the INT8 one)."""
    read = net_config(cfg, "fg")
    size = read.INPUT_SIZE
    grid = stages.score_size(cfg)
    mod = _bind(networks.cam_symbol(read) if symbol is None else symbol, ctx, "data",
                (batch_size, 3, size, size), arg, aux)
    out = {}
    stream = inference_stream(read, [dict(e, mask=None) for e in entries])
    for chunk in tqdm(_batched(stream, batch_size), total=math.ceil(len(entries) / batch_size),
                      desc="foreground cues"):
        mod.forward(_stack(chunk, batch_size), is_train=False)
        cams = mod.get_outputs()[0].asnumpy()
        rows = cues.corner_nearest(cams.shape[2], grid)
        cols = cues.corner_nearest(cams.shape[3], grid)
        for k, (entry, _, _, _) in enumerate(chunk):
            if scores is not None:
                scores[entry["id"]] = cams[k].mean(axis=(1, 2))
            masks = cues.fg_cue_rule(cams[k], entry["labels"], cfg.FG_THRESHOLD)
            out[entry["id"]] = cues.masks_to_sparse(
                {c: m[np.ix_(rows, cols)] for c, m in masks.items()})
    return out


class LearningError(SECError):
    """A cue network that cannot or did not learn to recognise the classes."""


def check_negatives(entries, classes):
    """Stop before training when a class is in every training image: a classifier then learns
    a constant and its cues cover everything (a one-class data set needs background-only
    images)."""
    counts = np.zeros(len(classes), int)
    for entry in entries:
        counts[np.asarray(entry["labels"], int)] += 1
    always = [classes[c] for c in range(1, len(classes)) if counts[c] == len(entries)]
    if always:
        raise LearningError(
            "class %s is in every one of the %d training images: a classifier cannot tell it "
            "from the background, so its cues would cover whole images. Add images without "
            "it (background-only images: in custom mode list them with an empty label, e.g. "
            "'img.jpg,')" % (", ".join(always), len(entries)))
    never = [classes[c] for c in range(1, len(classes)) if counts[c] == 0]
    if never:
        logging.warning("WARNING: no training image is labelled %s; no cues can be found for "
                        "it", ", ".join(never))


def check_classifier(cfg, name, scores, entries, classes, report_path=None, events=None,
                     step=0):
    """Classification AP of a trained cue network on train_aug (its own training images):
    logged, written to ``report_path`` and ``events`` (at ``step``), and an error when the mAP
    is below MIN_CLASSIFIER_MAP (its cues would be noise). Returns the report."""
    scored = [e for e in entries if e["id"] in scores]
    labels = np.zeros((len(scored), len(classes) - 1))
    for row, entry in enumerate(scored):
        labels[row, np.asarray(entry["labels"], int) - 1] = 1
    report = classification_report(np.stack([scores[e["id"]] for e in scored]), labels,
                                   classes[1:])
    logging.info("%s network, classification AP on %d train_aug images: %s; mAP %s", name,
                 report["images"], ", ".join("%s %s" % (k, "%.3f" % v if v is not None else "-")
                                             for k, v in report["AP"].items()),
                 "%.3f" % report["mAP"] if report["mAP"] is not None else "-")
    if report_path:
        cues.save_report(report_path, report)
    if events and report["mAP"] is not None:
        events.scalar("mAP_of_all_train_images", report["mAP"], step)
    weak = [k for k, v in report["AP"].items() if v is not None and v < cfg.MIN_CLASSIFIER_MAP]
    if report["mAP"] is not None and report["mAP"] < cfg.MIN_CLASSIFIER_MAP:
        raise LearningError(
            "the %s network did not learn to recognise the classes: classification mAP %.3f on "
            "its training images is below MIN_CLASSIFIER_MAP=%.2f, so cues from it would be noise. "
            "Train longer or with a higher learning rate, check the pretrained weights, or "
            "--set MIN_CLASSIFIER_MAP=0 to write them anyway"
            % (name, report["mAP"], cfg.MIN_CLASSIFIER_MAP))
    if weak:
        logging.warning("WARNING: the %s network barely recognises %s (AP < %.2f): expect poor "
                        "cues for them", name, ", ".join(weak), cfg.MIN_CLASSIFIER_MAP)
    return report


def classifier_scores(cfg, kind, ctx, arg, aux, entries):
    """{id: (C-1,)} class scores of a trained multi-label network (the input of its loss)."""
    logits = TRAIN_SYMBOLS[kind](cfg).get_children()[0]
    batch = stages.Schedule(cfg, kind).batch_size
    net = net_config(cfg, kind)
    mod = _bind(logits, ctx, "data", stages.image_shape(net, batch), arg, aux)
    out = {}
    stream = inference_stream(net, [dict(e, mask=None) for e in entries])
    for chunk in _batched(stream, batch):
        mod.forward(_stack(chunk, batch), is_train=False)
        values = mod.get_outputs()[0].asnumpy()
        for k, (entry, _, _, _) in enumerate(chunk):
            out[entry["id"]] = values[k]
    return out


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
        gt = cues.grid_mask(read_mask(entry["mask"]), size) if entry.get("mask") else None
        rgb = resize_rgb(load_rgb(entry["image"]), cfg.INPUT_SIZE).astype(np.uint8)
        cue_picture(os.path.join(cfg.CACHE_PATH, "vis_%s" % kind, entry["id"] + ".png"), rgb,
                    cues.cue_label_map(cue_set[entry["id"]], size), gt)
    return report


def run_cue_stage(cfg, kind, ctx, skip_train=False, resume=False, epoch=None, vis=0,
                  cluster=None, allow_config_change=False, int8=False, overwrite=False):
    """Train (unless skipped) and write CACHE_PATH/<kind>_cues.npz for every train_aug image;
    returns the cue report (None on workers other than rank 0). ``epoch`` names the snapshot to
    start from, as everywhere: training continues from it, and with ``skip_train`` the cues come
    from it. Under a distributed kvstore each worker computes the cues of its share of the
    images and rank 0 merges the shares. ``int8`` (foreground only: the background cues need
    a gradient): the CAM network's forward runs quantized, and the report gives its cues'
    agreement with fp32 ones on INT8_CHECK_IMAGES images."""
    cluster = cluster or Cluster()
    if int8:
        if kind != "fg":
            raise SECError("--int8 is for the foreground cues: the background cues need the "
                           "gradient of the network, which stays fp32")
        from cores import quantize
        quantize.check_support(ctx)
    classes, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    prefix = stages.prefix(cfg, kind)
    check_writable(cfg.CACHE_PATH, *(() if skip_train else (cfg.SNAPSHOT_PATH,)))
    check_negatives(train, classes)
    events = event_log.open_run(cfg, kind, cluster.rank)
    try:
        if not skip_train:
            last = train_cue_network(cfg, kind, ctx, train, resume, epoch, cluster,
                                     allow_config_change, events, overwrite)
        else:
            last = epoch or checkpoint.latest_epoch(prefix)
            if not last:
                raise checkpoint.CheckpointError(
                    "--skip-train: no snapshot %s-NNNN.params to start from" % prefix)
            if os.path.isfile(checkpoint.snapshot_path(prefix, last)):
                checkpoint.check_snapshot_config(prefix, last, cfg, kind, "writing cues with")
        batch = stages.Schedule(cfg, kind).batch_size
        arg, aux, _ = checkpoint.load_snapshot(prefix, last, TRAIN_SYMBOLS[kind](cfg),
                                               _shapes(net_config(cfg, kind), batch))
        logging.info("writing %s cues with %s", kind, checkpoint.snapshot_path(prefix, last))
        mine = cluster.my_share(train)
        scores = {}
        agreement = None
        if int8:
            qsym, qarg, qaux = quantize.quantized(
                net_config(cfg, "fg"), networks.cam_symbol(cfg), arg, aux,
                checkpoint.snapshot_path(prefix, last), train, corners=False)
            cue_set = fg_cues_for(cfg, ctx, qarg, qaux, mine, batch, scores, qsym)
            check = quantize.sample(mine, max(1, cfg.INT8_CHECK_IMAGES), cfg.SEED + 1)
            fp32 = fg_cues_for(cfg, ctx, arg, aux, check, batch)
            agreement = quantize.agreement(fp32, {e["id"]: cue_set[e["id"]] for e in check},
                                           classes)
        else:
            extract = bg_cues_for if kind == "bg" else fg_cues_for
            cue_set = extract(cfg, ctx, arg, aux, mine, batch, scores)
        size = stages.score_size(cfg)
        # under a distributed kvstore each worker checks its own share
        check_classifier(cfg, stages.STAGES[kind]["name"], scores, mine, classes,
                         stages.classification_path(cfg, kind) if cluster.is_root else None,
                         events, last * stages.Schedule(cfg, kind).epoch_size)
    finally:
        events.close()
    path = stages.cue_path(cfg, kind)
    if cluster.num_workers > 1:
        cues.save_cues(stages.cue_part_path(cfg, kind, cluster.rank, cluster.num_workers),
                       cue_set, size)
        cluster.barrier()
        if not cluster.is_root:
            return None
        cue_set = merge_shares(cfg, kind, cluster.num_workers, [e["id"] for e in train])
    cues.save_cues(path, cue_set, size)
    # the config that made this cue file, written with it (a failed stage leaves both as they
    # were)
    save_config(cfg, stages.cue_config_path(cfg, kind))
    logging.info("wrote %s (%d images)", path, len(cue_set))
    return report_cues(cfg, kind, cue_set, size, train, classes, vis, agreement)


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
