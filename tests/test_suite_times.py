"""bench/suite_times.py: pytest's summary read right, and the committed side-by-side run shows
what the docs say of it (both suites take less wall and CPU time, as medians of the
alternated runs, at this checkout than at the earlier commit)."""
import json
import os
import statistics

from tests.conftest import REPO, load_script

RESULT = os.path.join(REPO, "bench", "results", "speed", "test_suites", "result.json")


def test_summary_lines_give_passed_and_failed():
    counts = load_script("bench/suite_times.py").counts
    assert counts("2 failed, 272 passed, 31 deselected in 48.88s") == (272, 2)
    assert counts("357 passed in 358.14s (0:05:58)") == (357, 0)
    assert counts("1 failed, 3 passed, 1 error in 3.00s") == (3, 2)
    assert counts("no tests ran in 0.01s") == (0, 0)


def test_both_suites_are_faster_than_at_the_earlier_commit():
    with open(RESULT) as f:
        rows = json.load(f)["rows"]
    for target in ("test-fast", "test"):
        new = [r for r in rows if r["target"] == target and r["checkout"] == "new"]
        old = [r for r in rows if r["target"] == target and r["checkout"] == "old"]
        assert new and old, target
        assert all(r["exit"] == 0 and r["failed"] == 0 for r in new), target
        for key in ("wall_s", "cpu_s"):
            assert statistics.median(r[key] for r in new) < statistics.median(
                r[key] for r in old), (target, key)
