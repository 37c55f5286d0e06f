"""IoU from confusion matrices computed by hand."""
import numpy as np

from cores.metrics import confusion_matrix, iou_scores


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
