"""Photographic scenes with the failure modes of PASCAL VOC that weakly-supervised segmentation
meets, each an option of the variant's spec (off when absent), so that its effect can be
measured on its own:

- ``parts`` {"share": (lo, hi), "pool": n}: an object is a body and a smaller head, the head
  ``share`` of its area; the head has its class's texture, the body one of ``pool`` textures
  that every class shares. What tells the classes apart, and so a CAM, sits on the head.
- ``context`` p: each class has a context, a background photograph that ``context_groups``
  classes share (VOC: grass behind cows, sheep and horses); an image shows the context of one
  of its classes with probability p, else any background, so that the background predicts
  the label, or the group it belongs to.
- ``appearances`` k: k textures per class (its object's or its head's), one drawn per object.
- ``area`` (lo, hi): an object's area as a share of the image, log-uniform (VOC: from a few
  per cent to most of the image); without it a radius as in datagen/photo.py.
- ``instances`` (most, p): 1 + a geometric number (probability p of one more) of objects of
  each class in the image, at most ``most``.
- ``occlusion``: objects may overlap, later ones covering earlier ones, as long as every object
  keeps at least half of its area in sight; without it an object that would touch another is
  placed again.
- ``classes_per_image``: weights of 1, 2, 3, ... classes in an image (VOC train_aug: 64 %, 27 %,
  7 %, 1.5 %); without it uniform over ``objects``.

Textures, tints, the lighting gradient and the JPEG compression are datagen/photo.py's. A scene
also returns its part map (0 background, 1 a class's own texture, 2 a shared body) and a record
of what was drawn, written beside the data set (datagen/toy.py) for the calibration and tests.
"""
import numpy as np

from datagen.photo import BACKGROUND_PHOTOS, TEXTURES, TINTS, _crop, finish

# the shared bodies: never a class texture or a background
BODY_PHOTOS = ["clock", "cell", "stereo_motorcycle"]
# appearances beyond the photographs: the same photograph, negated
TRANSFORMS = ["plain", "negative"]

UNIQUE, SHARED = 1, 2


def photo(name):
    """A sample photograph of scikit-image as (H, W, 3) float32 in 0-255."""
    from skimage import data
    image = getattr(data, name)()
    if isinstance(image, tuple):                     # stereo_motorcycle: (left, right, disp)
        image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3].astype(np.float32)


def _transformed(image, transform):
    return 255.0 - image if transform == "negative" else image


def sources_for(spec):
    """The photographs of a variant: ``appearances`` textures per class, distinct across
    classes (photographs first, then their negatives), drawn with the seed; the shared bodies;
    the backgrounds and each class's context background."""
    k = int(spec.get("appearances", 1))
    need = spec["classes"] * k
    if need > len(TEXTURES) * len(TRANSFORMS):
        raise ValueError("%d classes x %d appearances need more than the %d textures"
                         % (spec["classes"], k, len(TEXTURES) * len(TRANSFORMS)))
    rng = np.random.RandomState(spec["seed"] + 3000)
    order = rng.permutation(len(TEXTURES))
    pairs = [(TEXTURES[order[i % len(TEXTURES)]], TRANSFORMS[i // len(TEXTURES)])
             for i in range(need)]
    cache = {}

    def load(name, transform="plain"):
        if (name, transform) not in cache:
            cache[name, transform] = _transformed(photo(name), transform)
        return cache[name, transform]
    looks = {c: [load(*pairs[(c - 1) * k + j]) for j in range(k)]
             for c in range(1, spec["classes"] + 1)}
    names = {c: ["%s%s" % (n, "" if t == "plain" else "_" + t)
                 for n, t in pairs[(c - 1) * k:c * k]] for c in looks}
    parts = spec.get("parts")
    bodies = [load(n) for n in BODY_PHOTOS[:parts["pool"]]] if parts else []
    context = rng.permutation(len(BACKGROUND_PHOTOS))
    groups = int(spec.get("context_groups") or len(BACKGROUND_PHOTOS))
    return {"looks": looks, "names": names, "bodies": bodies,
            "backgrounds": [load(n) for n in BACKGROUND_PHOTOS],
            "context": {c: int(context[(c - 1) % min(groups, len(BACKGROUND_PHOTOS))])
                        for c in looks}}


def class_names(spec):
    """A class's name: its first texture's."""
    return [n[0] for _, n in sorted(sources_for(spec)["names"].items())]


def _tint(rng, image):
    return image * np.asarray(TINTS[rng.randint(len(TINTS))], np.float32)


def blob(rng, h, w, radius, centre):
    """Alpha (H, W) in 0-1 of a random star-shaped region of mean radius ``radius`` around
    ``centre`` (y, x), with a soft edge of 1-3 pixels."""
    cy, cx = centre
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    angle, dist = np.arctan2(yy - cy, xx - cx), np.hypot(yy - cy, xx - cx)
    edge = np.ones_like(angle)
    for k in (2, 3, 4, 5):
        edge += rng.uniform(0, 0.22) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    soft = rng.uniform(1.0, 3.0)
    return np.clip((radius * edge - dist) / soft + 0.5, 0, 1)


def _classes(rng, spec):
    """The classes of one image."""
    classes = spec["classes"]
    weights = spec.get("classes_per_image")
    if weights:
        p = np.asarray(weights[:classes], np.float64)
        count = 1 + rng.choice(len(p), p=p / p.sum())
    else:
        lo, hi = spec["objects"]
        count = rng.randint(lo, hi + 1)
    return [int(c) for c in rng.choice(np.arange(1, classes + 1), size=min(count, classes),
                                       replace=False)]


def _instances(rng, spec):
    most, more = spec.get("instances") or (1, 0.0)
    count = 1
    while count < most and rng.rand() < more:
        count += 1
    return count


def _radius(rng, spec, h, w):
    """The radius of an object's region: from its area share (``area``) or, as
    datagen/photo.py, a share of the shorter side (``radius``)."""
    if spec.get("area"):
        lo, hi = spec["area"]
        share = np.exp(rng.uniform(np.log(lo), np.log(hi)))
        return float(np.sqrt(share * h * w / np.pi))
    return rng.uniform(*spec["radius"]) * min(h, w)


def _object(rng, spec, sources, kind, h, w):
    """(alpha, part alpha of the shared body or None, fill, record) of one object."""
    looks = sources["looks"][kind]
    look = rng.randint(len(looks))
    radius = _radius(rng, spec, h, w)
    parts = spec.get("parts")
    record = {"class": kind, "appearance": look}
    fill = _tint(rng, _crop(rng, looks[look], h, w))
    if not parts:
        centre = (rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w)
        return blob(rng, h, w, radius, centre), None, fill, record
    share = rng.uniform(*parts["share"])
    # head and body areas in the ratio share : 1 - share, the head on the body's rim
    body_r, head_r = radius * np.sqrt(1 - share), radius * np.sqrt(share)
    centre = (rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w)
    angle = rng.uniform(0, 2 * np.pi)
    reach = body_r + 0.35 * head_r
    head_c = (centre[0] + reach * np.sin(angle), centre[1] + reach * np.cos(angle))
    body = blob(rng, h, w, body_r, centre)
    head = blob(rng, h, w, head_r, head_c)
    which = rng.randint(len(sources["bodies"]))
    record.update(body=which, head_share=float(share))
    body_fill = _tint(rng, _crop(rng, sources["bodies"][which], h, w))
    alpha = np.maximum(body, head)
    # the body's texture where the head does not cover it
    body_alpha = body * (1 - head)
    mixed = (fill * head[:, :, None] + body_fill * body_alpha[:, :, None]) / np.maximum(
        alpha, 1e-6)[:, :, None]
    return alpha, body_alpha, mixed, record


def _overlaps(alpha, mask):
    from scipy import ndimage as ndi
    return bool((ndi.binary_dilation(alpha > 0.5, iterations=3) & (mask > 0)).any())


def _hides(alpha, instance, areas, keep=0.5):
    """Would an object of ``alpha`` leave an earlier object less than ``keep`` of its area?"""
    left = np.bincount(instance[alpha <= 0.5].ravel(), minlength=len(areas) + 1)[1:]
    return bool((left < keep * np.asarray(areas)).any())


def render(rng, spec, sources, background_only=False):
    """(image (H, W, 3) uint8, class map (H, W) uint8, part map (H, W) uint8, record)."""
    h, w = rng.randint(spec["size"][0], spec["size"][1] + 1, size=2)
    kinds = [] if background_only else _classes(rng, spec)
    backgrounds = sources["backgrounds"]
    context = spec.get("context", 0.0)
    in_context = bool(kinds) and context > 0 and rng.rand() < context
    which = sources["context"][kinds[0]] if in_context else rng.randint(len(backgrounds))
    image = _tint(rng, _crop(rng, backgrounds[which], h, w))
    mask = np.zeros((h, w), np.uint8)
    part_map = np.zeros((h, w), np.uint8)
    objects = [k for k in kinds for _ in range(_instances(rng, spec))]
    objects = [objects[i] for i in rng.permutation(len(objects))]
    instance = np.zeros((h, w), np.int32)
    records = []
    areas = []                                          # pixels of each object drawn
    for kind in objects:
        for _ in range(30):
            alpha, body_alpha, fill, record = _object(rng, spec, sources, kind, h, w)
            if not (_hides(alpha, instance, areas) if spec.get("occlusion")
                    else _overlaps(alpha, mask)):
                break
        else:
            continue
        image = image * (1 - alpha[:, :, None]) + fill * alpha[:, :, None]
        inside = alpha > 0.5
        mask[inside] = kind
        part_map[inside] = UNIQUE
        if body_alpha is not None:
            part_map[inside & (body_alpha > 0.5 * alpha)] = SHARED
        record["area"] = float(inside.mean())
        records.append(record)
        areas.append(int(inside.sum()))
        instance[inside] = len(records)
    for number, record in enumerate(records, start=1):  # what later objects left of it
        record["visible"] = float((instance == number).mean())
    scene = {"background": BACKGROUND_PHOTOS[which], "in_context": in_context,
             "objects": records}
    return finish(rng, image), mask, part_map, scene
