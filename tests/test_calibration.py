"""bench/calibration.py: the per-image cue statistics it compares with the authors' VOC cues,
where the foreground cues of scenes fall, and the relative differences the tuned variants are
chosen by, on hand-made cues whose answers are known; and the authors' own cues' statistics
(skipped without ../shared/sec_original)."""
import glob
import json
import os
import sys

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))
import calibration  # noqa: E402
from cores.data.palette import save_palette_png  # noqa: E402


def _sparse(grid):
    """The merged cue format ((3, M) rows class, y, x) of a dense grid (-1: no cue)."""
    y, x = np.nonzero(grid >= 0)
    return np.stack([grid[y, x], y, x])


def test_cue_statistics_count_each_image_and_each_present_class():
    a = np.full((4, 4), -1)
    a[0, :] = 0                                   # 4 background cells
    a[1, :2] = 1                                  # 2 cells of class 1
    a[2, :3] = 2                                  # 3 cells of class 2
    b = np.full((4, 4), -1)
    b[3, 3] = 3
    stats = calibration.cue_statistics({"a": _sparse(a), "b": _sparse(b)}, 4,
                                       {"a": [1, 2], "b": [3]})
    np.testing.assert_allclose(stats["fg"], [5 / 16, 1 / 16])
    np.testing.assert_allclose(stats["bg"], [4 / 16, 0])
    np.testing.assert_allclose(stats["unlabelled"], [7 / 16, 15 / 16])
    np.testing.assert_allclose(stats["fg_per_class"], [2 / 16, 3 / 16, 1 / 16])
    np.testing.assert_array_equal(stats["classes"], [2, 1])
    # a present class without any cue counts as zero cells, not as missing
    stats = calibration.cue_statistics({"b": _sparse(b)}, 4, {"b": [3, 4]})
    np.testing.assert_allclose(stats["fg_per_class"], [1 / 16, 0])


def test_part_statistics_say_where_the_foreground_cues_fall(tmp_path):
    # one object of class 1 in the left half: its head (part 1) the top row, its body (part 2)
    # the rest; the cue covers the head, one body cell, and two background cells, one of them
    # with the wrong class
    mask = np.zeros((4, 4), np.uint8)
    mask[:, :2] = 1
    parts = np.zeros((4, 4), np.uint8)
    parts[0, :2] = 1
    parts[1:, :2] = 2
    cue = np.full((4, 4), -1)
    cue[0, :2] = 1
    cue[1, 0] = 1
    cue[3, 3] = 1
    cue[2, 3] = 2
    cue[3, 2] = 0
    (tmp_path / "parts").mkdir()
    save_palette_png(str(tmp_path / "parts" / "im.png"), parts)
    save_palette_png(str(tmp_path / "im_mask.png"), mask)
    entries = [{"id": "im", "labels": [1], "mask": str(tmp_path / "im_mask.png")}]
    got = calibration.part_statistics({"im": _sparse(cue)}, 4, entries, str(tmp_path))
    assert got == {"own_part_covered": 1.0, "shared_part_covered": 1 / 6,
                   "fg_cues_off_objects": 2 / 5, "fg_precision": 3 / 5}
    # variants without part maps (flat colours, photographs) have none
    assert calibration.part_statistics({}, 4, entries, str(tmp_path / "nowhere")) is None


def test_rows_hold_each_variants_median_and_its_relative_difference():
    voc = {k: np.array([0.1, 0.2, 0.3]) for k, _ in calibration.QUANTITIES}
    mine = {k: np.array([0.24, 0.25, 0.26]) for k, _ in calibration.QUANTITIES}
    rows = calibration.rows_of(voc, {"scenes5": (mine, None, 16)})
    assert [r["quantity"] for r in rows] == [k for k, _ in calibration.QUANTITIES]
    for r in rows:
        assert r["voc"] == pytest.approx(0.2) and r["scenes5"] == pytest.approx(0.25)
        assert r["scenes5 rel"] == pytest.approx(0.25)
    text = calibration.markdown(rows, {"scenes5": (mine, None, 16)}, {"scenes5": None})
    assert "| 0.200 | 0.250 (+25 %) |" in text and "tuned on: scenes5" in text


@pytest.mark.skipif(not os.path.isfile(os.path.join(calibration.ORIGINAL,
                                                    "localization_cues.pickle.gz")),
                    reason="the authors' cues are not in ../shared/sec_original")
def test_the_authors_voc_cues_statistics():
    """The numbers the scenes are calibrated against (bench/notes/scenes-calibration.md):
    10,582 train_aug images on the 41x41 grid; medians fg 0.132, bg 0.099, unlabelled 0.769,
    0.083 of the grid per present class, one class per image (mean 1.46, as VOC's)."""
    voc = calibration.voc_statistics()
    assert len(voc["fg"]) == 10582
    assert len(voc["fg_per_class"]) == int(voc["classes"].sum())
    got = {k: round(float(np.median(v)), 3) for k, v in voc.items()}
    assert got == {"fg": 0.132, "bg": 0.099, "unlabelled": 0.769, "fg_per_class": 0.083,
                   "classes": 1.0}
    assert float(voc["classes"].mean()) == pytest.approx(1.462, abs=1e-3)
    np.testing.assert_allclose(voc["fg"] + voc["bg"] + voc["unlabelled"], 1.0)


def test_a_tagged_calibration_reads_the_folder_a_tagged_quality_run_wrote(tmp_path, monkeypatch):
    """--tag w25 (another width) reads ROOT/VARIANT_w25, where bench/quality.py --tag w25 ran
    the cue stages; without a tag ROOT/VARIANT, never the other."""
    import quality

    class Reached(Exception):
        pass

    def stop(data, spec):
        raise Reached(data)
    monkeypatch.setattr(calibration.toy, "make_dataset", stop)
    for tag, folder in (("w25", "scenes5_w25"), ("", "scenes5")):
        with pytest.raises(Reached) as got:
            calibration.variant_statistics("scenes5", str(tmp_path), None, [], tag)
        assert str(got.value) == os.path.join(str(tmp_path), folder, "data")
        assert quality.variant_folder(str(tmp_path), "scenes5", tag) == \
            os.path.join(str(tmp_path), folder)


def _committed():
    """The committed calibrations: bench/results/quality/calibration (width 1/8) and each
    other one (calibration_w25: the same cue stages at width 1/4)."""
    found = sorted(glob.glob(os.path.join(REPO, "bench", "results", "quality",
                                          "calibration*", "result.json")))
    assert any(os.path.basename(os.path.dirname(p)) == "calibration" for p in found)
    return [os.path.dirname(p) for p in found]


@pytest.mark.parametrize("folder", _committed(), ids=os.path.basename)
def test_the_committed_calibration_meets_its_tolerance_on_the_tuned_variants(folder):
    """Every median of every tuned scenes variant within 20 % of VOC's; the held-out variants
    are reported, never among the tuned, and the result says which is which as
    datagen/variants.py does."""
    from datagen import variants
    with open(os.path.join(folder, "result.json")) as f:
        result = json.load(f)
    assert result["tolerance"] == calibration.TOLERANCE == 0.2
    assert result["voc_images"] == 10582
    tuned, held = result["tuned"], result["held_out"]
    assert tuned and not set(tuned) & set(variants.HELD_OUT)
    assert set(held) <= set(variants.HELD_OUT)
    for row in result["rows"]:
        for name in tuned + held:
            rel = (row[name] - row["voc"]) / row["voc"]
            assert row[name + " rel"] == pytest.approx(rel)
            if name in tuned:
                assert abs(rel) <= 0.2, (name, row["quantity"], rel)
    assert all(result["within_tolerance"][n] for n in tuned)
    assert os.path.isfile(os.path.join(folder, "result.png"))


@pytest.mark.parametrize("folder", _committed(), ids=os.path.basename)
def test_the_docs_show_the_committed_calibration(folder):
    with open(os.path.join(folder, "result.md")) as f:
        tables = f.read().strip()
    with open(os.path.join(REPO, "docs", "benchmarks.md")) as f:
        assert tables in f.read()
