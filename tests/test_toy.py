"""The generated dataset family: variants in both on-disk layouts, accepted by create_dataset,
with the promised class counts, shared colours and background-only images."""
import json
import os

import numpy as np
import pytest

from datagen import toy, variants
from cores.data.dataset import DatasetError, build_custom_index, read_mask
from tests.conftest import toy_config


def test_variants_are_valid_and_distinct():
    for name in variants.VARIANTS:
        spec = variants.variant(name)
        looks = toy.appearances(spec)
        assert len(looks) == spec["classes"]
        assert len(set(looks)) == len(looks), name           # no two classes look alike
    shared = toy.appearances(variants.variant("shared10"))
    colours = [c for _, c, _ in shared]
    assert len(set(colours)) == 5                            # classes share colours ...
    assert len({(s, t) for s, _, t in shared}) == 10         # ... and differ in shape/texture
    assert set(variants.HELD_OUT) <= set(variants.VARIANTS)
    with pytest.raises(ValueError, match="unknown toy variant"):
        variants.variant("nope")


def test_render_is_seeded_and_masks_match_objects():
    spec = variants.variant("mixed8")
    looks = toy.appearances(spec)
    a = toy.render(np.random.RandomState(3), spec, looks)
    b = toy.render(np.random.RandomState(3), spec, looks)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    counts = []
    rng = np.random.RandomState(0)
    for _ in range(20):
        image, mask = toy.render(rng, spec, looks)
        assert image.shape[:2] == mask.shape and image.dtype == np.uint8
        assert spec["size"][0] <= mask.shape[0] <= spec["size"][1]
        present = set(np.unique(mask)) - {0}
        assert present <= set(range(1, spec["classes"] + 1))
        counts.append(len(present))
    assert min(counts) >= 1 and max(counts) > 1
    image, mask = toy.render(rng, spec, looks, background_only=True)
    assert not mask.any()


def test_voc_layout_builds_an_index(tmp_path):
    spec = variants.variant("stripes5", n_train=24, n_val=6)
    toy.make_dataset(str(tmp_path), spec)
    with open(tmp_path / "variant.json") as f:
        assert json.load(f)["classes"] == 5
    cfg = toy_config(str(tmp_path), str(tmp_path / "work"), CLASS_NUM=6)
    from cores.data.dataset import create_dataset
    index = create_dataset(cfg)
    assert len(index["train"]) == 24 and len(index["val"]) == 6
    assert all(1 <= len(e["labels"]) <= 3 for e in index["train"])


def test_custom_layout_with_background_only_images(tmp_path):
    spec = variants.variant("single", n_train=20, n_val=4)
    written = toy.make_dataset(str(tmp_path), spec)
    assert written["background_only"] == 6                   # 30% of 20
    d = str(tmp_path)
    index = build_custom_index(os.path.join(d, "images"), os.path.join(d, "labels.csv"),
                               os.path.join(d, "classes.txt"), os.path.join(d, "val_images"),
                               os.path.join(d, "val_masks"), 2,
                               masks_dir=os.path.join(d, "masks"))
    empty = [e for e in index["train"] if not e["labels"]]
    assert len(empty) == 6
    for e in empty:
        assert not (read_mask(e["mask"]) % 255).any()        # truly background only
    assert all(e["labels"] == [1] for e in index["train"] if e["labels"])


def test_custom_layout_refuses_unlisted_images(tmp_path):
    spec = variants.variant("single", n_train=6, n_val=2)
    toy.make_dataset(str(tmp_path), spec)
    d = str(tmp_path)
    with open(os.path.join(d, "labels.csv")) as f:
        rows = f.read().splitlines()
    with open(os.path.join(d, "labels.csv"), "w") as f:
        f.write("\n".join(rows[:-1]) + "\n")                  # drop the last image's row
    with pytest.raises(DatasetError, match="have no row in"):
        build_custom_index(os.path.join(d, "images"), os.path.join(d, "labels.csv"),
                           os.path.join(d, "classes.txt"))


def test_chiral_classes_appear_mirrored_as_often_as_not():
    """A crescent (chiral) is drawn both ways round in a variant with ``mirror`` (test-time
    flipping assumes a class looks the same in a mirror), and only one way without."""
    def handedness(spec, draws=40):
        rng = np.random.RandomState(5)
        looks = [("crescent", "red", "flat")]
        signs = []
        for _ in range(draws):
            _, mask = toy.render(rng, dict(spec, objects=(1, 1)), looks)
            ys, xs = np.nonzero(mask)
            if len(xs):
                # the crescent's bite is on its right (+v) side: its mass sits left of its
                # bounding box's centre unless mirrored
                signs.append(np.sign(xs.mean() - (xs.min() + xs.max()) / 2))
        return np.array(signs)
    spec = variants.variant("single", rotate=False)
    mirrored = handedness(spec)
    assert (mirrored < 0).sum() >= 10 and (mirrored > 0).sum() >= 10
    plain = handedness(dict(spec, mirror=False))
    assert (plain < 0).all()


def test_every_object_has_its_drawn_size():
    """Every placed object covers a share of the image that its radius range promises (a
    mirrored draw once reused the radius scale's name and left specks of one pixel)."""
    spec = variants.variant("mixed8")
    looks = toy.appearances(spec)
    rng = np.random.RandomState(1)
    many = 0
    for _ in range(30):
        _, mask = toy.render(rng, spec, looks)
        side = min(mask.shape)
        present = [c for c in np.unique(mask) if c]
        many += len(present) > 1
        for c in present:
            # the smallest shape (a ring or a star) covers over a fifth of its disc
            assert (mask == c).sum() > 0.2 * np.pi * (spec["radius"][0] * side) ** 2, c
    assert many >= 10


def test_small_demo_data_keeps_a_val_list_and_says_what_it_wrote(tmp_path):
    """--train 10 --val 3 wrote an empty VOC val list without a word: the demo variant's fixed
    24 VOC training images took all 13 images."""
    import subprocess
    import sys
    from tests.conftest import REPO
    script = os.path.join(REPO, "demo", "make_toy_voc.py")
    out = subprocess.run([sys.executable, script, str(tmp_path / "d"), "--train", "10", "--val",
                          "3"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "2 of them are VOC training images" in out.stdout and "voc_val 3" in out.stdout
    lists = os.path.join(tmp_path, "d", "VOCdevkit", "VOC2012", "ImageSets", "Segmentation")
    with open(os.path.join(lists, "val.txt")) as f:
        assert len(f.read().split()) == 3
    from cores.data.dataset import build_voc_index
    index = build_voc_index(os.path.join(tmp_path, "d", "VOCdevkit", "VOC2012"),
                            os.path.join(tmp_path, "d", "benchmark_RELEASE", "dataset"), 5)
    assert len(index["train"]) == 10 and len(index["val"]) == 3
    out = subprocess.run([sys.executable, script, str(tmp_path / "e"), "--val", "0"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "at least 2 training and 1 val images" in out.stderr
    assert "Traceback" not in out.stderr


def test_photographic_variants_paste_photographs_with_soft_edges(tmp_path):
    """The photographic family: a class is a photograph's texture in a random shape; the same
    seed draws the same scene; masks mark where an object's alpha exceeds one half."""
    from datagen import photo
    spec = variants.variant("photo5", n_train=4, n_val=2, voc_train=2)
    sources = photo.sources_for(spec)
    assert len(set(sources["names"])) == 5
    assert not set(sources["names"]) & set(photo.BACKGROUND_PHOTOS)
    first = photo.render(np.random.RandomState(7), spec, sources)
    again = photo.render(np.random.RandomState(7), spec, sources)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    image, mask = first
    assert image.dtype == np.uint8 and image.shape[:2] == mask.shape
    labels = set(np.unique(mask)) - {0}
    assert labels and labels <= set(range(1, 6))
    for c in labels:                                  # a texture, not a flat colour
        assert image[mask == c].std() > 5
    alpha, _ = photo.blob(np.random.RandomState(1), 60, 80, 15)
    soft = ((alpha > 0.02) & (alpha < 0.98)).sum()
    assert 0 < soft < (alpha > 0.5).sum()             # an edge, thinner than the object
    written = toy.make_dataset(str(tmp_path / "voc"), spec)
    assert len(written["voc_val"]) == 2
    custom = toy.make_dataset(str(tmp_path / "one"), variants.variant("photo1", n_train=6,
                                                                  n_val=2))
    assert custom["train"] == 6 and custom["background_only"]
    with open(tmp_path / "one" / "classes.txt") as f:
        assert f.read().split() == photo.sources_for(variants.variant("photo1"))["names"]
    assert "photo10" in variants.HELD_OUT and "photo5b" in variants.HELD_OUT
