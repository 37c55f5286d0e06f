"""The scenes with VOC's failure modes (datagen/scenes.py): each mode, an option of the
variant's spec, does what it claims, measured on the rendered data against the same spec
without it (each test fails when its option is ignored); the family's variants write their
part maps and records; the calibrated variants are the committed ones."""
import json
import os

import numpy as np
import pytest
import scipy.ndimage as ndi

from datagen import scenes, toy, variants

SPEC = variants.variant("scenes5", n_train=12, n_val=4)


_RENDERED = {}


def _scenes(spec, count=100, seed=7):
    """The first ``count`` scenes of ``spec`` drawn with ``seed``, and its sources; rendered
    once per spec and seed for the module (a shorter list is the longer one's start)."""
    key = (json.dumps(spec, sort_keys=True, default=str), seed)
    if key not in _RENDERED:
        _RENDERED[key] = ([], scenes.sources_for(spec), np.random.RandomState(seed))
    rendered, sources, rng = _RENDERED[key]
    while len(rendered) < count:
        rendered.append(scenes.render(rng, spec, sources))
    return rendered[:count], sources


def _texture(image, region):
    """A texture descriptor of a region, blind to tints and brightness: histograms of the
    gradients and levels of the grey image over the region's mean; None for a sliver."""
    grey = image.astype(np.float32).mean(axis=2)
    inner = ndi.binary_erosion(region, iterations=2)
    if inner.sum() < 30:
        return None
    grey = grey / max(float(grey[inner].mean()), 1.0)
    bins = [0, .02, .05, .1, .2, .4, .8, 1.6, 100]
    parts = [np.histogram(np.abs(ndi.sobel(grey, axis))[inner], bins)[0] for axis in (0, 1)]
    parts.append(np.histogram(grey[inner], np.linspace(0, 3, 9))[0])
    return np.concatenate(parts) / inner.sum()


def _class_accuracy(samples):
    """Leave-one-out nearest-centroid accuracy of telling a region's class by its texture."""
    x = np.array([f for f, _ in samples])
    y = np.array([c for _, c in samples])
    right = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        centroids = {c: x[keep][y[keep] == c].mean(axis=0) for c in np.unique(y[keep])}
        right += min(centroids, key=lambda c: np.sum((x[i] - centroids[c]) ** 2)) == y[i]
    return right / len(x)


def _part_samples(spec, part):
    """(descriptor, class) of every object's ``part`` (UNIQUE, SHARED; None: all of it)."""
    rendered, _ = _scenes(spec)
    out = []
    for image, mask, parts, _ in rendered:
        for c in np.unique(mask[mask > 0]):
            region = (mask == c) & ((parts == part) if part else True)
            found = _texture(image, region)
            if found is not None:
                out.append((found, c))
    return out


def test_parts_put_the_class_on_a_head_and_share_the_body():
    """With ``parts`` a class is told from its head's texture (above chance, 0.2 for five
    classes) but not from its body's (shared by every class); without, the object's larger
    part carries its class."""
    head = _class_accuracy(_part_samples(SPEC, scenes.UNIQUE))
    body = _class_accuracy(_part_samples(SPEC, scenes.SHARED))
    whole = _class_accuracy(_part_samples(dict(SPEC, parts=None), None))
    assert head > 0.3 and body < 0.25, (head, body)
    assert whole > 0.35, whole
    rendered, _ = _scenes(SPEC, 30)
    shares = [r["head_share"] for *_, rec in rendered for r in rec["objects"]]
    lo, hi = SPEC["parts"]["share"]
    assert shares and lo <= min(shares) and max(shares) <= hi
    assert all((p == scenes.SHARED).any() for _, m, p, rec in rendered if rec["objects"])


def test_context_makes_the_background_predict_the_label():
    """With ``context`` p an image shows its class's context about p of the time, more than
    any background by chance; without it, the background is drawn alone."""
    rendered, sources = _scenes(SPEC, 150)
    names = scenes.BACKGROUND_PHOTOS
    hits = [rec["background"] == names[sources["context"][rec["objects"][0]["class"]]]
            for *_, rec in rendered if rec["objects"]]
    p = SPEC["context"]
    assert abs(np.mean([rec["in_context"] for *_, rec in rendered]) - p) < 0.08
    assert np.mean(hits) > p                               # (plus chance draws of it)
    plain, sources = _scenes(dict(SPEC, context=0.0), 80)
    hits = [rec["background"] == names[sources["context"][rec["objects"][0]["class"]]]
            for *_, rec in plain if rec["objects"]]
    assert np.mean(hits) < 0.3 and not any(rec["in_context"] for *_, rec in plain)
    groups = len(set(sources["context"].values()))
    assert groups == SPEC["context_groups"]                # classes share their contexts


def test_appearances_give_each_class_several_textures():
    sources = scenes.sources_for(SPEC)
    k = SPEC["appearances"]
    names = [n for c in sorted(sources["names"]) for n in sources["names"][c]]
    assert all(len(v) == k for v in sources["names"].values())
    assert len(set(names)) == len(names)                   # no texture serves two classes
    rendered, _ = _scenes(SPEC, 80)
    used = {}
    for *_, rec in rendered:
        for r in rec["objects"]:
            used.setdefault(r["class"], set()).add(r["appearance"])
    assert all(u == set(range(k)) for u in used.values())
    one = scenes.sources_for(dict(SPEC, appearances=1))
    assert all(len(v) == 1 for v in one["names"].values())


def test_area_spans_small_to_large_objects():
    """``area`` (lo, hi): objects from a few per cent of the image to a large share of it;
    without, radii of photo.py's range give a narrow band."""
    def areas(spec):
        rendered, _ = _scenes(dict(spec, occlusion=False, instances=None), 60)
        return np.array([r["area"] for *_, rec in rendered for r in rec["objects"]])
    wide, narrow = areas(SPEC), areas(dict(SPEC, area=None, radius=(0.15, 0.3)))
    lo, hi = SPEC["area"]
    assert np.percentile(wide, 10) < 2 * lo and np.percentile(wide, 95) > 0.5 * hi
    assert np.percentile(narrow, 95) / np.percentile(narrow, 10) < \
        np.percentile(wide, 95) / np.percentile(wide, 10) / 2


def test_instances_and_occlusion():
    """``instances``: several objects of one class in some images; ``occlusion``: objects
    overlap, each keeping at least half of its area in sight; without both, one object a class
    and nothing covered."""
    rendered, _ = _scenes(SPEC, 90)
    counts = [np.bincount([r["class"] for r in rec["objects"]]).max()
              for *_, rec in rendered if rec["objects"]]
    covered = [r["visible"] / r["area"] for *_, rec in rendered for r in rec["objects"]]
    assert np.mean(np.array(counts) > 1) > 0.1
    assert min(covered) >= 0.5 - 1e-6 and np.mean(np.array(covered) < 0.99) > 0.05
    plain, _ = _scenes(dict(SPEC, instances=None, occlusion=False), 40)
    assert all(np.bincount([r["class"] for r in rec["objects"]]).max() == 1
               for *_, rec in plain if rec["objects"])
    assert all(abs(r["visible"] - r["area"]) < 1e-9 for *_, rec in plain
               for r in rec["objects"])


def test_classes_per_image_follow_vocs_shares():
    rendered, _ = _scenes(dict(SPEC, instances=None), 300)
    counts = np.array([len({r["class"] for r in rec["objects"]}) for *_, rec in rendered])
    want = np.array(SPEC["classes_per_image"]) / sum(SPEC["classes_per_image"])
    got = np.bincount(counts, minlength=5)[1:5] / len(counts)
    assert np.abs(got - want).max() < 0.07, got
    uniform, _ = _scenes(dict(SPEC, instances=None, classes_per_image=None), 100)
    assert np.mean([len({r["class"] for r in rec["objects"]}) == 1
                    for *_, rec in uniform]) < 0.45


def test_a_scene_variant_writes_its_part_maps_and_records(tmp_path):
    from cores.data.dataset import read_mask
    toy.make_dataset(str(tmp_path), SPEC)
    with open(tmp_path / "scenes.json") as f:
        records = json.load(f)
    assert len(records) == SPEC["n_train"] + SPEC["n_val"]
    some = sorted(records)[0]
    parts = read_mask(str(tmp_path / "parts" / (some + ".png")))
    assert set(np.unique(parts)) <= {0, scenes.UNIQUE, scenes.SHARED}
    voc = tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages" / (some + ".jpg")
    assert voc.is_file()
    with open(tmp_path / "variant.json") as f:
        assert json.load(f)["class_names"][:2] == ["aeroplane", "bicycle"]


def test_the_family_holds_tuned_and_held_out_variants():
    family = [n for n, v in variants.VARIANTS.items() if v.get("style") == "scenes"]
    held = [n for n in family if n in variants.HELD_OUT]
    assert held and len(held) < len(family)
    for name in family:
        spec = variants.variant(name)
        for option in ("parts", "context", "appearances", "area", "instances", "occlusion",
                       "classes_per_image"):
            assert spec.get(option), (name, option)
        scenes.sources_for(spec)                             # enough textures for it
    with pytest.raises(ValueError, match="need more than the 20 textures"):
        scenes.sources_for(dict(variants.variant("scenes5"), classes=11))
    assert os.path.isfile(os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench",
                                       "scenes.yaml"))
