"""Weight conversion from Caffe and Gluon files into the project's networks, and the authors'
released cues through a restricted unpickler."""
import gzip
import os
import pickle

import mxnet as mx
import numpy as np
import pytest
from scipy.signal import correlate

from cores import caffe_model, cues, weights
from cores.checkpoint import _check, expected_shapes
from cores.config import load_config
from cores.original_cues import RestrictedUnpickler, convert_original_cues, restricted_load
from cores.symbols import networks, resnet, vgg16

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                      "shared", "sec_original")


def _caffe_layers(net, rng, width=1.0):
    """Caffe layers (random float32 weights from the Generator ``rng``) with the real models'
    names, types and blob shapes (``width``: channels scaled, names kept)."""
    cfg = load_config(overrides=["BASE_NET=" + net, "WIDTH_MULT=%s" % width])
    sym = networks.sec_scores(cfg, mx.sym.Variable("data"))
    args, auxs = expected_shapes(sym, {"data": (1, 3, 321, 321)})
    layers = []
    if net == "vgg16":
        for name in [n[:-7] for n in args if n.endswith("_weight") and n != "fc8_weight"]:
            layers.append({"name": name, "type": "Convolution", "bottom": [], "top": [name],
                           "blobs": [rng.standard_normal(args[name + "_weight"], np.float32),
                                     rng.standard_normal(args[name + "_bias"], np.float32)]})
        layers.append({"name": "fc8", "type": "InnerProduct", "bottom": [], "top": ["fc8"],
                       "blobs": [rng.standard_normal((1000, 1024)),       # ImageNet head
                                 rng.standard_normal(1000)]})
        return layers
    for name in [n[:-7] for n in args if n.endswith("_weight")]:
        if name.startswith("fc"):
            continue                                  # the SEC head is new
        blobs = [rng.standard_normal(args[name + "_weight"], np.float32)]
        if name == "conv1":
            blobs.append(rng.standard_normal(args["conv1_bias"], np.float32))
        layers.append({"name": name, "type": "Convolution", "bottom": [], "top": [name],
                       "blobs": blobs})
        bn = "bn_conv1" if name == "conv1" else "bn" + name[3:]
        scale = "scale_conv1" if name == "conv1" else "scale" + name[3:]
        c = args[bn + "_gamma"][0]
        layers.append({"name": bn, "type": "BatchNorm", "bottom": [name], "top": [name],
                       "blobs": [rng.standard_normal(c) * 2, rng.random(c) * 2 + 0.5,
                                 np.array([2.0])]})
        layers.append({"name": scale, "type": "Scale", "bottom": [name], "top": [name],
                       "blobs": [rng.random(c) + 0.5, rng.standard_normal(c)]})
    return layers


@pytest.mark.parametrize("net,v1,width", [("vgg16", True, 1.0), ("vgg16", False, 1.0),
                                          ("resnet50", False, 1.0), ("resnet101", False, 0.25)])
def test_caffemodel_converts_with_no_missing_or_extra_parameters(tmp_path, net, v1, width):
    layers = _caffe_layers(net, np.random.default_rng(0), width)
    path = str(tmp_path / "model.caffemodel")
    with open(path, "wb") as f:
        f.write(caffe_model.encode_caffemodel(layers, v1=v1))
    arg, aux, meta = weights.convert_caffe(path, net, "BGR")
    cfg = load_config(overrides=["BASE_NET=" + net, "WIDTH_MULT=%s" % width])
    sym = networks.sec_scores(cfg, mx.sym.Variable("data"))
    new = networks.new_param_names(sym)
    nd = lambda d: {k: mx.nd.array(v) for k, v in d.items()}  # noqa: E731
    _check(path, sym, {"data": (1, 3, 321, 321)}, nd(arg), nd(aux), skip=new)   # all there
    want_arg, want_aux = expected_shapes(sym, {"data": (1, 3, 321, 321)})
    assert set(arg) - {"fc8_weight", "fc8_bias"} == set(want_arg) - new
    assert set(aux) == set(want_aux)
    assert meta["channel_order"] == "BGR"
    if net == "resnet101":                  # the Caffe release's names of its deeper stages
        assert {"res3b3_branch2c_weight", "res4b22_branch2c_weight", "bn4b22_branch2c_gamma",
                "res5c_branch2c_weight"} <= set(arg)
        assert "bn4b22_branch2c_moving_var" in aux and "res4f_branch2a_weight" not in arg
    if net == "resnet50":
        bn = next(l for l in layers if l["name"] == "bn2a_branch2b")
        sc = next(l for l in layers if l["name"] == "scale2a_branch2b")
        np.testing.assert_allclose(aux["bn2a_branch2b_moving_mean"], bn["blobs"][0] / 2.0)
        np.testing.assert_allclose(aux["bn2a_branch2b_moving_var"], bn["blobs"][1] / 2.0)
        np.testing.assert_allclose(arg["bn2a_branch2b_gamma"], sc["blobs"][0])


def test_first_convolution_sees_bgr_whatever_the_input_order(tmp_path):
    """conv1_1's output on an image fed in the configured order equals the numpy convolution
    of the Caffe weights with the BGR image."""
    rng = np.random.default_rng(1)
    layers = _caffe_layers("vgg16", rng)
    path = str(tmp_path / "m.caffemodel")
    with open(path, "wb") as f:
        f.write(caffe_model.encode_caffemodel(layers))
    w = layers[0]["blobs"][0]
    b = layers[0]["blobs"][1]
    image_bgr = rng.random((3, 9, 9), np.float32)
    want = np.stack([sum(correlate(np.pad(image_bgr[c], 1), w[o, c], mode="valid")
                         for c in range(3)) + b[o] for o in range(w.shape[0])])
    for order in ("BGR", "RGB"):
        arg, _, meta = weights.convert_caffe(path, "vgg16", order)
        assert meta["channel_order"] == order
        fed = image_bgr if order == "BGR" else image_bgr[::-1]
        conv = mx.sym.Convolution(mx.sym.Variable("x"), num_filter=w.shape[0], kernel=(3, 3),
                                  pad=(1, 1), name="c")
        out = conv.bind(mx.cpu(), {"x": mx.nd.array(fed[None]),
                                   "c_weight": mx.nd.array(arg["conv1_1_weight"]),
                                   "c_bias": mx.nd.array(arg["conv1_1_bias"])}).forward()[0]
        np.testing.assert_allclose(out.asnumpy()[0], want, rtol=1e-4, atol=1e-4)


def test_caffe_errors(tmp_path):
    bad = tmp_path / "x.caffemodel"
    bad.write_bytes(b"not a model at all \xff\xff")
    with pytest.raises(caffe_model.CaffeFormatError, match="x.caffemodel"):
        weights.convert_caffe(str(bad), "vgg16", "BGR")
    proto = tmp_path / "net.prototxt"
    proto.write_text('layer { name: "conv1_1" type: "Convolution" }\n')
    good = tmp_path / "m.caffemodel"
    good.write_bytes(caffe_model.encode_caffemodel(_caffe_layers("vgg16",
                                                                 np.random.default_rng(0))))
    with pytest.raises(weights.ConversionError, match="does not define: conv1_2"):
        weights.convert_caffe(str(good), "vgg16", "BGR", str(proto), strict=True)


def _prototxt(layers, path):
    path.write_text("".join('layer { name: "%s" type: "%s" }\n' % (l["name"], l["type"])
                            for l in layers))
    return str(path)


def test_layers_the_network_does_not_use_are_listed_and_skipped(tmp_path, caplog):
    """A caffemodel with an fc8 that the prototxt lacks (DeepLab's init may carry such layers)
    was refused; now it is listed and left out, and --strict keeps the refusal."""
    layers = _caffe_layers("vgg16", np.random.default_rng(0))
    model = tmp_path / "m.caffemodel"
    model.write_bytes(caffe_model.encode_caffemodel(layers))
    proto = _prototxt([l for l in layers if l["name"] != "fc8"], tmp_path / "net.prototxt")
    expected = networks.pretrained_shapes(load_config())
    with caplog.at_level("WARNING"):
        arg, aux, _ = weights.convert_caffe(str(model), "vgg16", "BGR", proto,
                                            expected=expected)
    assert "skipping 1 layers" in caplog.text and "fc8" in caplog.text
    assert set(arg) == set(expected) and "fc8_weight" not in arg
    caplog.clear()
    with caplog.at_level("WARNING"):                       # no prototxt: the networks decide
        arg, _, _ = weights.convert_caffe(str(model), "vgg16", "BGR", expected=expected)
    assert "no network uses: fc8_bias, fc8_weight" in caplog.text and set(arg) == set(expected)
    with pytest.raises(weights.ConversionError, match="no network uses: fc8_bias"):
        weights.convert_caffe(str(model), "vgg16", "BGR", expected=expected, strict=True)


def test_a_used_layer_with_a_wrong_shape_is_an_error_naming_it(tmp_path):
    layers = _caffe_layers("vgg16", np.random.default_rng(0))
    conv = next(l for l in layers if l["name"] == "conv3_2")
    conv["blobs"][0] = conv["blobs"][0][:128]
    conv["blobs"][1] = conv["blobs"][1][:128]
    model = tmp_path / "m.caffemodel"
    model.write_bytes(caffe_model.encode_caffemodel(layers))
    with pytest.raises(weights.ConversionError,
                       match=r"conv3_2_weight has shape \(128, 256, 3, 3\), the network needs "
                             r"\(256, 256, 3, 3\)"):
        weights.convert_caffe(str(model), "vgg16", "BGR", expected=networks.pretrained_shapes(
            load_config()))


def _gluon_file(arch, tmp_path):
    from mxnet.gluon.model_zoo import vision
    net = {"vgg16": vision.vgg16, "resnet50": vision.resnet50_v1,
           "resnet101": vision.resnet101_v1}[arch]()
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(magnitude=2))
    net(mx.nd.zeros((1, 3, 224, 224)))
    for name, p in net.collect_params().items():   # non-trivial BN statistics
        if "running_var" in name:
            p.set_data(mx.nd.random.uniform(0.5, 2.0, p.shape))
        elif "running_mean" in name or "beta" in name or name.endswith("bias"):
            p.set_data(mx.nd.random.normal(0, 0.1, p.shape))
    path = str(tmp_path / (arch + ".params"))
    net.save_parameters(path)
    return net, path


@pytest.mark.slow
@pytest.mark.parametrize("arch,order", [("vgg16", "RGB"), ("resnet50", "BGR"),
                                        ("resnet101", "BGR")])
def test_gluon_features_match(tmp_path, arch, order):
    gluon_net, path = _gluon_file(arch, tmp_path)
    arg, aux, meta = weights.convert_gluon(path, arch, order)
    size = 65
    rng = np.random.RandomState(0)
    rgb = rng.rand(1, 3, size, size).astype(np.float32) * 255
    mean, std = np.array(weights.GLUON_MEAN_RGB), np.array(weights.GLUON_STD_RGB)
    gluon_in = (rgb / 255 - mean[None, :, None, None] / 255) / std[None, :, None, None]
    ours_in = rgb - np.array(meta["pixel_mean"] if order == "RGB" else meta["pixel_mean"][::-1]
                             )[None, :, None, None]
    if order == "BGR":
        ours_in = ours_in[:, ::-1]
    if arch == "vgg16":
        features = gluon_net.features[:31]            # through pool5
        sym = vgg16.vgg16_body(mx.sym.Variable("data"), vgg16.CLASSIFIER_POOLS,
                               convention="valid")
    else:
        features = gluon_net.features[:8]             # through stage 5 (res5c)
        sym = resnet.resnet_body(mx.sym.Variable("data"), int(arch[6:]), dilated=False)
    want = features(mx.nd.array(gluon_in)).asnumpy()
    args = {k: mx.nd.array(v) for k, v in arg.items() if k in sym.list_arguments()}
    args["data"] = mx.nd.array(np.ascontiguousarray(ours_in))
    auxs = {k: mx.nd.array(v) for k, v in aux.items()}
    assert set(sym.list_arguments()) == set(args)
    got = sym.bind(mx.cpu(), args, aux_states=auxs).forward()[0].asnumpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())


def test_decimated_fc6_and_fc7_are_the_documented_slices():
    rng = np.random.default_rng(0)
    zeros = np.zeros((4096, 512 * 7 * 7), np.float32)    # VGG16's shape; positions below
    assert vgg16.decimate_fc6(zeros, zeros[0, :4096])[0].shape == (1024, 512, 3, 3)
    w6, b6 = rng.random((4096, 8 * 7 * 7), np.float32), rng.random(4096, np.float32)
    d6, e6 = vgg16.decimate_fc6(w6, b6, channels=8)
    assert d6.shape == (1024, 8, 3, 3)
    full = w6.reshape(4096, 8, 7, 7)
    assert d6[5, 7, 1, 2] == full[20, 7, 3, 6] and e6[5] == b6[20]
    assert d6[1023, 0, 2, 0] == full[4092, 0, 6, 0] and e6[1023] == b6[4092]
    w7, b7 = rng.random((4096, 4096), np.float32), rng.random(4096, np.float32)
    d7, e7 = vgg16.decimate_fc7(w7, b7)
    assert d7.shape == (1024, 1024, 1, 1) and d7[3, 9, 0, 0] == w7[12, 36] and e7[3] == b7[12]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_malicious_pickle_is_refused(tmp_path):
    path = str(tmp_path / "evil.pickle.gz")
    with gzip.open(path, "wb") as f:
        f.write(pickle.dumps({"0_cues": _Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refused to load posix.system"):
        restricted_load(path)
    arrays = {"0_labels": np.array([3, 7]), "0_cues": np.zeros((3, 2), int)}
    ok = str(tmp_path / "ok.pickle")
    with open(ok, "wb") as f:
        pickle.dump(arrays, f, protocol=3)
    assert RestrictedUnpickler(open(ok, "rb")).load()["0_labels"].tolist() == [3, 7]


@pytest.mark.skipif(not os.path.isfile(os.path.join(SHARED, "localization_cues.pickle.gz")),
                    reason="the authors' cues are not in ../shared/sec_original")
def test_the_authors_cues_convert_exactly(tmp_path):
    out = str(tmp_path / "original_cues.npz")
    cue_set, labels = convert_original_cues(os.path.join(SHARED, "localization_cues.pickle.gz"),
                                            os.path.join(SHARED, "input_list.txt"), out)
    assert len(cue_set) == 10582
    table = restricted_load(os.path.join(SHARED, "localization_cues.pickle.gz"))
    loaded, size, loaded_labels = cues.load_cues(out, with_labels=True)
    assert size == 41 and len(loaded) == 10582
    with open(os.path.join(SHARED, "input_list.txt")) as f:
        names = [line.split() for line in f if line.strip()]
    for name, index in names:
        image_id = name[:-4]
        np.testing.assert_array_equal(loaded[image_id], table["%s_cues" % index])
        np.testing.assert_array_equal(loaded_labels[image_id], table["%s_labels" % index])
    one = loaded[names[0][0][:-4]]
    assert one[0].max() <= 20 and one[1].max() < 41 and one[2].max() < 41
    # one label per pixel in the authors' cues
    first = loaded[names[1][0][:-4]]
    assert len(set(zip(first[1], first[2]))) == first.shape[1]


@pytest.mark.slow                      # runs a script in a subprocess
def test_convert_script_writes_weights_that_training_accepts(tmp_path):
    import subprocess
    import sys
    from cores.checkpoint import CheckpointError, pretrained_params
    from tests.conftest import REPO
    model = tmp_path / "m.caffemodel"
    layers = _caffe_layers("vgg16", np.random.default_rng(0))
    model.write_bytes(caffe_model.encode_caffemodel(layers))
    proto = _prototxt([l for l in layers if l["name"] != "fc8"], tmp_path / "net.prototxt")
    models = tmp_path / "models"
    command = [sys.executable, os.path.join(REPO, "tools", "convert_weights.py"), "--caffe",
               str(model), "--prototxt", proto, "--set", "MODEL_PATH=%s" % models,
               "LOG_PATH=%s" % (tmp_path / "log")]
    out = subprocess.run(command + ["--strict"], capture_output=True, text=True)
    assert out.returncode == 1 and "does not define: fc8" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr and not models.exists()
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "skipping 1 layers" in out.stdout
    assert sorted(os.listdir(models)) == ["vgg16.json", "vgg16.params"]
    cfg = load_config(overrides=["MODEL_PATH=%s" % models])
    from cores import methods
    sym = methods.get("sec").symbol(cfg)
    shapes = {"data": (1, 3, 321, 321), "small_images": (1, 41, 41, 3), "labels": (1, 21),
              "cues": (1, 21, 41, 41)}
    arg, aux = pretrained_params(cfg, sym, shapes)
    assert "conv5_3_weight" in arg and "fc8_weight" not in arg
    with pytest.raises(CheckpointError, match="expects BGR input"):
        pretrained_params(load_config(overrides=["MODEL_PATH=%s" % models,
                                                 "CHANNEL_ORDER=RGB"]), sym, shapes)
    os.remove(models / "vgg16.params")
    with pytest.raises(CheckpointError, match="pretrained weights not found.*docs/weights.md"):
        pretrained_params(cfg, sym, shapes)


@pytest.mark.slow                      # runs a script in a subprocess
def test_cue_report_tool_reads_any_cue_file(toy_index, tmp_path):
    """tools/cue_report.py on a cue file in the authors' layout (one label per pixel)."""
    import json
    import subprocess
    import sys
    from cores.data.dataset import read_mask
    from cores.grid import grid_mask
    from tests.conftest import REPO
    cfg, index = toy_index
    table = {}
    for e in index["train"]:
        grid = grid_mask(read_mask(e["mask"]), 41)
        ys, xs = np.nonzero((grid > 0) & (grid < 255))
        table[e["id"]] = np.stack([grid[ys, xs], ys, xs])[:, ::7]
    path = str(tmp_path / "original_cues.npz")
    cues.save_cues(path, table, 41)
    cache = tmp_path / "cache"
    out = subprocess.run([sys.executable, os.path.join(REPO, "tools", "cue_report.py"), path,
                          "--vis", "2", "--set", "DATASET_PATH=%s" % cfg.DATASET_PATH,
                          "CLASS_NUM=5", "CACHE_PATH=%s" % cache, "LOG_PATH=%s" % (tmp_path / "l"),
                          "INPUT_SIZE=321"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    report = json.load(open(cache / "original_cues_report.json"))
    assert report["images"] == len(index["train"])
    assert report["fg_precision"] == 1.0            # cues taken from the masks themselves
    assert len(os.listdir(cache / "vis_original")) == 2
