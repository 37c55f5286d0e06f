"""Backbone pretraining from scratch: BatchNorm folded into the plain VGG16, the classifier
checks (a class in every image, a network that learned nothing), the supervised bound."""
import os

import mxnet as mx
import numpy as np
import pytest

from cores import classifier, stages
from cores.config import load_config
from cores.metrics import average_precision, classification_report
from cores.pretrain import balance_scales, fold_batchnorm
from cores.symbols import networks


def _forward(symbol, arg, aux, data):
    mod = mx.mod.Module(symbol, data_names=["data"], label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[("data", data.shape)], for_training=False)
    mod.set_params(arg, aux, allow_missing=False, allow_extra=True)
    mod.forward(mx.io.DataBatch([mx.nd.array(data)]), is_train=False)
    return mod.get_outputs()[0].asnumpy()


def test_folded_batchnorm_computes_what_the_normalised_network_did():
    cfg = load_config(None, ["WIDTH_MULT=0.125", "CLASS_NUM=4", "DROPOUT=false"])
    data = np.random.RandomState(0).randn(2, 3, 81, 81).astype(np.float32) * 50
    with_bn = networks.sec_scores(cfg, mx.sym.Variable("data"), batch_norm=True)
    shapes, _, aux_shapes = with_bn.infer_shape(data=data.shape)
    rng = np.random.RandomState(1)
    arg = {n: mx.nd.array(rng.randn(*s) * (0.1 if n.endswith("weight") else 0.5))
           for n, s in zip(with_bn.list_arguments(), shapes) if n != "data"}
    aux = {n: mx.nd.array(rng.rand(*s) + (0.5 if "var" in n else -0.5))
           for n, s in zip(with_bn.list_auxiliary_states(), aux_shapes)}
    assert len(aux) == 2 * 15                     # 13 convolutions, fc6, fc7
    expected = _forward(with_bn, arg, aux, data)
    folded_arg, folded_aux = fold_batchnorm({k: v.asnumpy() for k, v in arg.items()},
                                            {k: v.asnumpy() for k, v in aux.items()})
    assert folded_aux == {} and not any("_bn_" in k for k in folded_arg)
    plain = networks.sec_scores(cfg, mx.sym.Variable("data"))
    assert sorted(folded_arg) == sorted(n for n in plain.list_arguments() if n != "data")
    got = _forward(plain, {k: mx.nd.array(v) for k, v in folded_arg.items()}, {}, data)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    # rebalanced scales: the same function, conv1_1 scaled up by 60^(14/15), fc7 by 1
    layers = [n[:-len("_weight")] for n in plain.list_arguments()
              if n.endswith("_weight") and n != "fc8_weight"]
    assert len(layers) == 15 and layers[0] == "conv1_1" and layers[-1] == "fc7"
    balanced = balance_scales(folded_arg, layers, 60.0)
    np.testing.assert_allclose(balanced["conv1_1_weight"] / folded_arg["conv1_1_weight"],
                               60.0 ** (14 / 15), rtol=1e-5)
    np.testing.assert_allclose(balanced["fc7_bias"], folded_arg["fc7_bias"], rtol=1e-6)
    again = _forward(plain, {k: mx.nd.array(v) for k, v in balanced.items()}, {}, data)
    np.testing.assert_allclose(again, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_average_precision():
    assert average_precision([0.9, 0.8, 0.1], [1, 1, 0]) == 1.0
    assert average_precision([0.1, 0.8, 0.9], [1, 1, 0]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert average_precision([0.3, 0.2], [1, 1]) is None           # no negative image
    report = classification_report(np.array([[0.9, 0.5], [0.1, 0.4]]),
                                   np.array([[1, 1], [0, 1]]), ["a", "b"])
    assert report["AP"] == {"a": 1.0, "b": None} and report["mAP"] == 1.0
    assert report["no_negatives"] == ["b"]


def _entries(labels):
    return [{"id": "i%d" % k, "labels": list(lab)} for k, lab in enumerate(labels)]


def test_a_class_in_every_image_stops_before_training():
    classes = ["background", "cat"]
    with pytest.raises(classifier.LearningError, match="cat is in every one of the 3"):
        classifier.check_negatives(_entries([[1], [1], [1]]), classes)
    classifier.check_negatives(_entries([[1], [], [1]]), classes)     # a background image


def test_a_classifier_that_learned_nothing_stops(tmp_path):
    cfg = load_config(None, ["MIN_CLASSIFIER_MAP=0.6"])
    classes = ["background", "cat", "dog"]
    entries = _entries([[1], [2], [1, 2], []])
    good = {"i0": [3, -1], "i1": [-2, 2], "i2": [1, 1], "i3": [-3, -3]}
    report = classifier.check_classifier(cfg, "CAM", good, entries, classes,
                                           str(tmp_path / "r.json"))
    assert report["mAP"] == 1.0 and (tmp_path / "r.json").is_file()
    constant = {k: [0.5, 0.5] for k in good}        # ties: ranked in image order
    bad = {"i0": [-1, 2], "i1": [2, -1], "i2": [-2, -2], "i3": [3, 3]}
    with pytest.raises(classifier.LearningError, match="mAP 0.4"):
        classifier.check_classifier(cfg, "CAM", bad, entries, classes)
    assert classifier.check_classifier(cfg, "CAM", constant, entries, classes)["mAP"] > 0.6


def test_supervised_bound_trains_on_the_masks_and_evaluates(toy_tree, toy_index, tmp_path):
    """train_SEC --supervised: the same network and fit loop on ground-truth masks (one
    cross-entropy output), its own snapshots, evaluated by the same code."""
    from cores import checkpoint, evaluation
    from cores import methods
    from cores.segmentation import train
    from tests.conftest import small_config as _cfg
    cfg = _cfg(toy_tree, toy_index, tmp_path, MAX_ITER=3, EPOCH_SIZE=3, BATCH_SIZE=4)
    history = train(cfg, methods.get("supervised"), [mx.cpu()])
    assert [sorted(h) for h in history] == [["ce_loss", "iter", "lr", "seconds"]] * 3
    assert 0 < history[0]["seconds"] < history[1]["seconds"] < history[2]["seconds"]
    assert checkpoint.latest_epoch(stages.prefix(cfg, methods.get("supervised"))) == 1
    assert checkpoint.latest_epoch(stages.prefix(cfg, methods.get("sec"))) == 0      # SEC's untouched
    metrics = evaluation.evaluate(cfg, methods.get("supervised"), [mx.cpu()])
    assert metrics["flags"]["supervised"] is True and metrics["images"] == 6
    assert os.path.isfile(os.path.join(stages.output_dir(cfg, 1, methods.get("supervised"), False, False),
                                       "metrics.json"))
