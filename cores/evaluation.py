"""Evaluation and segmentation of images (method §5-6): resize, forward (+ mirrored forward),
softmax, bilinear upsampling, optional dense CRF, argmax; IoU over the val list.

Decoding runs ahead in worker processes and the per-image post-processing (upsampling, CRF,
confusion, writing masks) runs in a process pool while the network handles the next images;
at most a bounded number of images is in flight, so memory stays flat.
"""
import collections
import json
import logging
import os
import time

import mxnet as mx
import numpy as np
from tqdm import tqdm

from cores import crf
from cores.workers import worker_count
from cores.data.dataset import IMAGE_EXTENSIONS, DatasetError, load_index
from cores.data.iterators import inference_stream
from cores.data.palette import save_palette_png
from cores.grid import label_map, upsample
from cores.io import atomic_path, atomic_save_npz, check_writable
from cores.metrics import (confusion_matrix, error_kinds, format_error_kinds,
                           format_iou_table, iou_scores)
from cores.inference import bind_inference, load_inference_params
from cores.events import EventLog, run_folder
from cores.stages import metrics_path, output_dir
from cores.workers import shared_pool


def postprocess(job):
    """Upsample, [CRF], argmax, confusion, write outputs (in a worker, or in this process
    between the network's passes). Returns (id, confusion or None)."""
    image_id, probs, rgb, mask, num_classes, crf_params, outputs, corners = job
    height, width = rgb.shape[:2]
    if crf_params is not None:
        probs = crf.test_time_crf(rgb, upsample(probs, height, width, corners), crf_params)
        pred = probs.argmax(axis=0).astype(np.uint8)
    else:
        pred = label_map(probs, height, width, corners)
    if outputs.get("mask"):
        with atomic_path(outputs["mask"]) as tmp:
            save_palette_png(tmp, pred)
    if outputs.get("overlay"):
        from cores.visualize import overlay_picture
        overlay_picture(outputs["overlay"], rgb, pred)
    conf = confusion_matrix(pred, mask, num_classes) if mask is not None else None
    return image_id, conf


def predict_probs(mod, data, flip):
    """Softmax at score resolution (C, h, w); with ``flip`` averaged with the mirrored pass
    (both in one batch of two)."""
    batch = data[None]
    if flip:
        batch = np.concatenate([batch, data[None, :, :, ::-1]])
    mod.forward(mx.io.DataBatch([mx.nd.array(batch)]), is_train=False)
    out = mod.get_outputs()[0].asnumpy()
    if flip:
        return 0.5 * (out[0] + out[1, :, :, ::-1])
    return out[0]


class MultiScale:
    """The network bound once per TEST_SCALES factor (input side (INPUT_SIZE - 1) s + 1): each
    scale's probabilities (with its mirror under ``flip``) resized to the score grid of
    INPUT_SIZE on the corner-aligned grid and averaged (DeepLab's and DSRG's multi-scale test,
    averaged before the upsampling, which is linear)."""

    def __init__(self, cfg, ctx, symbol, arg, aux, flip):
        from cores.stages import score_size
        self.cfg, self.flip, self.grid = cfg, flip, score_size(cfg)
        self.sizes = [int(round((cfg.INPUT_SIZE - 1) * s)) + 1 for s in cfg.TEST_SCALES]
        self.mods = {}
        for size in sorted(set(self.sizes)):
            mod = mx.mod.Module(symbol, data_names=["data"], label_names=None, context=ctx)
            mod.bind(data_shapes=[("data", (2 if flip else 1, 3, size, size))],
                     for_training=False)
            mod.set_params(arg, aux, allow_missing=False, allow_extra=True)
            self.mods[size] = mod

    def __call__(self, data, rgb):
        from cores.data.transforms import resize_rgb, to_net_input
        from cores.grid import zoom_linear
        corners = self.cfg.TEST_INTERPOLATION == "corners"
        total = 0
        for size in self.sizes:
            scaled = data if size == self.cfg.INPUT_SIZE else to_net_input(
                resize_rgb(rgb, size, corners), self.cfg.PIXEL_MEAN, self.cfg.CHANNEL_ORDER)
            probs = predict_probs(self.mods[size], scaled, self.flip)
            if probs.shape[1:] != (self.grid, self.grid):
                probs = zoom_linear(probs, self.grid, self.grid)
            total = total + probs
        return total / len(self.sizes)


def run_inference(cfg, ctx, entries, model, flip=False, use_crf=False, mask_dir=None,
                  overlay_dir=None, scoremap_dir=None, workers=None, skipped=None,
                  marks=None, converted=None):
    """Segment ``entries`` with ``model`` (inference.load_inference_params); returns (confusion
    matrix summed over images with masks, count of those images). ``skipped``, a list:
    unreadable images are passed over and listed there (--images) instead of ending the run
    (evaluation); ``converted``, a dict, counts the conversions to 8-bit RGB. ``marks``, a
    list: (start, end) of each image's forward pass is appended, and (end, end) when everything
    was finished (bench/: the steady state without binding and the
    first pass's set-up, and the share of it that is not the network).

    With the CRF (or overlays to draw), decoding and post-processing run in worker processes
    beside the network. Without, the network is the floor and everything runs in this
    process between its passes: on a machine whose cores the network's threads fill, work
    beside them (a decoding thread or process, post-processing during the next pass) stalls
    every thread of the pass and cost ~3x its own time (bench/notes/)."""
    symbol, arg, aux, _ = model
    if list(cfg.TEST_SCALES) == [1.0]:
        mod = bind_inference(cfg, ctx[:1], symbol, arg, aux, 2 if flip else 1)

        def predict(data, rgb):
            return predict_probs(mod, data, flip)
    else:
        predict = MultiScale(cfg, ctx[:1], symbol, arg, aux, flip)
    heavy = use_crf or overlay_dir
    workers = worker_count(cfg.CRF_WORKERS) if workers is None else workers
    pool = shared_pool(workers) if heavy and workers > 1 else None
    params = crf.test_params(cfg) if use_crf else None
    for d in (mask_dir, overlay_dir, scoremap_dir):
        if d:
            os.makedirs(d, exist_ok=True)
    conf = np.zeros((cfg.CLASS_NUM, cfg.CLASS_NUM), np.int64)
    counted = 0
    pending = collections.deque()
    limit = 2 * max(1, workers)

    def add(result):
        nonlocal counted, conf
        _, c = result
        if c is not None:
            conf += c
            counted += 1

    corners = cfg.TEST_INTERPOLATION == "corners"
    stream = inference_stream(cfg, entries, None if heavy else 1, corners=corners,
                              skipped=skipped, converted=converted)
    for entry, data, rgb, mask in tqdm(stream, total=len(entries), desc="segmenting"):
        start = time.perf_counter() if marks is not None else None
        probs = predict(data, rgb)
        if marks is not None:
            marks.append((start, time.perf_counter()))
        if params and params["max_side"] and max(rgb.shape[:2]) > params["max_side"]:
            logging.info("%s is %dx%d: its CRF runs on a copy scaled to a long side of %d "
                         "(CRF_TEST_MAX_SIDE)", entry["image"], rgb.shape[1], rgb.shape[0],
                         params["max_side"])
        if scoremap_dir:
            atomic_save_npz(os.path.join(scoremap_dir, entry["id"] + ".npz"),
                            probs=probs.astype(np.float16))
        outputs = {}
        if mask_dir:
            outputs["mask"] = os.path.join(mask_dir, entry["id"] + ".png")
        if overlay_dir:
            outputs["overlay"] = os.path.join(overlay_dir, entry["id"] + ".png")
        job = (entry["id"], probs, rgb, mask, cfg.CLASS_NUM, params, outputs, corners)
        if pool is None:
            add(postprocess(job))
            continue
        pending.append(pool.submit(postprocess, job))
        while len(pending) >= limit:
            add(pending.popleft().result())
    while pending:
        add(pending.popleft().result())
    if marks is not None:
        now = time.perf_counter()
        marks.append((now, now))
    return conf, counted


def evaluate(cfg, method, ctx, epoch=None, flip=False, use_crf=False, savemask=False,
             savescoremap=False, int8=False):
    """Evaluate a snapshot of segmentation ``method`` (cores/methods/) on the val list
    (``int8``: its INT8 version, cores/quantize.py); writes and returns metrics.json's
    content."""
    classes, _, val = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    val = [e for e in val if e.get("mask")]
    if not val:
        raise DatasetError("the val list of %s has no images with masks, so there is nothing to "
                           "score (custom mode: create_dataset.py --val-images DIR --val-masks "
                           "DIR); eval.py --images DIR segments images without masks"
                           % cfg.DATASET_PATH)
    model = load_inference_params(cfg, method, epoch, ctx if int8 else None)
    epoch = model[3]
    out = output_dir(cfg, epoch, method, flip, use_crf, int8)
    check_writable(out)
    conf, counted = run_inference(
        cfg, ctx, val, model, flip, use_crf, os.path.join(out, "masks") if savemask else None,
        None, os.path.join(out, "scoremaps") if savescoremap else None)
    if savemask:
        from cores.visualize import legend_picture
        legend_picture(os.path.join(out, "legend.png"), classes)
    iou, miou, pixel_acc = iou_scores(conf)
    metrics = {"mIoU": miou, "IoU": dict(zip(classes, iou)), "pixel_accuracy": pixel_acc,
               "confusion_matrix": conf.tolist(), "images": counted, "epoch": epoch,
               "flags": {"flip": flip, "crf": use_crf,
                         "supervised": method.name == "supervised", "int8": int8,
                         "stage": method.name, "scales": list(cfg.TEST_SCALES)},
               "classes": classes, "errors": error_kinds(conf)}
    os.makedirs(out, exist_ok=True)
    with atomic_path(metrics_path(out)) as tmp:
        with open(tmp, "w") as f:
            json.dump(metrics, f, indent=1)
    logging.info("%s\n%s\n%s", out, format_iou_table(classes, iou, miou, pixel_acc),
                 format_error_kinds(metrics["errors"]))
    if cfg.TENSORBOARD:              # mIoU and IoU per class at this snapshot's epoch
        events = EventLog(run_folder(cfg, "eval-" + os.path.basename(out).rsplit("-", 1)[0]
                                     + os.path.basename(out).rsplit("-", 1)[1][4:]))
        for tag, value in [("mIoU", miou)] + [("IoU/" + c, v) for c, v in zip(classes, iou)]:
            if value is not None and value == value:        # None or NaN: nothing to score
                events.scalar(tag, value, epoch)
        events.close()
    return metrics


def label_training_set(cfg, method, ctx, epoch=None, flip=False, use_crf=False):
    """Pseudo-masks of every training image by a segmentation stage's snapshot (with the
    test-time flags and TEST_SCALES), as palette PNGs in the retraining's pseudo-mask folder:
    the targets
    of a retraining round (train_SEC.py --stage retrain). Where the training images have
    masks, their mIoU against them is written beside (metrics.json). Returns the folder."""
    from cores.methods.retrain import pseudo_mask_dir
    classes, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    model = load_inference_params(cfg, method, epoch)
    out = pseudo_mask_dir(cfg)
    check_writable(out)
    conf, counted = run_inference(cfg, ctx, train, model, flip, use_crf, out)
    metrics = {"images": len(train), "stage": method.name, "epoch": model[3],
               "flags": {"flip": flip, "crf": use_crf, "scales": list(cfg.TEST_SCALES)},
               "scored": counted, "mIoU": None}
    if counted:
        iou, miou, pixel_acc = iou_scores(conf)
        metrics.update(mIoU=miou, IoU=dict(zip(classes, iou)), pixel_accuracy=pixel_acc)
        logging.info("pseudo-masks of %d training images: mIoU %.3f against their masks",
                     counted, miou)
    with atomic_path(metrics_path(out)) as tmp:
        with open(tmp, "w") as f:
            json.dump(metrics, f, indent=1)
    logging.info("wrote %d pseudo-masks to %s", len(train), out)
    return out


def image_entries(path):
    """Entries for a single image file or every image in a folder."""
    if os.path.isfile(path):
        files = [path]
    elif os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(IMAGE_EXTENSIONS))
    else:
        raise DatasetError("--images: no such file or folder: %s" % path)
    if not files:
        raise DatasetError("--images: no images (%s) in %s" % (", ".join(IMAGE_EXTENSIONS),
                                                              path))
    return [{"id": os.path.splitext(os.path.basename(f))[0], "image": os.path.abspath(f),
             "mask": None} for f in files]


def class_names(cfg):
    """The dataset index's class names, or VOC's first CLASS_NUM without an index."""
    from cores.data.palette import VOC_CLASSES
    try:
        classes = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)[0]
    except DatasetError:
        classes = VOC_CLASSES[:cfg.CLASS_NUM]
    return classes + ["class %d" % c for c in range(len(classes), cfg.CLASS_NUM)]


def segment_images(cfg, method, ctx, path, epoch=None, flip=False, use_crf=False, int8=False):
    """Masks and image/mask overlays for arbitrary images, with a colour legend beside them,
    by a snapshot of segmentation ``method`` (SEC, the bound, ...); returns the output
    folder. An error when no image could be read."""
    from cores.visualize import legend_picture
    entries = image_entries(path)
    model = load_inference_params(cfg, method, epoch, ctx if int8 else None)
    out = os.path.join(output_dir(cfg, model[3], method, flip, use_crf, int8), "images")
    check_writable(out)
    skipped, converted = [], {}
    run_inference(cfg, ctx, entries, model, flip, use_crf, os.path.join(out, "masks"),
                  os.path.join(out, "overlays"), skipped=skipped, converted=converted)
    if converted:
        logging.info("%d of %d images are not 8-bit RGB and were converted (%s)",
                     sum(converted.values()), len(entries),
                     ", ".join("%s %d" % kv for kv in sorted(converted.items())))
    if skipped:
        logging.warning("WARNING: %d of %d images could not be read and were skipped:\n%s",
                        len(skipped), len(entries), "\n".join(m for _, m in skipped))
    if len(skipped) == len(entries):
        for folder in (os.path.join(out, "masks"), os.path.join(out, "overlays"), out,
                       os.path.dirname(out)):
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
        raise DatasetError("--images: none of the %d images in %s could be read; nothing was "
                           "written" % (len(entries), path))
    legend_picture(os.path.join(out, "legend.png"), class_names(cfg))
    logging.info("wrote masks and overlays of %d images to %s (colours: %s)",
                 len(entries) - len(skipped), out, os.path.join(out, "legend.png"))
    return out
