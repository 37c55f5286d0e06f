"""The score grid and the image: where each cell of a score map sits on the image, and the maps
between them (method §6). The grid is corner-aligned: cell i of n sits on pixel
i (H - 1) / (n - 1), the first cell on the first pixel and the last on the last, as ``scipy.ndimage.zoom`` places
them. Masks meet the grid at the cells (``grid_mask``), cues are read on it (``corner_nearest``),
and scores go back to the image by linear interpolation on it (``zoom_linear``, ``upsample``,
``label_map``). No MXNet here: this runs in worker processes."""
import cv2
import numpy as np


def corner_nearest(n_in, n_out):
    """Index of the nearest of n_in samples for each of n_out samples when both grids align
    their first and last points (``scipy.ndimage.zoom(order=0)``): the score grid's cell i
    sits at image pixel i (H - 1) / (size - 1), the grid evaluation upsamples on (method §6)."""
    if n_out == 1 or n_in == 1:
        return np.zeros(n_out, np.intp)
    return np.floor(np.arange(n_out) * ((n_in - 1) / (n_out - 1)) + 0.5).astype(np.intp)


def grid_mask(mask, size):
    """A ground-truth mask on the size x size score grid: the pixel at each cell's centre.
    (OpenCV's nearest resize takes pixel floor(i H / size) instead, a cell off at the far
    border: the supervised bound learned shifted masks.)"""
    return mask[np.ix_(corner_nearest(mask.shape[0], size), corner_nearest(mask.shape[1], size))]


def grid_to_image(labels, height, width):
    """A label map on the score grid -> height x width, each pixel taking its nearest cell on
    the corner-aligned grid (the inverse of ``grid_mask``)."""
    return labels[np.ix_(corner_nearest(labels.shape[0], height),
                         corner_nearest(labels.shape[1], width))]


def corner_weights(n_in, n_out):
    """Source indices and weights of linear interpolation with aligned corners."""
    x = np.arange(n_out, dtype=np.float64) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    lo = np.minimum(np.floor(x).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (x - lo).astype(np.float32)


def zoom_linear(maps, height, width):
    """(C, h, w) -> (C, height, width) float32 by linear interpolation on the corner-aligned
    grid of ``scipy.ndimage.zoom(maps, (1, height/h, width/w), order=1)`` (the authors'
    upsampling of the scores, method §6), separably and without per-pixel Python."""
    maps = np.asarray(maps, np.float32)
    lo, hi, w = corner_weights(maps.shape[1], height)
    rows = maps[:, lo] * (1 - w)[None, :, None] + maps[:, hi] * w[None, :, None]
    lo, hi, w = corner_weights(maps.shape[2], width)
    return rows[:, :, lo] * (1 - w) + rows[:, :, hi] * w


def upsample(probs, height, width, corners=True):
    """(C, h, w) -> (C, H, W) bilinear: on the corner-aligned grid of the authors'
    ``scipy.ndimage.zoom(order=1)`` (method §6), or OpenCV's half-pixel grid (``corners`` False,
    TEST_INTERPOLATION: half_pixel)."""
    if corners:
        return zoom_linear(probs, height, width)
    up = cv2.resize(np.ascontiguousarray(probs.transpose(1, 2, 0)), (width, height),
                    interpolation=cv2.INTER_LINEAR)
    if up.ndim == 2:
        up = up[:, :, None]
    return up.transpose(2, 0, 1)


def _corners_of_blocks(a):
    """(4, h-1, w-1): the four cells at the corners of each block between cells."""
    return np.stack([a[:-1, :-1], a[1:, :-1], a[:-1, 1:], a[1:, 1:]])


def label_map(probs, height, width, corners=True, margin=1e-5):
    """argmax over classes of the probabilities upsampled to height x width, the masks of
    upsampling every class (``upsample``) at a fraction of its cost (method §6). On the corner
    grid every pixel is a convex combination of the four cells around it with the same weights
    for every class: where one class leads every other by ``margin`` at all four cells it
    leads inside too (margin >> float32 rounding), so only pixels of the other blocks are
    interpolated, and only for classes that can win there (a class below 1/C of the smallest
    total at every cell cannot: the winner holds at least 1/C of its pixel)."""
    num, h, w = probs.shape
    if not corners or h < 2 or w < 2:
        return upsample(probs, height, width, corners).argmax(axis=0).astype(np.uint8)
    probs = np.asarray(probs, np.float32)
    keep = np.arange(num)
    if num > 2:
        floor = probs.reshape(num, -1).sum(axis=0).min() / num * (1 - 1e-4)
        keep = np.flatnonzero(probs.reshape(num, -1).max(axis=1) >= floor)
    probs = probs[keep]
    order = np.sort(probs, axis=0)
    top = probs.argmax(axis=0)
    lead = order[-1] - order[-2] if len(keep) > 1 else np.full((h, w), np.inf, np.float32)
    tops, leads = _corners_of_blocks(top), _corners_of_blocks(lead)
    decided = (tops == tops[0]).all(axis=0) & (leads >= margin).all(axis=0)
    ylo, yhi, wy = corner_weights(h, height)
    xlo, xhi, wx = corner_weights(w, width)
    by, bx = np.minimum(ylo, h - 2), np.minimum(xlo, w - 2)     # last row/column: closed block
    label = keep.astype(np.uint8)[tops[0]][by][:, bx]
    ys, xs = np.nonzero(~decided[by][:, bx])
    if len(ys):
        rows = probs[:, ylo] * (1 - wy)[None, :, None] + probs[:, yhi] * wy[None, :, None]
        values = rows[:, ys, xlo[xs]] * (1 - wx[xs]) + rows[:, ys, xhi[xs]] * wx[xs]
        label[ys, xs] = keep.astype(np.uint8)[values.argmax(axis=0)]
    return label
