"""The released trained networks as snapshots (cores/released.py, tools/convert_weights.py
--stage sec / --port-snapshot): the authors' Caffe SEC model (written by the fidelity tests'
own encoder) against OpenCV's dnn running their deploy prototxt, and the earlier port's
snapshots (its names and shapes) against the port's network; what eval.py computes from the
converted snapshot equals the source network's; a file of another network or class count is
refused naming the layer and the shapes."""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from cores import checkpoint, methods, released, stages
from cores.config import load_config
from cores.evaluation import run_inference
from cores.inference import load_inference_params
from cores.symbols import networks
from tests.conftest import REPO

SEC = methods.get("sec")


def _scoremap(cfg, image, tmp_path):
    """The probabilities eval.py computes (--savescoremap, float16) for one image file, from
    the latest snapshot of ``cfg``."""
    model = load_inference_params(cfg, SEC)
    out = tmp_path / "scoremaps"
    run_inference(cfg, [mx.cpu()], [{"id": "x", "image": str(image), "mask": None}], model,
                  scoremap_dir=str(out), workers=1)
    return np.load(str(out / "x.npz"))["probs"].astype(np.float32)


def _softmax(scores):
    e = np.exp(scores - scores.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _picture(path, side, seed=0):
    """A smooth random picture of side x side pixels, saved losslessly; returns its RGB."""
    import cv2
    rng = np.random.RandomState(seed)
    rgb = cv2.GaussianBlur(rng.rand(side, side, 3).astype(np.float32), (0, 0), 3)
    rgb = ((rgb - rgb.min()) / (rgb.max() - rgb.min()) * 255).round().astype(np.uint8)
    Image.fromarray(rgb).save(str(path))
    return rgb.astype(np.float32)


def test_the_authors_caffe_model_evaluates_as_opencv_runs_their_deploy(tmp_path):
    """A trained-SEC caffemodel (fc8-SEC) converted to a snapshot: the probabilities eval
    computes from it at 321 equal the softmax of what OpenCV's dnn computes with the authors'
    deploy prototxt on the same picture (BGR, mean 104/117/123)."""
    cv2 = pytest.importorskip("cv2")
    from tests import test_caffe_fidelity as fidelity
    cfg = load_config(None, ["SNAPSHOT_PATH=%s" % (tmp_path / "snapshots")])
    symbol = networks.sec_scores(cfg, mx.sym.Variable("data"), dropout=False)
    shapes, _ = checkpoint.expected_shapes(symbol, {"data": (1, 3, 321, 321)})
    layers = fidelity._layers_from(shapes, np.random.default_rng(5), rename={"fc8": "fc8-SEC"})
    model = tmp_path / "SEC.caffemodel"
    model.write_bytes(fidelity.caffemodel(layers, False))
    rgb = _picture(tmp_path / "x.png", 321)
    blob = np.ascontiguousarray((rgb[:, :, ::-1] - np.array([104.0, 117.0, 123.0], np.float32))
                                .transpose(2, 0, 1)[None])
    net = cv2.dnn.readNetFromCaffe(os.path.join(fidelity.HERE, "sec_deploy.prototxt"),
                                   str(model))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setInput(blob)
    theirs = _softmax(net.forward("fc8-SEC")[0])
    arg, aux = released.from_caffe(cfg, str(model))
    path = released.save(cfg, arg, aux)
    assert path.endswith("sec_vgg16-0008.params")
    stored = checkpoint.snapshot_meta(path[:-len("-0008.params")], 8)[1]
    assert (stored["INPUT_SIZE"], stored["CHANNEL_ORDER"], stored["PIXEL_MEAN"]) == (
        321, "BGR", [104.0, 117.0, 123.0])
    ours = _scoremap(cfg, tmp_path / "x.png", tmp_path)
    assert ours.shape == theirs.shape == (21, 41, 41)
    assert np.abs(ours - theirs).max() < 2e-3                      # float16 score maps
    with pytest.raises(released.ReleasedModelError, match="exists"):
        released.save(cfg, arg, aux)


def _port_vgg16(num_classes=21, rng=None):
    """The port's VGG16 network (its SEC_vgg16.py: names conv1_1..fc7, fc8_SEC; floor pooling,
    no dropout) written here from its description, and random weights for it in its names."""
    rng = rng or np.random.RandomState(0)
    x = mx.sym.Variable("data")
    widths = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]
    for group, count, width in widths:
        for i in range(1, count + 1):
            dilate = 2 if group == 5 else 1
            x = mx.sym.Convolution(x, num_filter=width, kernel=(3, 3), pad=(dilate, dilate),
                                   dilate=(dilate, dilate), name="conv%d_%d" % (group, i))
            x = mx.sym.relu(x)
        if group < 5:
            stride = 2 if group < 4 else 1
            x = mx.sym.Pooling(x, kernel=(3, 3), stride=(stride, stride), pad=(1, 1),
                               pool_type="max", pooling_convention="valid")
    x = mx.sym.Pooling(x, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="max")
    x = mx.sym.Pooling(x, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg")
    x = mx.sym.relu(mx.sym.Convolution(x, num_filter=1024, kernel=(3, 3), pad=(12, 12),
                                       dilate=(12, 12), name="fc6"))
    x = mx.sym.relu(mx.sym.Convolution(x, num_filter=1024, kernel=(1, 1), name="fc7"))
    x = mx.sym.Convolution(x, num_filter=num_classes, kernel=(1, 1), name="fc8_SEC")
    net = mx.sym.softmax(x, axis=1)
    shapes = dict(zip(net.list_arguments(), net.infer_shape(data=(1, 3, 320, 320))[0]))
    params = {k: (rng.randn(*s) * np.sqrt(2.0 / np.prod(s[1:]))).astype(np.float32)
              if k.endswith("weight") else (rng.randn(*s) * 0.1).astype(np.float32)
              for k, s in shapes.items() if k != "data"}
    return net, params


def _save_port(path, arg, aux=None):
    mx.nd.save(str(path), {**{"arg:" + k: mx.nd.array(v) for k, v in arg.items()},
                           **{"aux:" + k: mx.nd.array(v) for k, v in (aux or {}).items()}})


def test_a_port_snapshot_evaluates_as_the_ports_network(tmp_path):
    """SEC_vgg16-8.params (arg:/aux: keys, fc8_SEC (21, 1024, 1, 1)) becomes sec_vgg16-0008 with
    the port's recipe stored (input 320, floor pooling, RGB, mean 123/117/104): eval's
    probabilities equal the port's network's on the port's preprocessing."""
    net, params = _port_vgg16()
    source = tmp_path / "SEC_vgg16-8.params"
    _save_port(source, params)
    cfg = load_config(released.PORT_RECIPE, ["SNAPSHOT_PATH=%s" % (tmp_path / "snapshots")])
    arg, aux = released.from_port(cfg, str(source))
    assert "fc8_weight" in arg and "fc8_SEC_weight" not in arg and aux == {}
    path = released.save(cfg, arg, aux, released.port_epoch(str(source)))
    assert path.endswith("sec_vgg16-0008.params")
    stored = checkpoint.snapshot_meta(stages.prefix(cfg, SEC), 8)[1]
    assert (stored["INPUT_SIZE"], stored["POOLING_CONVENTION"], stored["CHANNEL_ORDER"],
            stored["PIXEL_MEAN"]) == (320, "valid", "RGB", [123.0, 117.0, 104.0])
    rgb = _picture(tmp_path / "x.png", 320, seed=1)
    data = (rgb - np.array([123.0, 117.0, 104.0], np.float32)).transpose(2, 0, 1)[None]
    args = {k: mx.nd.array(v) for k, v in params.items()}
    args["data"] = mx.nd.array(np.ascontiguousarray(data))
    theirs = net.bind(mx.cpu(), args).forward()[0].asnumpy()[0]
    ours = _scoremap(cfg, tmp_path / "x.png", tmp_path)
    assert ours.shape == theirs.shape == (21, 40, 40)
    assert np.abs(ours - theirs).max() < 2e-3


def _port_resnet50(num_classes=21):
    """A port ResNet50 snapshot's arrays: the Caffe body names, its head new_conv1 and fc, the
    classifier fc8_SEC (its SEC_resnet50.py), random."""
    cfg = load_config(released.PORT_RECIPE, ["BASE_NET=resnet50",
                                              "CLASS_NUM=%d" % num_classes])
    symbol = networks.sec_infer_symbol(cfg)
    arg_shapes, aux_shapes = checkpoint.expected_shapes(symbol, {"data": (1, 3, 320, 320)})
    rng = np.random.RandomState(2)
    ours = {v: k for k, v in released.PORT_NAMES.items()}

    def theirs(name):
        layer, _, suffix = name.rpartition("_")
        return ours.get(layer, layer) + "_" + suffix
    arg = {theirs(k): (rng.randn(*s) * 0.05).astype(np.float32) for k, s in arg_shapes.items()}
    aux = {k: (rng.rand(*s) + 0.5).astype(np.float32) for k, s in aux_shapes.items()}
    return cfg, arg, aux


def test_a_port_resnet50_snapshot_takes_the_ports_head_and_batchnorm(tmp_path):
    cfg, arg, aux = _port_resnet50()
    assert {"new_conv1_weight", "fc_weight", "fc8_SEC_weight", "res5c_branch2c_weight",
            "bn_conv1_gamma"} <= set(arg)
    source = tmp_path / "SEC_resnet50-8.params"
    _save_port(source, arg, aux)
    cfg = type(cfg)(cfg, SNAPSHOT_PATH=str(tmp_path / "snapshots"))
    got, got_aux = released.from_port(cfg, str(source))
    np.testing.assert_array_equal(got["fc6_weight"], arg["new_conv1_weight"])
    np.testing.assert_array_equal(got["fc8_bias"], arg["fc8_SEC_bias"])
    assert set(got_aux) == set(aux)
    released.save(cfg, got, got_aux, 8)
    stored = checkpoint.snapshot_meta(stages.prefix(cfg, SEC), 8)[1]
    assert (stored["BASE_NET"], stored["RESNET_BN"], stored["INPUT_SIZE"]) == (
        "resnet50", "port", 320)
    symbol, p_arg, p_aux, epoch = load_inference_params(cfg, SEC)
    assert epoch == 8 and float(symbol.attr_dict()["bn2a_branch2a"]["eps"]) == pytest.approx(
        1.001e-5)                                       # the port's BatchNorm


def test_another_network_or_class_count_is_refused_naming_the_layer(tmp_path):
    from tests import test_caffe_fidelity as fidelity
    _, params = _port_vgg16(num_classes=20)
    source = tmp_path / "SEC_vgg16-8.params"
    _save_port(source, params)
    cfg = load_config(released.PORT_RECIPE)
    with pytest.raises(released.ReleasedModelError,
                       match=r"20 classes, CLASS_NUM=21\): fc8_SEC_weight has shape "
                             r"\(20, 1024, 1, 1\), the network needs \(21, 1024, 1, 1\)"):
        released.from_port(cfg, str(source))
    _, arg, aux = _port_resnet50()
    _save_port(source, arg, aux)
    with pytest.raises(released.ReleasedModelError,
                       match="not the SEC network of BASE_NET=vgg16.*conv1_1_weight is missing"
                             ".*arrays the network does not have"):
        released.from_port(cfg, str(source))
    authors = load_config()
    symbol = networks.sec_scores(type(authors)(authors, CLASS_NUM=20), mx.sym.Variable("data"),
                                 dropout=False)
    shapes, _ = checkpoint.expected_shapes(symbol, {"data": (1, 3, 321, 321)})
    layers = fidelity._layers_from(shapes, np.random.default_rng(0), rename={"fc8": "fc8-SEC"})
    model = tmp_path / "SEC.caffemodel"
    model.write_bytes(fidelity.caffemodel(layers, True))
    with pytest.raises(released.ReleasedModelError, match=r"fc8-SEC_weight has shape "
                                                          r"\(20, 1024, 1, 1\)"):
        released.from_caffe(authors, str(model))
    with pytest.raises(released.ReleasedModelError, match="CHANNEL_ORDER=BGR"):
        released.from_caffe(load_config(None, ["CHANNEL_ORDER=RGB"]), str(model))


@pytest.mark.slow                                       # two scripts in subprocesses
def test_the_documented_commands_convert_and_evaluate_a_port_snapshot(toy_index, tmp_path):
    """tools/convert_weights.py --port-snapshot, then eval.py --cfg configs/port.yaml --crf
    --flip, on the toy data: metrics of the converted snapshot, and a wrong file ends in one
    line."""
    cfg, _ = toy_index
    sets = ["CLASS_NUM=5", "WIDTH_MULT=0.125", "DATASET_PATH=" + cfg.DATASET_PATH,
            "SNAPSHOT_PATH=%s" % (tmp_path / "snapshots"), "OUTPUT_PATH=%s" % (tmp_path / "out"),
            "LOG_PATH=%s" % (tmp_path / "log"), "CRF_WORKERS=1", "DATA_WORKERS=1"]
    small = load_config(released.PORT_RECIPE, sets)
    symbol = networks.sec_infer_symbol(small)
    shapes, _ = checkpoint.expected_shapes(symbol, {"data": (1, 3, 320, 320)})
    rng = np.random.RandomState(0)
    arg = {("fc8_SEC" + k[3:] if k.startswith("fc8") else k): rng.randn(*s).astype(np.float32)
           * 0.05 for k, s in shapes.items()}
    source = tmp_path / "SEC_vgg16-8.params"
    _save_port(source, arg)

    def run(*args):
        return subprocess.run([sys.executable] + list(args), cwd=REPO, capture_output=True,
                              text=True)
    done = run("tools/convert_weights.py", "--port-snapshot", str(source), "--set", *sets)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "python eval.py --cfg configs/port.yaml --crf --flip" in done.stdout
    done = run("eval.py", "--cfg", "configs/port.yaml", "--crf", "--flip", "--set", *sets)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = os.path.join(str(tmp_path / "out"), "sec_vgg16-0008_flip_crf", "metrics.json")
    assert os.path.isfile(metrics) and "WARNING" not in done.stdout
    bad = run("tools/convert_weights.py", "--port-snapshot", str(source), "--set",
              *(sets + ["CLASS_NUM=6", "SNAPSHOT_PATH=%s" % (tmp_path / "other")]))
    assert bad.returncode == 1 and "Traceback" not in bad.stdout + bad.stderr
    assert "the file's classifier has 5 classes, CLASS_NUM=6" in bad.stdout + bad.stderr
