"""bench/same_run.py: two demo runs are the same when the demo's table and every array of
their snapshots and cues are; the embedded config (the run's own paths) is not compared, and
a single changed number anywhere is found and named."""
import json
import os
import sys

import mxnet as mx
import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))
import same_run  # noqa: E402


def _run(root, weight, iou, config):
    for sub in ("outputs", "snapshots", "cache"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, "outputs", "demo_summary.json"), "w") as f:
        json.dump({"SEC": {"mIoU": float(np.mean(iou)), "IoU": {"a": iou[0], "b": iou[1]}},
                   "seconds": {"sec": 1.0 + weight.sum()}}, f)
    mx.nd.save(os.path.join(root, "snapshots", "sec_vgg16-0002.params"),
               {"arg:fc8_weight": mx.nd.array(weight), "meta:config": mx.nd.array(config)})
    mx.nd.save(os.path.join(root, "snapshots", "sec_vgg16-0002.optimizer.params"),
               {"x": mx.nd.array(weight)})
    np.savez(os.path.join(root, "cache", "fg_cues.npz"), a=np.arange(4))


def test_the_same_run_is_found_the_same_and_one_changed_number_is_named(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    _run(old, w, [0.5, 0.7], [1, 2])
    _run(new, w, [0.5, 0.7], [3, 4, 5])              # other paths in its config: still the same
    out = str(tmp_path / "cmp")
    assert same_run.main(["--old", old, "--new", new, "--out", out]) == 0
    with open(out + ".json") as f:
        result = json.load(f)
    assert result["same"] and [r["equal"] for r in result["table"]] == [True]
    assert [r["verdict"] for r in result["files"]] == ["equal"] * 3

    w2 = w.copy()
    w2[1, 2] = np.nextafter(w2[1, 2], np.float32(10))  # one ulp in one weight
    _run(new, w2, [0.5, 0.7], [1, 2])
    assert same_run.main(["--old", old, "--new", new, "--out", out]) == 1
    files = dict(same_run.compare_files(old, new))
    assert files["snapshots/sec_vgg16-0002.params"] == "differs: arg:fc8_weight"

    with pytest.raises(SystemExit):                  # a label without its name
        same_run.main(["--old", old, "--new", new, "--out", out, "--label", "a5c090a"])
    _run(new, w, [0.7, 0.5], [1, 2])                  # the same mIoU from other class IoUs
    assert [r["equal"] for r in same_run.compare_tables(old, new)] == [False]
    os.remove(os.path.join(new, "cache", "fg_cues.npz"))
    assert dict(same_run.compare_files(old, new))["cache/fg_cues.npz"] == "only old"
