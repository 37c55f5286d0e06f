"""Cue rules against direct numpy implementations of method §3, the merge, storage, the
report and the score grid of the masks."""
import numpy as np
import pytest

from cores import cues, grid


def _median3(x):
    """3x3 median with edge-including reflection (scipy's 'reflect')."""
    p = np.pad(x, 1, mode="symmetric")
    stack = [p[dy:dy + x.shape[0], dx:dx + x.shape[1]] for dy in range(3) for dx in range(3)]
    return np.median(np.stack(stack), axis=0)


def _spec_bg(gradient, fraction=0.1):
    saliency = _median3(np.abs(gradient).max(axis=0))
    flat = sorted(saliency.ravel().tolist())
    return saliency < flat[int(fraction * saliency.size)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bg_rule_matches_the_spec(seed):
    grad = np.random.RandomState(seed).randn(16, 41, 41).astype(np.float32)
    got = cues.bg_cue_rule(cues.saliency_map(grad))
    np.testing.assert_array_equal(got, _spec_bg(grad))
    # at most int(0.1 * 41 * 41) = 168 pixels; fewer where the median repeats a value
    assert 150 < got.sum() <= 168


def test_bg_rule_ties_at_the_threshold_are_not_background():
    grad = np.ones((2, 10, 10), np.float32)
    grad[:, :2, :2] = 0.1                                 # 4 clearly low pixels...
    grad[:, 5:, :] = 0.5                                  # ...then 50 tied at the 10% rank
    got = cues.bg_cue_rule(cues.saliency_map(grad))
    np.testing.assert_array_equal(got, _spec_bg(grad))
    assert 0 < got.sum() < 10


def test_fg_rule_matches_the_spec():
    cam = np.random.RandomState(0).randn(4, 9, 9)
    cam[3] -= 10                                          # a class whose CAM is all negative
    got = cues.fg_cue_rule(cam, [1, 3, 4], 0.2)
    assert sorted(got) == [1, 3, 4]
    for c in (1, 3):
        np.testing.assert_array_equal(got[c], cam[c - 1] > 0.2 * cam[c - 1].max())
    assert not got[4].any()


def test_merge_one_label_per_pixel():
    size = 6
    a = np.zeros((size, size), bool)
    a[0:3, 0:3] = True                                    # 9 pixels
    b = np.zeros((size, size), bool)
    b[2:4, 2:4] = True                                    # 4 pixels, overlaps a at (2,2)
    bg = np.zeros((size, size), bool)
    bg[:, 2:] = True                                      # overlaps both
    merged = cues.merge_cues({1: a, 3: b}, bg)
    label = cues.cue_label_map(merged, size)
    assert merged.shape[1] == len({(y, x) for y, x in zip(merged[1], merged[2])})
    assert label[2, 2] == 3                               # smaller foreground cue wins
    assert label[0, 2] == 1                               # foreground beats background
    assert label[5, 5] == 0 and label[5, 0] == 255        # background; no cue
    assert (label == 3).sum() == 4 and (label == 1).sum() == 8


def test_storage_round_trip(tmp_path):
    rng = np.random.RandomState(0)
    data = {"img%d" % i: np.stack([rng.randint(0, 21, n), rng.randint(0, 41, n),
                                   rng.randint(0, 41, n)]) for i, n in enumerate([0, 5, 300])}
    path = str(tmp_path / "c.npz")
    cues.save_cues(path, data, 41)
    loaded, size = cues.load_cues(path)
    assert size == 41 and sorted(loaded) == sorted(data)
    for k in data:
        np.testing.assert_array_equal(loaded[k], data[k])
    with np.load(path, allow_pickle=False) as z:            # no pickled objects inside
        assert set(z.files) == {"ids", "offsets", "cues", "size"}


def test_merge_cue_files(tmp_path):
    fg = {"a": cues.masks_to_sparse({2: np.eye(4, dtype=bool)})}
    bg = {"a": cues.masks_to_sparse({0: ~np.eye(4, dtype=bool)})}
    cues.save_cues(str(tmp_path / "fg.npz"), fg, 4)
    cues.save_cues(str(tmp_path / "bg.npz"), bg, 4)
    merged, size = cues.merge_cue_files(str(tmp_path / "fg.npz"), str(tmp_path / "bg.npz"),
                                        str(tmp_path / "sec.npz"))
    label = cues.cue_label_map(merged["a"], 4)
    np.testing.assert_array_equal(label, np.where(np.eye(4, dtype=bool), 2, 0))
    bg["b"] = bg["a"]
    cues.save_cues(str(tmp_path / "bg.npz"), bg, 4)
    with pytest.raises(cues.CueFileError, match="cover different images"):
        cues.merge_cue_files(str(tmp_path / "fg.npz"), str(tmp_path / "bg.npz"),
                             str(tmp_path / "x.npz"))


def test_report_counts_precision_and_coverage():
    gt = np.zeros((4, 4), np.uint8)
    gt[:2, :2] = 1
    gt[3, 3] = 255
    sparse = np.array([[1, 1, 1, 0, 0], [0, 0, 2, 3, 3], [0, 1, 2, 2, 3]])
    report = cues.cue_report({"x": sparse}, 4, [{"id": "x", "mask": "m"}], ["bg", "one"],
                             lambda path: gt)
    assert report["classes"]["one"] == {"precision": 2 / 3, "coverage": 0.5, "cue_pixels": 3,
                                        "cue_cells": 3}
    assert report["classes"]["bg"]["precision"] == 1.0 and report["classes"]["bg"][
        "cue_pixels"] == 1                                  # the void pixel is ignored
    assert report["classes"]["bg"]["cue_cells"] == 2        # but it is a cue


def test_report_without_masks_counts_the_cues_and_says_why_nothing_else():
    """Without masks the report showed 'cue px 0' for every class, which reads as 'no cues'."""
    sparse = np.array([[1, 1, 1, 0, 0], [0, 0, 2, 3, 3], [0, 1, 2, 2, 3]])
    report = cues.cue_report({"x": sparse, "y": sparse}, 4, [{"id": "x", "mask": None},
                                                             {"id": "y"}], ["bg", "one"], None)
    assert report["images"] == 0 and report["images_without_masks"] == 2
    assert report["classes"]["one"]["cue_cells"] == 6 and report["classes"]["bg"][
        "cue_cells"] == 4
    text = cues.format_report(report)
    assert "cue cells" in text and "cannot be measured" in text
    row = [line for line in text.splitlines() if line.startswith("one")][0]
    assert row.split()[-1] == "6" and row.split()[1] == "-"


@pytest.mark.parametrize("height,width,size", [(201, 151, 16), (375, 500, 41), (121, 121, 16)])
def test_masks_meet_the_score_grid_at_the_cell_centres(height, width, size):
    """Cell i of the score grid sits at image pixel i (H - 1) / (size - 1), the grid on which
    evaluation upsamples: the last row and column of cells take the mask's last row and column
    (OpenCV's nearest resize took pixel floor(i H / size), about a cell short), the same
    samples as scipy's zoom(order=0), and the way back assigns each pixel its nearest cell (a tie to the later one)."""
    import scipy.ndimage as ndi
    mask = np.random.RandomState(size).randint(0, 5, (height, width)).astype(np.uint8)
    mask[-1, :], mask[:, -1] = 7, 9
    cells = grid.grid_mask(mask, size)
    assert cells.shape == (size, size)
    assert (cells[-1, :-1] == 7).all() and (cells[:, -1] == 9).all()
    np.testing.assert_array_equal(cells, ndi.zoom(mask, (size / height, size / width), order=0))
    back = grid.grid_to_image(cells, height, width)
    assert back.shape == (height, width)
    rows = np.floor(np.arange(height) * (size - 1) / (height - 1) + 0.5).astype(int)
    cols = np.floor(np.arange(width) * (size - 1) / (width - 1) + 0.5).astype(int)
    np.testing.assert_array_equal(back, cells[rows][:, cols])


def _write_cues(path, **arrays):
    np.savez_compressed(path, **arrays)


@pytest.mark.parametrize("case,pattern", [
    ("truncated", r"cannot read cue file .*c.npz \(truncated"),
    ("no size", r"c.npz is not a cue file: it lacks size"),
    ("outside", r"c.npz: image b has cue coordinates outside the 4x4 grid"),
    ("offsets", r"c.npz is inconsistent"),
])
def test_bad_cue_files_are_named(tmp_path, case, pattern):
    """BadZipFile/KeyError/IndexError became one message naming the file and the
    image."""
    path = str(tmp_path / "c.npz")
    good = {"a": np.array([[1, 1], [0, 1], [2, 3]]), "b": np.array([[0], [1], [1]])}
    cues.save_cues(path, good, 4)
    if case == "truncated":
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])
    elif case == "no size":
        _write_cues(path, ids=np.array(["a"]), offsets=np.array([0, 0]), cues=np.zeros((3, 0)))
    elif case == "outside":
        cues.save_cues(path, dict(good, b=np.array([[0], [1], [4]])), 4)
    else:
        _write_cues(path, ids=np.array(["a", "b"]), offsets=np.array([0, 5]),
                    cues=np.zeros((3, 2)), size=np.int64(4))
    with pytest.raises(cues.CueFileError, match=pattern):
        cues.load_cues(path)


def test_cue_classes_must_fit_class_num():
    cue_set = {"a": np.array([[0, 7], [0, 1], [0, 1]])}
    cues.check_classes(cue_set, 8, "x.npz")
    with pytest.raises(cues.CueFileError, match="x.npz: image a has cues of class 7, but "
                                                "CLASS_NUM=5"):
        cues.check_classes(cue_set, 5, "x.npz")
