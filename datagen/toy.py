"""A seeded family of synthetic segmentation datasets in the exact on-disk formats of PASCAL VOC
2012 + SBD (palette PNGs with a void band, ``cls/<id>.mat``) or of a user's own data (image
folder, labels CSV, class list, palette-PNG masks).

A variant fixes the number of classes, their shapes, colours and textures (classes may share a
colour and differ only in shape or texture), background styles, object counts and sizes, image
sizes and a share of background-only images; its seed fixes every pixel. This module renders
the flat-colour style and writes every style's data set; the named variants are in
datagen/variants.py.
"""
import csv
import json
import os

import numpy as np
import scipy.io
import scipy.ndimage as ndi
import scipy.sparse
from PIL import Image

from cores.data.palette import VOC_CLASSES, save_palette_png

# ---------------------------------------------------------------- appearance
COLOURS = {
    "red": (205, 40, 40), "green": (40, 170, 60), "blue": (50, 70, 215), "yellow": (230, 195, 30),
    "magenta": (200, 50, 190), "cyan": (40, 190, 200), "orange": (240, 120, 20),
    "purple": (110, 40, 160), "brown": (130, 80, 40), "white": (235, 235, 235),
    "black": (25, 25, 25), "pink": (250, 150, 170),
}


def _shape(kind, u, v):
    """Inside test of a unit-sized shape in rotated coordinates u (down), v (right)."""
    if kind == "disc":
        return u ** 2 + v ** 2 <= 1
    if kind == "square":
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if kind == "triangle":
        return (u <= 0.7) & (u >= -1) & (np.abs(v) <= (u + 1) * 0.6)
    if kind == "diamond":
        return np.abs(u) + np.abs(v) <= 1
    if kind == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1))
    if kind == "ring":
        r = u ** 2 + v ** 2
        return (r <= 1) & (r >= 0.3)
    if kind == "star":
        angle, radius = np.arctan2(u, v), np.hypot(u, v)
        return radius <= 0.55 + 0.45 * np.cos(5 * angle) ** 2
    if kind == "ellipse":
        return (u / 0.55) ** 2 + v ** 2 <= 1
    if kind == "hexagon":
        a, b = np.abs(u), np.abs(v)
        return (a <= 0.87) & (a * 0.5 + b * 0.87 <= 0.87)
    if kind == "crescent":
        return (u ** 2 + v ** 2 <= 1) & ((u + 0.1) ** 2 + (v - 0.45) ** 2 > 0.6)
    raise ValueError("unknown shape %r" % kind)


SHAPES = ["disc", "square", "triangle", "diamond", "cross", "ring", "star", "ellipse",
          "hexagon", "crescent"]
TEXTURES = ["flat", "hstripes", "vstripes", "checker", "dots", "waves", "rings", "diagonal"]


def _texture(kind, yy, xx):
    """Brightness modulation in [0.55, 1] of a texture (pattern period a few pixels)."""
    if kind == "flat":
        t = np.ones_like(yy, np.float32)
    elif kind == "hstripes":
        t = (yy // 3) % 2
    elif kind == "vstripes":
        t = (xx // 3) % 2
    elif kind == "checker":
        t = ((yy // 4) + (xx // 4)) % 2
    elif kind == "dots":
        t = 1 - (((yy % 6) - 2.5) ** 2 + ((xx % 6) - 2.5) ** 2 < 4)
    elif kind == "waves":
        t = 0.5 + 0.5 * np.sin(xx * 0.9)
    elif kind == "rings":
        t = 0.5 + 0.5 * np.cos(np.hypot(yy, xx) * 0.8)
    elif kind == "diagonal":
        t = ((yy + xx) // 3) % 2
    else:
        raise ValueError("unknown texture %r" % kind)
    return 0.55 + 0.45 * np.asarray(t, np.float32)


# ---------------------------------------------------------------- backgrounds
def _random_colour(rng, saturated):
    if saturated:
        return rng.uniform(0, 255, 3)
    return np.full(3, rng.uniform(50, 200)) + rng.uniform(-15, 15, 3)


def _background(style, h, w, rng):
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    if style == "flat":
        img = np.empty((h, w, 3), np.float32)
        img[:] = _random_colour(rng, rng.rand() < 0.5)
    elif style == "gradient":
        a, b = _random_colour(rng, True), _random_colour(rng, True)
        angle = rng.uniform(0, np.pi)
        t = (np.cos(angle) * yy / h + np.sin(angle) * xx / w)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        img = a + (b - a) * t[..., None]
    elif style == "fields":                      # colourful blobs of soft patches
        cells = rng.randint(3, 7)
        low = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        img = np.stack([ndi.zoom(low[..., k], (h / cells, w / cells), order=1)[:h, :w]
                        for k in range(3)], axis=-1)
        img = np.pad(img, ((0, h - img.shape[0]), (0, w - img.shape[1]), (0, 0)), mode="edge")
    elif style == "stripes":
        period = rng.randint(6, 20)
        angle = rng.uniform(0, np.pi)
        band = ((np.cos(angle) * yy + np.sin(angle) * xx) // period).astype(int) % 2
        a, b = _random_colour(rng, rng.rand() < 0.7), _random_colour(rng, rng.rand() < 0.7)
        img = np.where(band[..., None] == 1, a, b).astype(np.float32)
    elif style == "clutter":                     # the demo's: grey gradient with bars and blobs
        img = np.full((h, w, 3), rng.uniform(70, 170), np.float32)
        img += (yy / h * rng.uniform(-40, 40) + xx / w * rng.uniform(-40, 40))[..., None]
        for _ in range(rng.randint(4, 9)):
            y0, x0 = rng.randint(0, h), rng.randint(0, w)
            y1, x1 = min(h, y0 + rng.randint(3, 20)), min(w, x0 + rng.randint(3, 20))
            img[y0:y1, x0:x1] = rng.uniform(40, 220) + rng.normal(0, 6, (y1 - y0, x1 - x0, 1))
    elif style == "colour_clutter":              # coloured rectangles and lines
        img = np.empty((h, w, 3), np.float32)
        img[:] = _random_colour(rng, False)
        for _ in range(rng.randint(5, 12)):
            y0, x0 = rng.randint(0, h), rng.randint(0, w)
            if rng.rand() < 0.5:
                y1, x1 = min(h, y0 + rng.randint(2, 6)), min(w, x0 + rng.randint(10, 40))
            else:
                y1, x1 = min(h, y0 + rng.randint(4, 18)), min(w, x0 + rng.randint(4, 18))
            img[y0:y1, x0:x1] = _random_colour(rng, True)
    else:
        raise ValueError("unknown background style %r" % style)
    return img + rng.normal(0, 10, (h, w, 3))


BACKGROUNDS = ["flat", "gradient", "fields", "stripes", "clutter", "colour_clutter"]


# ---------------------------------------------------------------- appearances of a variant
def appearances(spec):
    """[(shape, colour name, texture)] per foreground class; no two classes look alike.
    Fixed-appearance variants take the lists in order; others draw from the variant's seed,
    pairing shapes and textures so that every (shape, texture) pair is distinct."""
    k = spec["classes"]
    shapes, textures = list(spec["shapes"]), list(spec["textures"])
    colours = list(spec["colours"] or COLOURS)
    if spec.get("fixed_appearance"):
        return [(shapes[i], colours[i], textures[i]) for i in range(k)]
    if k > len(shapes) * len(textures):
        raise ValueError("%d classes need more shape/texture pairs" % k)
    rng = np.random.RandomState(spec["seed"] + 1000)
    shapes = [shapes[i] for i in rng.permutation(len(shapes))]
    textures = [textures[i] for i in rng.permutation(len(textures))]
    colours = [colours[i] for i in rng.permutation(len(colours))]
    return [(shapes[i % len(shapes)], colours[i % len(colours)],
             textures[(i // len(shapes) + i) % len(textures)]) for i in range(k)]


def render(rng, spec, looks, background_only=False):
    """One image (H, W, 3) uint8 RGB and its class map (H, W) uint8 (no void)."""
    h, w = rng.randint(spec["size"][0], spec["size"][1] + 1, size=2)
    img = _background(spec["backgrounds"][rng.randint(len(spec["backgrounds"]))], h, w, rng)
    mask = np.zeros((h, w), np.uint8)
    if background_only:
        return np.clip(img, 0, 255).astype(np.uint8), mask
    lo, hi = spec["objects"]
    count = min(rng.randint(lo, hi + 1), len(looks) if spec["classes"] > 1 else hi)
    if spec["classes"] > 1:
        kinds = rng.choice(np.arange(1, len(looks) + 1), size=count, replace=False)
    else:
        kinds = np.ones(count, int)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    side = min(h, w)
    for kind in kinds:
        shape_name, colour, texture = looks[int(kind) - 1]
        for _ in range(30):                         # a place that overlaps nothing
            r = rng.uniform(*spec["radius"]) * side
            cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
            angle = rng.uniform(-0.5, 0.5) if spec["rotate"] else 0.0
            # half the objects mirrored: a class looks as it does in a mirror as often as
            # not, as in natural images (a crescent or a diagonal texture is chiral), which
            # test-time flipping (eval.py --flip) assumes
            flip = -1.0 if spec.get("mirror") and rng.rand() < 0.5 else 1.0
            du, dv = (yy - cy) / r, flip * (xx - cx) / r
            u = np.cos(angle) * du - np.sin(angle) * dv
            v = np.sin(angle) * du + np.cos(angle) * dv
            shape = _shape(shape_name, u, v)
            if shape.sum() and not (ndi.binary_dilation(shape, iterations=3) & (mask > 0)).any():
                break
        else:
            continue
        tone = np.asarray(COLOURS[colour], np.float32) * rng.uniform(0.85, 1.1)
        tex = _texture(texture, (yy - cy).astype(int), (flip * (xx - cx)).astype(int))
        obj = tone * tex[..., None] + rng.normal(0, 8, (h, w, 3))
        img[shape] = obj[shape]
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


def class_names(spec):
    """Foreground class names: VOC's first names in the VOC layout, else colour_texture_shape
    (photographic variants and scenes: the texture photograph's name)."""
    if spec["layout"] == "voc":
        return VOC_CLASSES[1:spec["classes"] + 1]
    if spec.get("style") == "photo":
        from datagen import photo
        return photo.sources_for(spec)["names"]
    if spec.get("style") == "scenes":
        from datagen import scenes
        return scenes.class_names(spec)
    return ["%s_%s_%s" % (c, t, s) for s, c, t in appearances(spec)]


def _images(spec):
    """Yields (index, image, mask, extra) for n_train + n_val images; background-only images are
    spread evenly over the training part. ``extra``: (part map, record) of a scene
    (datagen/scenes.py), else None."""
    rng = np.random.RandomState(spec["seed"])
    if spec.get("style") == "photo":
        from datagen import photo
        looks, draw = photo.sources_for(spec), photo.render
    elif spec.get("style") == "scenes":
        from datagen import scenes
        looks, draw = scenes.sources_for(spec), scenes.render
    else:
        looks, draw = appearances(spec), render
    empty = set()
    if spec["bg_only"] > 0:
        step = 1.0 / spec["bg_only"]
        empty = {int(i * step) for i in range(int(spec["n_train"] * spec["bg_only"]))}
    for i in range(spec["n_train"] + spec["n_val"]):
        image, mask, *extra = draw(rng, spec, looks, background_only=i in empty)
        yield i, image, mask, (tuple(extra) or None)


def _save_scene(root, image_id, extra, scenes):
    """A scene's part map as parts/<id>.png and its record into ``scenes``."""
    if extra is None:
        return
    part_map, record = extra
    os.makedirs(os.path.join(root, "parts"), exist_ok=True)
    save_palette_png(os.path.join(root, "parts", image_id + ".png"), part_map)
    scenes[image_id] = record


def _write_voc(root, spec):
    voc = os.path.join(root, "VOCdevkit", "VOC2012")
    sbd = os.path.join(root, "benchmark_RELEASE", "dataset")
    for d in (os.path.join(voc, "JPEGImages"), os.path.join(voc, "SegmentationClass"),
              os.path.join(voc, "ImageSets", "Segmentation"), os.path.join(sbd, "img"),
              os.path.join(sbd, "cls")):
        os.makedirs(d, exist_ok=True)
    n_train, n_val = spec["n_train"], spec["n_val"]
    if n_val < 1 or n_train < 2:
        raise ValueError("a VOC-layout variant needs at least 2 training and 1 val images "
                         "(got %d and %d)" % (n_train, n_val))
    n_voc_train = spec.get("voc_train") or max(2, n_train // 4)
    if n_voc_train > n_train:            # a fixed count (the demo's 24) above a small n_train
        n_voc_train = max(1, n_train // 4)
    ids = ["%d_%06d" % (2007 + i % 5, 100 + i) for i in range(n_train + n_val)]
    # the demo's order: VOC train, VOC val, then SBD-only images
    voc_train = ids[:n_voc_train]
    voc_val = ids[n_voc_train:n_voc_train + n_val]
    sbd_only = ids[n_voc_train + n_val:]
    # like the real SBD, its lists also name VOC train and val images
    cut = int(0.75 * len(sbd_only))
    sbd_train = sbd_only[:cut] + voc_train[:n_voc_train // 4] + voc_val[:n_val // 5]
    sbd_val = (sbd_only[cut:] + voc_train[n_voc_train // 4:n_voc_train // 3]
               + voc_val[n_val // 5:n_val // 3])
    in_sbd = set(sbd_train) | set(sbd_val)
    order = voc_train + voc_val + sbd_only
    scenes = {}
    for i, image, mask, extra in _images(dict(spec, bg_only=0.0)):
        image_id = order[i]
        _save_scene(root, image_id, extra, scenes)
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
    _write_scenes(root, scenes)
    return dict(voc_train=voc_train, voc_val=voc_val, sbd_train=sorted(sbd_train),
                sbd_val=sorted(sbd_val))


def _write_scenes(root, scenes):
    if scenes:
        with open(os.path.join(root, "scenes.json"), "w") as f:
            json.dump(scenes, f, indent=0)


def _write_custom(root, spec):
    dirs = {k: os.path.join(root, k) for k in ("images", "masks", "val_images", "val_masks")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    names = class_names(spec)
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("".join(n + "\n" for n in names))
    rows, scenes = [], {}
    for i, image, mask, extra in _images(spec):
        train = i < spec["n_train"]
        stem = "img_%05d" % i if train else "val_%05d" % i
        _save_scene(root, stem, extra, scenes)
        Image.fromarray(image).save(os.path.join(dirs["images" if train else "val_images"],
                                                 stem + ".jpg"), quality=92)
        save_palette_png(os.path.join(dirs["masks" if train else "val_masks"], stem + ".png"),
                         void_border(mask))
        if train:
            rows.append((stem + ".jpg", ";".join(names[c - 1] for c in np.unique(mask) if c)))
    with open(os.path.join(root, "labels.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "labels"])
        writer.writerows(rows)
    _write_scenes(root, scenes)
    empty = sum(1 for r in rows if not r[1])
    return dict(train=len(rows), val=spec["n_val"], background_only=empty)


def make_dataset(root, spec):
    """Write a variant under ``root`` (VOCdevkit/ + benchmark_RELEASE/, or images/, labels.csv,
    classes.txt, masks/, val_images/, val_masks/) and ``root/variant.json``; returns the ids or
    counts written."""
    os.makedirs(root, exist_ok=True)
    written = (_write_voc if spec["layout"] == "voc" else _write_custom)(root, spec)
    looks = [] if spec.get("style") in ("photo", "scenes") else appearances(spec)
    info = dict(spec, appearances=looks, class_names=class_names(spec))
    with open(os.path.join(root, "variant.json"), "w") as f:
        json.dump(info, f, indent=1)
    return written
