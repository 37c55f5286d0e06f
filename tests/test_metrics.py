"""IoU from confusion matrices computed by hand."""
import os

import numpy as np

from cores.metrics import confusion_matrix, error_kinds, format_error_kinds, iou_scores


def test_confusion_ignores_void():
    gt = np.array([[0, 0, 1], [1, 255, 2]])
    pred = np.array([[0, 1, 1], [2, 0, 2]])
    conf = confusion_matrix(pred, gt, 4)
    want = np.zeros((4, 4), int)
    want[0, 0] = 1
    want[0, 1] = 1
    want[1, 1] = 1
    want[1, 2] = 1
    want[2, 2] = 1
    np.testing.assert_array_equal(conf, want)


def test_iou_by_hand():
    conf = np.array([[5, 1, 0, 0],
                     [2, 3, 0, 0],
                     [0, 0, 0, 0],                  # class 2: in neither -> undefined
                     [0, 0, 0, 0]])
    conf[3, 3] = 0
    conf[0, 3] = 2                                  # class 3 predicted, never in the truth
    iou, miou, acc = iou_scores(conf)
    assert iou[0] == 5 / (5 + 1 + 2 + 2)            # TP / (TP + FN + FP)
    assert iou[1] == 3 / (3 + 2 + 1)
    assert iou[2] is None
    assert iou[3] == 0.0
    assert miou == np.mean([iou[0], iou[1], 0.0])
    assert acc == 8 / 13


def test_error_kinds_by_hand():
    # rows truth, columns prediction: 10 background pixels taken for class 1, 2 of class 1
    # for background, 4 of class 2 for class 1
    conf = [[80, 10, 0], [2, 30, 0], [0, 4, 20]]
    kinds = error_kinds(conf)
    assert kinds["fg_area_ratio"] == (30 + 10 + 4 + 20) / (32 + 24)
    assert kinds["bg_as_fg"] == 10 / 16 and kinds["fg_as_bg"] == 2 / 16
    assert kinds["fg_as_other_fg"] == 4 / 16
    assert "1.143" in format_error_kinds(kinds) and "62 %" in format_error_kinds(kinds)
    perfect = error_kinds(np.diag([5, 5]))
    assert perfect["fg_area_ratio"] == 1.0 and perfect["bg_as_fg"] is None


def test_error_kinds_tool_reads_an_output_folder(tmp_path):
    import json
    import subprocess
    import sys
    conf = [[80, 10, 0], [2, 30, 0], [0, 4, 20]]
    (tmp_path / "metrics.json").write_text(json.dumps({"mIoU": 0.5, "confusion_matrix": conf}))
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                        "error_kinds.py")
    done = subprocess.run([sys.executable, tool, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == "| %s | 0.500 | 1.143 | 0.62 | 0.12 | 0.25 |" % tmp_path
    bad = subprocess.run([sys.executable, tool, str(tmp_path / "none")], capture_output=True,
                         text=True)
    assert bad.returncode == 1 and "none" in bad.stderr and "not an eval.py" in bad.stderr
