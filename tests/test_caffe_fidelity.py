"""The three networks against Caffe's semantics, at full size (321): the authors' deploy
prototxts (tests/caffe_reference/, MIT) run by OpenCV's dnn module from a caffemodel of random
weights, written by an encoder of this test's own (not the project's), against the project's
networks on the same weights converted by the project's converter. Caffe runs once per network
(a V2 file); the project converts the same weights from a V1 file (BGR input) and from a V2 one
(RGB), and both must give Caffe's output; tolerance 1e-4 of each output's largest magnitude.
This is what guards the structure of the network code: any change to a pool's padding, a ReLU,
a dilation or the channel order fails here."""
import hashlib
import os

import mxnet as mx
import numpy as np
import pytest

from cores import weights
from cores.checkpoint import expected_shapes
from cores.config import load_config
from cores.data.transforms import to_net_input
from cores.symbols import networks

cv2 = pytest.importorskip("cv2")
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caffe_reference")
TOLERANCE = 1e-4
MEAN_BGR = (104.008, 116.669, 122.675)


# --- a protobuf encoder for caffe.proto's NetParameter, written for this test ---------------

def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, wire, payload):
    key = _varint((number << 3) | wire)
    if wire == 0:
        return key + _varint(payload)
    return key + _varint(len(payload)) + payload          # length-delimited


def _blob(array, v1):
    """BlobProto: V1 files give num/channels/height/width (1-padded on the left), V2 a
    BlobShape; the data packed little-endian float32."""
    array = np.asarray(array, "<f4")
    if v1:
        dims = (1,) * (4 - array.ndim) + array.shape
        head = b"".join(_field(n, 0, d) for n, d in zip((1, 2, 3, 4), dims))
    else:
        head = _field(7, 2, _field(1, 2, b"".join(_varint(d) for d in array.shape)))
    return head + _field(5, 2, array.tobytes())


def caffemodel(layers, v1):
    """NetParameter bytes of ``layers`` [(name, caffe type, [arrays])]: V2 ``layer`` (100) with
    string types, or V1 ``layers`` (2) with the V1 enum (4 Convolution, 14 InnerProduct)."""
    out = bytearray(_field(1, 2, b"random"))
    for name, kind, blobs in layers:
        if v1:
            body = _field(4, 2, name.encode()) + _field(5, 0, {"Convolution": 4,
                                                              "InnerProduct": 14}[kind])
            body += b"".join(_field(6, 2, _blob(b, True)) for b in blobs)
            out += _field(2, 2, body)
        else:
            body = _field(1, 2, name.encode()) + _field(2, 2, kind.encode())
            body += b"".join(_field(7, 2, _blob(b, False)) for b in blobs)
            out += _field(100, 2, body)
    return bytes(out)


# --- the three networks ----------------------------------------------------------------------

def _layers_from(shapes, rng, rename=None, kinds=None):
    """Caffe layers of random weights (He-scaled, so that activations stay of order 1 through
    the network) for every ``name_weight`` in ``shapes``; ``rename`` maps the project's layer
    names to the prototxt's."""
    rename, kinds = rename or {}, kinds or {}
    layers = []
    for key, shape in shapes.items():
        if not key.endswith("_weight"):
            continue
        name = key[:-len("_weight")]
        fan_in = int(np.prod(shape[1:]))
        blobs = [rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(2.0 / fan_in))]
        if name + "_bias" in shapes:
            blobs.append(rng.standard_normal(shapes[name + "_bias"], np.float32) * np.float32(0.1))
        kind = kinds.get(name, "InnerProduct" if len(shape) == 2 else "Convolution")
        layers.append((rename.get(name, name), kind, blobs))
    return layers


def _write(model_bytes, tmp_path):
    path = str(tmp_path / "model.caffemodel")
    with open(path, "wb") as f:
        f.write(model_bytes)
    return path


_CAFFE_RUNS = {}


def _opencv(prototxt, layers, tmp_path, data_bgr, outputs):
    """Caffe's outputs (OpenCV's dnn on the V2 file of ``layers``), computed once per
    prototxt, weights and picture (the cases of a network share them)."""
    digest = hashlib.sha1(np.ascontiguousarray(data_bgr).tobytes())
    for name, _, blobs in layers:
        digest.update(name.encode())
        for blob in blobs:
            digest.update(np.ascontiguousarray(blob).tobytes())
    key = (prototxt, digest.hexdigest(), tuple(outputs))
    if key in _CAFFE_RUNS:
        return _CAFFE_RUNS[key]
    path = _write(caffemodel(layers, False), tmp_path)
    net = cv2.dnn.readNetFromCaffe(os.path.join(HERE, prototxt), path)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.enableFusion(False)                  # 'conv4_1' is the convolution, before its ReLU
    net.setInput(data_bgr)
    _CAFFE_RUNS[key] = dict(zip(outputs, net.forward(outputs)))
    return _CAFFE_RUNS[key]


def _ours(symbol, arg, aux, data):
    inputs = {"data": mx.nd.array(data)}
    names = symbol.list_arguments()
    args = {k: mx.nd.array(v) for k, v in arg.items() if k in names}
    args.update({k: v for k, v in inputs.items()})
    auxs = {k: mx.nd.array(v) for k, v in aux.items() if k in symbol.list_auxiliary_states()}
    missing = [n for n in names if n not in args]
    assert not missing, missing
    return symbol.bind(mx.cpu(), args, aux_states=auxs).forward(is_train=False)[0].asnumpy()


def _close(ours, theirs, what):
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    err = np.abs(ours - theirs).max() / max(1e-12, np.abs(theirs).max())
    assert err < TOLERANCE, "%s: relative difference %.2e" % (what, err)
    return err


def _image(order, seed=0):
    """A smooth random picture (blurred noise) as the project feeds it (``order``) and as
    Caffe's deploy takes it (BGR, the notebooks' mean subtracted)."""
    rng = np.random.RandomState(seed)
    rgb = cv2.GaussianBlur(rng.rand(321, 321, 3).astype(np.float32), (0, 0), 3)
    rgb = (rgb - rgb.min()) / (rgb.max() - rgb.min()) * 255
    mean = MEAN_BGR if order == "BGR" else MEAN_BGR[::-1]
    ours = to_net_input(rgb, mean, order)[None]
    caffe = np.ascontiguousarray((rgb[:, :, ::-1] - np.array(MEAN_BGR, np.float32))
                                 .transpose(2, 0, 1)[None])
    return ours, caffe


def _convert(layers, v1, tmp_path, order, rename=None):
    """The weights Caffe ran, as a V1 or V2 caffemodel, through the project's converter;
    ``rename``: the prototxt's layer names that the project's networks name otherwise."""
    arg, aux, _ = weights.convert_caffe(_write(caffemodel(layers, v1), tmp_path), "vgg16", order)
    for theirs, ours in (rename or {}).items():
        for suffix in ("_weight", "_bias"):
            if theirs + suffix in arg:
                arg[ours + suffix] = arg.pop(theirs + suffix)
    return arg, aux


CASES = [(True, "BGR"), (False, "RGB")]


@pytest.mark.parametrize("v1,order", CASES)
def test_sec_scores_equal_caffe(tmp_path, v1, order):
    cfg = load_config(None, ["CHANNEL_ORDER=" + order, "PIXEL_MEAN=%s" % list(
        MEAN_BGR if order == "BGR" else MEAN_BGR[::-1])])
    symbol = networks.sec_scores(cfg, mx.sym.Variable("data"), dropout=False)
    shapes, _ = expected_shapes(symbol, {"data": (1, 3, 321, 321)})
    layers = _layers_from(shapes, np.random.default_rng(1), rename={"fc8": "fc8-SEC"})
    ours_in, caffe_in = _image(order)
    theirs = _opencv("sec_deploy.prototxt", layers, tmp_path, caffe_in, ["fc8-SEC"])["fc8-SEC"]
    arg, aux = _convert(layers, v1, tmp_path, order, {"fc8-SEC": "fc8"})
    _close(_ours(symbol, arg, aux, ours_in), theirs, "SEC fc8")


@pytest.mark.parametrize("v1,order", CASES)
def test_cam_maps_equal_caffe(tmp_path, v1, order):
    cfg = load_config(None, ["CHANNEL_ORDER=" + order])
    symbol = networks.cam_symbol(cfg)
    shapes, _ = expected_shapes(symbol, {"data": (1, 3, 321, 321)})
    layers = _layers_from(shapes, np.random.default_rng(2), kinds={"scores": "InnerProduct"})
    ours_in, caffe_in = _image(order, seed=1)
    got = _opencv("cam_deploy.prototxt", layers, tmp_path, caffe_in, ["fc7_CAM", "scores"])
    weight = dict((n, b) for n, _, b in layers)["scores"][0]
    theirs = np.einsum("ck,nkhw->nchw", weight, got["fc7_CAM"])        # CAM_c = W_c . fc7
    # the maps are the scores before the 41x41 average: the reading of the CAM is Caffe's too
    _close(theirs.mean(axis=(2, 3)), got["scores"].reshape(1, -1), "CAM mean = scores")
    arg, aux = _convert(layers, v1, tmp_path, order)
    _close(_ours(symbol, arg, aux, ours_in), theirs, "CAM maps")


@pytest.mark.slow                                   # a 250 MB caffemodel (fc6: 61952 x 1024)
@pytest.mark.parametrize("v1,order", CASES)
def test_saliency_scores_and_conv4_1_equal_caffe(tmp_path, v1, order):
    """The saliency classifier's scores and conv4_1 before its ReLU, the layer whose gradient
    gives the saliency (method §3). The prototxt names the head fc6/fc7/fc8; the project's are
    fc6_saliency/fc7_saliency/fc8_saliency (so that they never meet SEC's fc6/fc7)."""
    cfg = load_config(None, ["CHANNEL_ORDER=" + order])
    front, back = networks.saliency_parts(cfg)
    scores = networks.saliency_train_symbol(cfg).get_children()[0]
    shapes, _ = expected_shapes(scores, {"data": (1, 3, 321, 321)})
    rename = {"fc6_saliency": "fc6", "fc7_saliency": "fc7", "fc8_saliency": "fc8"}
    layers = _layers_from(shapes, np.random.default_rng(3), rename=rename)
    ours_in, caffe_in = _image(order, seed=2)
    got = _opencv("saliency_deploy.prototxt", layers, tmp_path, caffe_in, ["conv4_1", "fc8"])
    arg, aux = _convert(layers, v1, tmp_path, order, {v: k for k, v in rename.items()})
    _close(_ours(front, arg, aux, ours_in), got["conv4_1"], "saliency conv4_1")
    _close(_ours(scores, arg, aux, ours_in), got["fc8"].reshape(1, -1), "saliency scores")
