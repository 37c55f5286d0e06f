"""Photographic scenes for the dataset family: objects of random shapes filled with crops of
real photographs (one photograph's texture per class) and pasted with soft edges onto crops of
other photographs, under colour tints drawn from one palette shared by objects and backgrounds
(a class is told by its texture, not its colour), a lighting gradient and JPEG compression.
On flat-coloured scenes the dense CRF finds every edge by colour; here it cannot, so methods
can differ. The photographs are scikit-image's bundled sample images (in its wheel: nothing is
downloaded)."""
import io

import numpy as np
from PIL import Image

# class textures and backgrounds: never the same photograph
TEXTURES = ["brick", "grass", "gravel", "moon", "coins", "chelsea", "coffee", "astronaut",
            "immunohistochemistry", "retina"]
BACKGROUND_PHOTOS = ["rocket", "hubble_deep_field", "camera", "page", "text", "colorwheel"]
TINTS = [(1.0, 1.0, 1.0), (1.0, 0.75, 0.55), (0.6, 0.8, 1.0), (0.75, 1.0, 0.7),
         (1.0, 0.65, 0.85), (0.9, 0.9, 0.6)]


def photo(name):
    """A sample photograph as (H, W, 3) float32 in 0-255."""
    from skimage import data
    image = np.asarray(getattr(data, name)())
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3].astype(np.float32)


def _crop(rng, source, h, w):
    """A random h x w crop of ``source`` at a random scale, turned and mirrored at random."""
    scale = rng.uniform(0.5, 1.0)
    sh, sw = source.shape[:2]
    ch, cw = min(sh, max(8, int(h / scale))), min(sw, max(8, int(w / scale)))
    y, x = rng.randint(0, sh - ch + 1), rng.randint(0, sw - cw + 1)
    piece = source[y:y + ch, x:x + cw]
    piece = np.rot90(piece, rng.randint(4))
    if rng.rand() < 0.5:
        piece = piece[:, ::-1]
    image = Image.fromarray(np.clip(piece, 0, 255).astype(np.uint8)).resize((w, h),
                                                                            Image.BILINEAR)
    return np.asarray(image, np.float32)


def _tint(rng, image):
    return image * np.asarray(TINTS[rng.randint(len(TINTS))], np.float32)


def blob(rng, h, w, radius):
    """(alpha in 0-1, centre): a random star-shaped region with a soft edge of 1-3 pixels."""
    cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    angle, dist = np.arctan2(yy - cy, xx - cx), np.hypot(yy - cy, xx - cx)
    edge = np.ones_like(angle)
    for k in (2, 3, 4, 5):
        edge += rng.uniform(0, 0.22) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    soft = rng.uniform(1.0, 3.0)
    return np.clip((radius * edge - dist) / soft + 0.5, 0, 1), (cy, cx)


def render(rng, spec, sources, background_only=False):
    """One photographic scene (H, W, 3) uint8 and its class map (H, W) uint8: ``sources``
    holds the class textures (index 0 unused) and ``sources["backgrounds"]``."""
    h, w = rng.randint(spec["size"][0], spec["size"][1] + 1, size=2)
    backgrounds = sources["backgrounds"]
    image = _tint(rng, _crop(rng, backgrounds[rng.randint(len(backgrounds))], h, w))
    mask = np.zeros((h, w), np.uint8)
    if not background_only:
        lo, hi = spec["objects"]
        classes = spec["classes"]
        count = rng.randint(lo, hi + 1)
        kinds = (rng.choice(np.arange(1, classes + 1), size=min(count, classes), replace=False)
                 if classes > 1 else np.ones(count, int))
        for kind in kinds:
            radius = rng.uniform(*spec["radius"]) * min(h, w)
            alpha, _ = blob(rng, h, w, radius)
            fill = _tint(rng, _crop(rng, sources[int(kind)], h, w))
            image = image * (1 - alpha[:, :, None]) + fill * alpha[:, :, None]
            mask[alpha > 0.5] = kind
    return finish(rng, image), mask


def finish(rng, image):
    """A scene (H, W, 3) float under a random horizontal lighting gradient, JPEG-compressed at
    a random quality: (H, W, 3) uint8 RGB."""
    ramp = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(1.0, 1.3), image.shape[1],
                       dtype=np.float32)
    if rng.rand() < 0.5:
        ramp = ramp[::-1]
    image = image * ramp[None, :, None]
    buf = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
        buf, format="JPEG", quality=int(rng.randint(55, 91)))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def sources_for(spec):
    """The photographs of a variant: its classes' textures (drawn from TEXTURES with its seed)
    and the background photographs."""
    rng = np.random.RandomState(spec["seed"] + 2000)
    names = [TEXTURES[i] for i in rng.permutation(len(TEXTURES))[:spec["classes"]]]
    sources = {c + 1: photo(n) for c, n in enumerate(names)}
    sources["backgrounds"] = [photo(n) for n in BACKGROUND_PHOTOS]
    sources["names"] = names
    return sources
