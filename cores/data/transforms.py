"""Image decoding and resizing for the network and the CRF. No MXNet here: this runs in worker
processes."""
import numpy as np
import scipy.ndimage as ndi
import cv2
from PIL import Image

from cores.grid import zoom_linear
from cores.data.dataset import HIGH_DEPTH, MODE_NAMES, DatasetError, read_mask

cv2.setNumThreads(1)  # one decoding process per core already


def to_8bit(values):
    """A high-depth single-channel image (16-bit, 32-bit integer or float) scaled to uint8 by
    its type's range: 16-bit values / 257, floats in [0, 1] x 255; a range wider than the
    type's is scaled by its maximum."""
    values = np.asarray(values, np.float64)
    top = float(values.max()) if values.size else 0.0
    if values.dtype.kind == "f" and top <= 1.0:
        scale = 255.0
    elif top <= 255:
        scale = 1.0
    elif top <= 65535:
        scale = 1 / 257.0
    else:
        scale = 255.0 / top
    return np.clip(np.round(values * scale), 0, 255).astype(np.uint8)


def read_rgb(path):
    """((H, W, 3) uint8 RGB, the conversion's name or None): grayscale, palette, CMYK and RGBA
    images are converted (method §6), high-depth ones scaled to 8 bits; unreadable or truncated
    files raise an error naming them."""
    try:
        with Image.open(path) as im:
            if im.mode == "RGB":
                return np.array(im, dtype=np.uint8), None
            if im.mode in HIGH_DEPTH:
                raw = np.array(im)
                gray = to_8bit(raw.astype(np.float32) if im.mode == "F" else raw)
                return np.repeat(gray[:, :, None], 3, axis=2), MODE_NAMES[im.mode]
            return (np.array(im.convert("RGB"), dtype=np.uint8),
                    MODE_NAMES.get(im.mode, im.mode))
    except FileNotFoundError:
        raise DatasetError("image not found: %s" % path) from None
    except Exception as e:
        raise DatasetError("cannot read image %s (unreadable or truncated): %s" % (path, e)) \
            from None


def load_rgb(path):
    """(H, W, 3) uint8 RGB of any readable image (``read_rgb``)."""
    return read_rgb(path)[0]


def resize_rgb(rgb, size, corners=False):
    """Bilinear resize to size x size, float32 (method §2): OpenCV's half-pixel grid (Caffe's
    training data layer), or with ``corners`` the corner-aligned grid of
    ``scipy.ndimage.zoom(order=1)`` (the authors' test time, method §6)."""
    if corners:
        return zoom_linear(rgb.astype(np.float32).transpose(2, 0, 1), size, size).transpose(
            1, 2, 0)
    return cv2.resize(rgb.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


def to_net_input(resized, mean, channel_order):
    """(S, S, 3) RGB float -> (3, S, S) float32 in ``channel_order`` minus ``mean`` (given in
    that order)."""
    x = resized[:, :, ::-1] if channel_order == "BGR" else resized
    return np.ascontiguousarray((x - np.asarray(mean, np.float32)).transpose(2, 0, 1),
                                dtype=np.float32)


def crf_image(resized, out_size):
    """The CRF's image (method §5): the network input downscaled to out_size x out_size with
    linear interpolation (scipy's zoom, as the original), rounded, uint8, BGR (the original's
    order; the lattice is not invariant to it)."""
    factor = out_size / resized.shape[0]
    small = ndi.zoom(resized, (factor, factor, 1.0), order=1)
    if small.shape[:2] != (out_size, out_size):
        raise ValueError("zoom gave %s, expected %d" % (small.shape, out_size))
    return np.clip(np.round(small[:, :, ::-1]), 0, 255).astype(np.uint8)


def dense_cues(sparse, num_classes, out_size):
    """(3, M) rows class, y, x -> (C, H, W) float32 0/1."""
    cues = np.zeros((num_classes, out_size, out_size), np.float32)
    if sparse is not None and len(sparse[0]):
        cues[sparse[0], sparse[1], sparse[2]] = 1
    return cues


def load_multilabel(job):
    """Worker task: (data (3,S,S), label (C-1,)) for the cue networks."""
    entry, size, mean, order, num_fg, mirror = job
    resized = resize_rgb(load_rgb(entry["image"]), size)
    if mirror:
        resized = resized[:, ::-1]
    label = np.zeros(num_fg, np.float32)
    label[np.asarray(entry["labels"], int) - 1] = 1
    return to_net_input(resized, mean, order), label


def load_sec(job):
    """Worker task: (data, small image, labels (C,), cues (C,H,W)) for SEC training. Mirroring
    flips the image, the CRF image and the cues together."""
    entry, size, out_size, mean, order, num_classes, sparse_cues, mirror = job[:8]
    resized = resize_rgb(load_rgb(entry["image"]), size)
    cues = dense_cues(sparse_cues, num_classes, out_size)
    if mirror:
        resized = resized[:, ::-1]
        cues = cues[:, :, ::-1]
    labels = np.zeros(num_classes, np.float32)
    labels[0] = 1
    labels[np.asarray(entry["labels"], int)] = 1
    return (to_net_input(resized, mean, order), crf_image(resized, out_size), labels,
            np.ascontiguousarray(cues))


def load_supervised(job):
    """Worker task: (data, cues (C,H,W)) for the supervised bound (the SEC task without the
    CRF image and labels)."""
    data, _, _, cues = load_sec(job)
    return data, cues


def load_inference(job):
    """Worker task: (data (3,S,S), original RGB (H,W,3) uint8, mask (H,W) or None, the
    conversion to RGB or None); the resize on the corner-aligned grid when ``corners``
    (evaluation, method §6)."""
    entry, size, mean, order, corners = job
    rgb, converted = read_rgb(entry["image"])
    mask = read_mask(entry["mask"]) if entry.get("mask") else None
    if mask is not None and mask.shape != rgb.shape[:2]:
        raise DatasetError("mask %s is %dx%d but image %s is %dx%d" % (
            entry["mask"], mask.shape[1], mask.shape[0], entry["image"], rgb.shape[1],
            rgb.shape[0]))
    return to_net_input(resize_rgb(rgb, size, corners), mean, order), rgb, mask, converted
