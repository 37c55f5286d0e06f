"""A small synthetic PASCAL VOC 2012 + SBD in their exact on-disk layouts (the embedded default).

Each image holds one or two objects of distinct classes, each class with its own shape, colour
and texture, on a cluttered background. VOC masks are palette PNGs with a 255 void band around
objects; SBD masks are ``cls/<id>.mat`` files with ``GTcls.Segmentation`` (no void), and the SBD
lists also name some VOC train and val ids, as the real SBD does.
"""
import os

import numpy as np
import scipy.io
import scipy.ndimage as ndi
import scipy.sparse
from PIL import Image

from cores.data.palette import save_palette_png

TOY_CLASSES = 4   # object classes 1..4 (VOC names aeroplane, bicycle, bird, boat)


def _shape_mask(kind, h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    dy, dx = yy - cy, xx - cx
    if kind == 1:                                   # disc
        return dy ** 2 + dx ** 2 <= r ** 2
    if kind == 2:                                   # square
        return (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
    if kind == 3:                                   # upward triangle
        return (dy <= r * 0.7) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    return np.abs(dy) + np.abs(dx) <= r             # diamond


def _texture(kind, h, w, rng):
    yy, xx = np.mgrid[:h, :w]
    base = {1: (200, 40, 40), 2: (40, 170, 60), 3: (50, 70, 210), 4: (230, 190, 30)}[kind]
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    if kind == 1:
        img *= (0.75 + 0.25 * np.cos(np.hypot(yy, xx) * 0.8))[..., None]
    elif kind == 2:
        img *= (0.7 + 0.3 * ((yy // 3) % 2))[..., None]
    elif kind == 3:
        img *= (0.8 + 0.2 * np.sin(xx * 0.9))[..., None]
    else:
        img *= (0.7 + 0.3 * (((yy // 4) + (xx // 4)) % 2))[..., None]
    return img + rng.normal(0, 8, img.shape)


def _background(h, w, rng):
    yy, xx = np.mgrid[:h, :w]
    tone = rng.uniform(70, 170)
    img = np.full((h, w, 3), tone, np.float32)
    img += (yy / h * rng.uniform(-40, 40) + xx / w * rng.uniform(-40, 40))[..., None]
    img += rng.normal(0, 12, (h, w, 3))
    for _ in range(rng.randint(4, 9)):             # grey clutter: bars and blobs
        y0, x0 = rng.randint(0, h), rng.randint(0, w)
        y1, x1 = min(h, y0 + rng.randint(3, 20)), min(w, x0 + rng.randint(3, 20))
        img[y0:y1, x0:x1] = rng.uniform(40, 220) + rng.normal(0, 6, (y1 - y0, x1 - x0, 1))
    return img


def render(rng, num_classes=TOY_CLASSES):
    """One image (H, W, 3) uint8 RGB and its class map (H, W) uint8 without void."""
    h, w = rng.randint(90, 131), rng.randint(90, 131)
    img = _background(h, w, rng)
    mask = np.zeros((h, w), np.uint8)
    count = 1 if rng.rand() < 0.6 else 2
    for kind in rng.choice(np.arange(1, num_classes + 1), size=count, replace=False):
        for _ in range(20):                        # find a place that overlaps nothing
            r = rng.randint(14, 26)
            cy, cx = rng.randint(r, h - r), rng.randint(r, w - r)
            shape = _shape_mask(int(kind), h, w, cy, cx, r)
            if not (ndi.binary_dilation(shape, iterations=3) & (mask > 0)).any():
                break
        tex = _texture(int(kind), h, w, rng)
        img[shape] = tex[shape]
        mask[shape] = kind
    return np.clip(img, 0, 255).astype(np.uint8), mask


def void_border(mask, width=2):
    """VOC's 255 band along object boundaries."""
    out = mask.copy()
    edge = np.zeros(mask.shape, bool)
    for c in np.unique(mask[mask > 0]):
        obj = mask == c
        edge |= ndi.binary_dilation(obj, iterations=width) ^ ndi.binary_erosion(obj, iterations=1)
    out[edge] = 255
    return out


def _save_sbd_mat(path, mask, num_classes):
    present = np.unique(mask[mask > 0]).astype(np.uint8)
    boundaries = np.empty((num_classes, 1), dtype=object)
    for c in range(1, num_classes + 1):
        obj = mask == c
        edge = obj ^ ndi.binary_erosion(obj)
        boundaries[c - 1, 0] = scipy.sparse.csc_matrix(edge)
    gtcls = {"Segmentation": mask, "Boundaries": boundaries,
             "CategoriesPresent": present.reshape(-1, 1)}
    scipy.io.savemat(path, {"GTcls": gtcls}, do_compression=True)


def make_toy_voc(root, seed=0, n_voc_train=24, n_voc_val=20, n_sbd_only=80,
                 num_classes=TOY_CLASSES):
    """Write ``root/VOCdevkit/VOC2012`` and ``root/benchmark_RELEASE/dataset``; returns the ids
    as a dict of lists (voc_train, voc_val, sbd_train, sbd_val)."""
    rng = np.random.RandomState(seed)
    voc = os.path.join(root, "VOCdevkit", "VOC2012")
    sbd = os.path.join(root, "benchmark_RELEASE", "dataset")
    for d in (os.path.join(voc, "JPEGImages"), os.path.join(voc, "SegmentationClass"),
              os.path.join(voc, "ImageSets", "Segmentation"), os.path.join(sbd, "img"),
              os.path.join(sbd, "cls")):
        os.makedirs(d, exist_ok=True)
    total = n_voc_train + n_voc_val + n_sbd_only
    ids = ["%d_%06d" % (2007 + i % 5, 100 + i) for i in range(total)]
    voc_train, voc_val = ids[:n_voc_train], ids[n_voc_train:n_voc_train + n_voc_val]
    sbd_only = ids[n_voc_train + n_voc_val:]
    # Like the real SBD: its lists also name VOC train and val images.
    sbd_train = sbd_only[: int(0.75 * n_sbd_only)] + voc_train[:6] + voc_val[:4]
    sbd_val = sbd_only[int(0.75 * n_sbd_only):] + voc_train[6:8] + voc_val[4:6]
    in_sbd = set(sbd_train) | set(sbd_val)
    for image_id in ids:
        image, mask = render(rng, num_classes)
        jpeg = Image.fromarray(image)
        jpeg.save(os.path.join(voc, "JPEGImages", image_id + ".jpg"), quality=92)
        if image_id in voc_train or image_id in voc_val:
            save_palette_png(os.path.join(voc, "SegmentationClass", image_id + ".png"),
                             void_border(mask))
        if image_id in in_sbd:
            jpeg.save(os.path.join(sbd, "img", image_id + ".jpg"), quality=92)
            _save_sbd_mat(os.path.join(sbd, "cls", image_id + ".mat"), mask, 20)
    lists = {os.path.join(voc, "ImageSets", "Segmentation", "train.txt"): voc_train,
             os.path.join(voc, "ImageSets", "Segmentation", "val.txt"): voc_val,
             os.path.join(sbd, "train.txt"): sorted(sbd_train),
             os.path.join(sbd, "val.txt"): sorted(sbd_val)}
    for path, names in lists.items():
        with open(path, "w") as f:
            f.write("".join(n + "\n" for n in names))
    return dict(voc_train=voc_train, voc_val=voc_val, sbd_train=sorted(sbd_train),
                sbd_val=sorted(sbd_val))
