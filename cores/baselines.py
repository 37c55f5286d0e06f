"""Reference points for a SEC result on the same val list: all-background, and the
localization cues alone (foreground cues over background, unknown = background), computed on
the val images from their image-level labels with the trained CAM network. (Background cues
change nothing here: every pixel without a foreground cue is background anyway.)"""
import logging

import numpy as np

from cores import checkpoint, cues, stages
from cores.grid import grid_to_image
from cores.data.dataset import load_index, read_mask
from cores.classifier import train_symbol
from cores.localization import fg_cues_for
from cores.metrics import confusion_matrix, format_iou_table, iou_scores


def _cue_network_params(cfg, stage):
    prefix = stages.prefix(cfg, stage)
    epoch = checkpoint.latest_epoch(prefix)
    if not epoch:
        raise checkpoint.CheckpointError("no %s snapshot under %s" % (stage.name, prefix))
    batch = stages.Schedule(cfg, stage).batch_size
    symbol = train_symbol(cfg, stage)
    shapes = {"data": stages.image_shape(cfg, batch), "label": (batch, cfg.CLASS_NUM - 1)}
    arg, aux, _ = checkpoint.load_snapshot(prefix, epoch, symbol, shapes)
    return arg, aux, batch


def baselines(cfg, ctx):
    """{'all_background': metrics, 'cues': metrics} with mIoU and per-class IoU."""
    classes, _, val = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    val = [e for e in val if e.get("mask")]
    masks = {e["id"]: read_mask(e["mask"]) for e in val}
    labelled = [dict(e, labels=[int(v) for v in np.unique(masks[e["id"]]) if 0 < v < 255])
                for e in val]
    labelled = [e for e in labelled if e["labels"]]
    size = stages.score_size(cfg)
    arg, aux, batch = _cue_network_params(cfg, stages.CAM)
    fg = fg_cues_for(cfg, ctx, arg, aux, labelled, batch)
    n = cfg.CLASS_NUM
    conf_bg, conf_cue = np.zeros((n, n), np.int64), np.zeros((n, n), np.int64)
    for e in val:
        gt = masks[e["id"]]
        conf_bg += confusion_matrix(np.zeros_like(gt), gt, n)
        label = np.zeros((size, size), np.uint8)
        if e["id"] in fg:
            merged = cues.merge_cues(cues.sparse_to_masks(fg[e["id"]], size),
                                     np.zeros((size, size), bool))
            label[merged[1], merged[2]] = merged[0]
        pred = grid_to_image(label, gt.shape[0], gt.shape[1])
        conf_cue += confusion_matrix(pred, gt, n)
    out = {}
    for name, conf in (("all_background", conf_bg), ("cues", conf_cue)):
        iou, miou, acc = iou_scores(conf)
        out[name] = {"mIoU": miou, "IoU": dict(zip(classes, iou)), "pixel_accuracy": acc,
                     "images": len(val)}
        logging.info("baseline %s\n%s", name, format_iou_table(classes, iou, miou, acc))
    return out
