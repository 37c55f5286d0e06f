"""Localization cues (method §3): the foreground and background rules, compact storage, the merge
into SEC's training cues, and a report against known masks. No MXNet here.

A cue set maps an image id to a (3, M) int array whose rows are class, y, x on the score grid,
the layout of the authors' released cues.
"""
import json
import os

import numpy as np
import scipy.ndimage as ndi

from cores.errors import SECError
from cores.grid import grid_mask
from cores.io import atomic_path, atomic_save_npz


# ---------------------------------------------------------------- rules
def fg_cue_rule(cam, labels, threshold=0.2):
    """{class: bool (H, W)}: CAM_c > threshold * max(CAM_c) for each labelled class c.
    ``cam`` is (C-1, H, W) with channel c-1 for class c."""
    out = {}
    for c in labels:
        heat = cam[int(c) - 1]
        out[int(c)] = heat > threshold * heat.max()
    return out


def saliency_map(gradient):
    """max over channels of |gradient| (K, H, W) -> (H, W). The gradient is taken with respect
    to the saliency layer's pre-activation, so ReLU-inactive units already carry zero."""
    return np.abs(gradient).max(axis=0)


def bg_cue_rule(saliency, fraction=0.1, median_size=3):
    """bool (H, W): the 3x3-median-filtered saliency below its int(fraction*H*W)-th smallest
    value (strictly below: ties at the threshold are not background)."""
    smooth = ndi.median_filter(saliency, size=median_size)
    threshold = np.sort(smooth.ravel())[int(fraction * smooth.size)]
    return smooth < threshold


def merge_cues(fg, bg):
    """One label per pixel (method §3): background where ``bg``, then foreground classes from the
    largest cue to the smallest, so foreground beats background and the smaller foreground cue
    wins an overlap (equal sizes: the lower class id, painted last). Returns (3, M) class, y, x."""
    label = np.full(bg.shape, -1, np.int64)
    label[bg] = 0
    for c in sorted(fg, key=lambda k: (int(fg[k].sum()), k), reverse=True):
        label[fg[c]] = c
    ys, xs = np.nonzero(label >= 0)
    return np.stack([label[ys, xs], ys, xs]).astype(np.int64)


def masks_to_sparse(masks):
    """{class: bool (H, W)} -> (3, M), one row triple per (class, pixel); overlaps kept."""
    parts = [np.stack([np.full(len(ys), c), ys, xs])
             for c, m in sorted(masks.items()) for ys, xs in [np.nonzero(m)]]
    if not parts:
        return np.zeros((3, 0), np.int64)
    return np.concatenate(parts, axis=1).astype(np.int64)


def sparse_to_masks(sparse, size):
    """(3, M) -> {class: bool (size, size)}."""
    out = {}
    for c in np.unique(sparse[0]):
        m = np.zeros((size, size), bool)
        sel = sparse[0] == c
        m[sparse[1][sel], sparse[2][sel]] = True
        out[int(c)] = m
    return out


# ---------------------------------------------------------------- storage
def _ragged(arrays, ids, axis):
    counts = [arrays[i].shape[axis] for i in ids]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return offsets, (np.concatenate([arrays[i] for i in ids], axis=axis) if ids else None)


def save_cues(path, cues, size, labels=None):
    """Write {id: (3, M)} (and optionally {id: label array}) as one compressed .npz (no
    pickle), atomically."""
    ids = sorted(cues)
    offsets, data = _ragged(cues, ids, 1)
    extra = {}
    if labels is not None:
        label_offsets, label_data = _ragged(labels, ids, 0)
        extra = dict(label_offsets=label_offsets,
                     labels=(label_data if label_data is not None else np.zeros(0)).astype(
                         np.int64))
    atomic_save_npz(path, ids=np.array(ids, dtype=str), offsets=offsets,
                    cues=(data if data is not None else np.zeros((3, 0))).astype(np.uint16),
                    size=np.int64(size), **extra)


class CueFileError(SECError):
    """A cue file that is missing, unreadable or inconsistent; the message names it."""


def load_cues(path, with_labels=False):
    """({id: (3, M) int64}, grid size) [, {id: labels} when stored and asked for]. A truncated
    file, missing arrays, inconsistent offsets or coordinates outside the grid are a
    CueFileError naming the file (and the image)."""
    if not os.path.isfile(path):
        raise CueFileError("cue file not found: %s" % path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("ids", "offsets", "cues", "size") if k not in z.files]
            if missing:
                raise CueFileError("%s is not a cue file: it lacks %s"
                                   % (path, ", ".join(missing)))
            ids, offsets, data = z["ids"], z["offsets"], z["cues"].astype(np.int64)
            size = int(z["size"])
            label_offsets = z["label_offsets"] if "label_offsets" in z.files else None
            label_data = z["labels"] if "labels" in z.files else None
    except CueFileError:
        raise
    except Exception as e:  # a truncated or foreign file
        raise CueFileError("cannot read cue file %s (truncated or not a cue file): %s"
                           % (path, e)) from None
    if (data.ndim != 2 or data.shape[0] != 3 or len(offsets) != len(ids) + 1
            or offsets[-1] != data.shape[1] or np.any(np.diff(offsets) < 0)):
        raise CueFileError("%s is inconsistent: %d ids, offsets up to %s, cues of shape %s"
                           % (path, len(ids), offsets[-1] if len(offsets) else None,
                              data.shape))
    cue_set = {str(i): data[:, offsets[k]:offsets[k + 1]] for k, i in enumerate(ids)}
    outside = (data[1:] < 0) | (data[1:] >= size)
    if outside.any():
        column = int(np.nonzero(outside.any(axis=0))[0][0])
        image = str(ids[np.searchsorted(offsets, column, side="right") - 1])
        raise CueFileError("%s: image %s has cue coordinates outside the %dx%d grid"
                           % (path, image, size, size))
    if not with_labels:
        return cue_set, int(size)
    labels = None
    if label_offsets is not None:
        labels = {str(i): label_data[label_offsets[k]:label_offsets[k + 1]]
                  for k, i in enumerate(ids)}
    return cue_set, int(size), labels


def check_classes(cue_set, num_classes, path):
    """Every cue's class below ``num_classes`` (CLASS_NUM), or a CueFileError naming the
    image."""
    for image_id, sparse in cue_set.items():
        if len(sparse[0]) and (sparse[0].min() < 0 or sparse[0].max() >= num_classes):
            raise CueFileError("%s: image %s has cues of class %d, but CLASS_NUM=%d"
                               % (path, image_id, int(sparse[0].max()), num_classes))


def merge_cue_files(fg_path, bg_path, out_path):
    """SEC training cues from the stage outputs; every fg image must have bg cues."""
    fg, size = load_cues(fg_path)
    bg, bg_size = load_cues(bg_path)
    if size != bg_size:
        raise CueFileError("%s is on a %dx%d grid but %s on %dx%d"
                           % (fg_path, size, size, bg_path, bg_size, bg_size))
    missing = sorted(set(fg) ^ set(bg))
    if missing:
        raise CueFileError("%s and %s cover different images, e.g. %s" % (fg_path, bg_path,
                                                                       missing[:5]))
    merged = {}
    for image_id in fg:
        bg_mask = sparse_to_masks(bg[image_id], size).get(0, np.zeros((size, size), bool))
        merged[image_id] = merge_cues(sparse_to_masks(fg[image_id], size), bg_mask)
    save_cues(out_path, merged, size)
    return merged, size


def mask_cues(mask, size):
    """(3, M) 'cues' of every non-void pixel of a ground-truth mask on the score grid: the
    training target of the fully supervised bound."""
    grid = grid_mask(mask, size)
    ys, xs = np.nonzero(grid != 255)
    return np.stack([grid[ys, xs], ys, xs]).astype(np.int64)


# ---------------------------------------------------------------- report
def cue_report(cues, size, entries, class_names, read_mask):
    """Per class: precision of the cues against the masks (void ignored) and the fraction of
    each class's object pixels they cover; the same for background. Sums over the images with
    masks; ``cue_cells`` counts every image's cues (all that can be said without masks)."""
    num = len(class_names)
    hit, cued, area, total = np.zeros(num), np.zeros(num), np.zeros(num), np.zeros(num)
    images = unmasked = 0
    for entry in entries:
        if entry["id"] not in cues:
            continue
        np.add.at(total, cues[entry["id"]][0], 1)
        if not entry.get("mask"):
            unmasked += 1
            continue
        gt = grid_mask(read_mask(entry["mask"]), size)
        sparse = cues[entry["id"]]
        cls, ys, xs = sparse
        valid = gt[ys, xs] != 255
        np.add.at(cued, cls[valid], 1)
        np.add.at(hit, cls[valid], (gt[ys, xs] == cls)[valid])
        for c in np.unique(gt):
            if c != 255:
                area[c] += (gt == c).sum()
        images += 1
    rows = {}
    for c in range(num):
        rows[class_names[c]] = {
            "precision": float(hit[c] / cued[c]) if cued[c] else None,
            "coverage": float(hit[c] / area[c]) if area[c] else None,
            "cue_pixels": int(cued[c]), "cue_cells": int(total[c])}
    fg = slice(1, num)
    return {"images": images, "images_without_masks": unmasked, "classes": rows,
            "fg_precision": float(hit[fg].sum() / cued[fg].sum()) if cued[fg].sum() else None,
            "bg_precision": float(hit[0] / cued[0]) if cued[0] else None}


def format_report(report):
    """The report as a table; without masks only the cue cells of every image can be shown."""
    masked = report["images"] > 0
    lines = ["%-14s %9s %9s %10s" % ("class", "precision", "coverage",
                                     "cue px" if masked else "cue cells")]
    for name, row in report["classes"].items():
        fmt = lambda v: "%9.3f" % v if v is not None else "%9s" % "-"  # noqa: E731
        count = row["cue_pixels"] if masked else row.get("cue_cells", 0)
        lines.append("%-14s %s %s %10d" % (name, fmt(row["precision"]), fmt(row["coverage"]),
                                            count))
    if masked:
        lines.append("foreground precision %s, background precision %s over %d images with "
                     "masks" % (report["fg_precision"], report["bg_precision"],
                                report["images"]))
    else:
        lines.append("no training image has a mask: precision and coverage cannot be measured; "
                     "'cue cells' counts the cues of all %d images"
                     % report.get("images_without_masks", 0))
    return "\n".join(lines)


def save_report(path, report):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1)


def cue_label_map(sparse, size, unlabeled=255):
    """(size, size) uint8 labels for pictures: the cue's class, ``unlabeled`` elsewhere; with
    overlapping (unmerged) cues the last class listed shows."""
    out = np.full((size, size), unlabeled, np.uint8)
    out[sparse[1], sparse[2]] = sparse[0]
    return out
