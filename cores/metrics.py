"""Segmentation metrics: a confusion matrix over all classes, void (255) ignored (method §6)."""
import numpy as np


def confusion_matrix(pred, gt, num_classes, ignore=255):
    """(C, C) int64 counts, rows = ground truth, columns = prediction."""
    valid = gt != ignore
    index = gt[valid].astype(np.int64) * num_classes + pred[valid].astype(np.int64)
    return np.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_scores(conf):
    """Per-class IoU = TP / (TP + FP + FN); None where a class is in neither prediction nor
    ground truth. mIoU averages the defined ones."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union)]
    defined = [v for v in iou if v is not None]
    miou = float(np.mean(defined)) if defined else None
    total = conf.sum()
    pixel_acc = float(tp.sum() / total) if total else None
    return iou, miou, pixel_acc


def error_kinds(conf):
    """Where the errors are, class 0 being background: predicted over true foreground area, and
    each kind's share of the wrong pixels (background taken for an object, an object for
    background, one object for another). SEC's masks overshoot: almost all of its errors are
    background taken for an object (docs/benchmarks.md)."""
    conf = np.asarray(conf, dtype=np.float64)
    wrong = conf.sum() - np.trace(conf)
    fg_true, fg_pred = conf[1:].sum(), conf[:, 1:].sum()
    bg_as_fg, fg_as_bg = conf[0, 1:].sum(), conf[1:, 0].sum()
    share = (lambda n: float(n / wrong)) if wrong else (lambda n: None)
    return {"fg_area_ratio": float(fg_pred / fg_true) if fg_true else None,
            "bg_as_fg": share(bg_as_fg), "fg_as_bg": share(fg_as_bg),
            "fg_as_other_fg": share(wrong - bg_as_fg - fg_as_bg)}


def format_error_kinds(kinds):
    def pct(v):
        return "-" if v is None else "%.0f %%" % (100 * v)
    ratio = kinds["fg_area_ratio"]
    return ("predicted / true foreground area %s; errors: background as object %s, object as "
            "background %s, object as another %s" % (
                "-" if ratio is None else "%.3f" % ratio, pct(kinds["bg_as_fg"]),
                pct(kinds["fg_as_bg"]), pct(kinds["fg_as_other_fg"])))


def format_iou_table(class_names, iou, miou, pixel_acc):
    lines = ["%-14s %7s" % ("class", "IoU")]
    lines += ["%-14s %7s" % (n, "%.4f" % v if v is not None else "-")
              for n, v in zip(class_names, iou)]
    lines.append("%-14s %7.4f" % ("mIoU", miou if miou is not None else float("nan")))
    lines.append("%-14s %7.4f" % ("pixel acc.", pixel_acc if pixel_acc is not None
                                  else float("nan")))
    return "\n".join(lines)


def average_precision(scores, positive):
    """AP of one class: mean precision at the rank of each positive (scores descending).
    None when the class has no positive or no negative example."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return None
    order = np.argsort(-scores, kind="stable")
    hits = positive[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def classification_report(scores, labels, class_names):
    """Per-class AP and mAP of multi-label scores (N, K) against 0/1 labels (N, K); classes
    without negative or positive images are listed apart (their AP is undefined)."""
    scores, labels = np.asarray(scores), np.asarray(labels).astype(bool)
    ap = {name: average_precision(scores[:, k], labels[:, k])
          for k, name in enumerate(class_names)}
    defined = [v for v in ap.values() if v is not None]
    return {"AP": ap, "mAP": float(np.mean(defined)) if defined else None,
            "images": int(len(scores)),
            "no_negatives": [n for k, n in enumerate(class_names) if labels[:, k].all()],
            "no_positives": [n for k, n in enumerate(class_names) if not labels[:, k].any()]}


def read_metrics(path):
    """An eval output folder's metrics.json (or that file itself) as a dict; the one reader of
    evaluation results (tools, the demo's table, the quality benchmark)."""
    import json
    import os
    from cores.stages import metrics_path
    path = metrics_path(path) if os.path.isdir(path) else path
    with open(path) as f:
        return json.load(f)


def stage_metrics(cfg, method, flip=False, crf=False, int8=False, epoch=None):
    """The metrics of ``method``'s evaluation with these flags, of snapshot ``epoch`` (default:
    the latest), or None where that evaluation has not run."""
    import os
    from cores import stages
    epoch = epoch or stages.latest_epoch(stages.prefix(cfg, method))
    path = stages.metrics_path(stages.output_dir(cfg, epoch, method, flip, crf, int8))
    return read_metrics(path) if epoch and os.path.isfile(path) else None
