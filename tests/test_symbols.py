"""Network symbols: shapes at the full input size, parameter names, lr/wd multipliers."""
import mxnet as mx
import numpy as np
import pytest

from cores import backbones, methods
from cores.config import load_config
from cores.symbols import networks

SEC = methods.get("sec")

VGG16_SEC_PARAMS = """
    conv1_1_weight conv1_1_bias conv1_2_weight conv1_2_bias
    conv2_1_weight conv2_1_bias conv2_2_weight conv2_2_bias
    conv3_1_weight conv3_1_bias conv3_2_weight conv3_2_bias conv3_3_weight conv3_3_bias
    conv4_1_weight conv4_1_bias conv4_2_weight conv4_2_bias conv4_3_weight conv4_3_bias
    conv5_1_weight conv5_1_bias conv5_2_weight conv5_2_bias conv5_3_weight conv5_3_bias
    fc6_weight fc6_bias fc7_weight fc7_bias fc8_weight fc8_bias
""".split()

# Caffe ResNet-50 names (conv1 has a bias; residual convolutions have none), then the head.
RESNET50_SEC_PARAMS = """
    conv1_weight conv1_bias bn_conv1_gamma bn_conv1_beta res2a_branch1_weight bn2a_branch1_gamma
    bn2a_branch1_beta res2a_branch2a_weight bn2a_branch2a_gamma bn2a_branch2a_beta
    res2a_branch2b_weight bn2a_branch2b_gamma bn2a_branch2b_beta res2a_branch2c_weight
    bn2a_branch2c_gamma bn2a_branch2c_beta res2b_branch2a_weight bn2b_branch2a_gamma
    bn2b_branch2a_beta res2b_branch2b_weight bn2b_branch2b_gamma bn2b_branch2b_beta
    res2b_branch2c_weight bn2b_branch2c_gamma bn2b_branch2c_beta res2c_branch2a_weight
    bn2c_branch2a_gamma bn2c_branch2a_beta res2c_branch2b_weight bn2c_branch2b_gamma
    bn2c_branch2b_beta res2c_branch2c_weight bn2c_branch2c_gamma bn2c_branch2c_beta
    res3a_branch1_weight bn3a_branch1_gamma bn3a_branch1_beta res3a_branch2a_weight
    bn3a_branch2a_gamma bn3a_branch2a_beta res3a_branch2b_weight bn3a_branch2b_gamma
    bn3a_branch2b_beta res3a_branch2c_weight bn3a_branch2c_gamma bn3a_branch2c_beta
    res3b_branch2a_weight bn3b_branch2a_gamma bn3b_branch2a_beta res3b_branch2b_weight
    bn3b_branch2b_gamma bn3b_branch2b_beta res3b_branch2c_weight bn3b_branch2c_gamma
    bn3b_branch2c_beta res3c_branch2a_weight bn3c_branch2a_gamma bn3c_branch2a_beta
    res3c_branch2b_weight bn3c_branch2b_gamma bn3c_branch2b_beta res3c_branch2c_weight
    bn3c_branch2c_gamma bn3c_branch2c_beta res3d_branch2a_weight bn3d_branch2a_gamma
    bn3d_branch2a_beta res3d_branch2b_weight bn3d_branch2b_gamma bn3d_branch2b_beta
    res3d_branch2c_weight bn3d_branch2c_gamma bn3d_branch2c_beta res4a_branch1_weight
    bn4a_branch1_gamma bn4a_branch1_beta res4a_branch2a_weight bn4a_branch2a_gamma
    bn4a_branch2a_beta res4a_branch2b_weight bn4a_branch2b_gamma bn4a_branch2b_beta
    res4a_branch2c_weight bn4a_branch2c_gamma bn4a_branch2c_beta res4b_branch2a_weight
    bn4b_branch2a_gamma bn4b_branch2a_beta res4b_branch2b_weight bn4b_branch2b_gamma
    bn4b_branch2b_beta res4b_branch2c_weight bn4b_branch2c_gamma bn4b_branch2c_beta
    res4c_branch2a_weight bn4c_branch2a_gamma bn4c_branch2a_beta res4c_branch2b_weight
    bn4c_branch2b_gamma bn4c_branch2b_beta res4c_branch2c_weight bn4c_branch2c_gamma
    bn4c_branch2c_beta res4d_branch2a_weight bn4d_branch2a_gamma bn4d_branch2a_beta
    res4d_branch2b_weight bn4d_branch2b_gamma bn4d_branch2b_beta res4d_branch2c_weight
    bn4d_branch2c_gamma bn4d_branch2c_beta res4e_branch2a_weight bn4e_branch2a_gamma
    bn4e_branch2a_beta res4e_branch2b_weight bn4e_branch2b_gamma bn4e_branch2b_beta
    res4e_branch2c_weight bn4e_branch2c_gamma bn4e_branch2c_beta res4f_branch2a_weight
    bn4f_branch2a_gamma bn4f_branch2a_beta res4f_branch2b_weight bn4f_branch2b_gamma
    bn4f_branch2b_beta res4f_branch2c_weight bn4f_branch2c_gamma bn4f_branch2c_beta
    res5a_branch1_weight bn5a_branch1_gamma bn5a_branch1_beta res5a_branch2a_weight
    bn5a_branch2a_gamma bn5a_branch2a_beta res5a_branch2b_weight bn5a_branch2b_gamma
    bn5a_branch2b_beta res5a_branch2c_weight bn5a_branch2c_gamma bn5a_branch2c_beta
    res5b_branch2a_weight bn5b_branch2a_gamma bn5b_branch2a_beta res5b_branch2b_weight
    bn5b_branch2b_gamma bn5b_branch2b_beta res5b_branch2c_weight bn5b_branch2c_gamma
    bn5b_branch2c_beta res5c_branch2a_weight bn5c_branch2a_gamma bn5c_branch2a_beta
    res5c_branch2b_weight bn5c_branch2b_gamma bn5c_branch2b_beta res5c_branch2c_weight
    bn5c_branch2c_gamma bn5c_branch2c_beta fc6_weight fc6_bias fc7_weight fc7_bias fc8_weight
    fc8_bias
""".split()

SIZES = [(321, "full", 41), (320, "valid", 40)]


def _cfg(net, size=321, convention="full", **extra):
    overrides = ["BASE_NET=" + net, "INPUT_SIZE=%d" % size, "POOLING_CONVENTION=" + convention]
    return load_config(overrides=overrides + ["%s=%s" % kv for kv in extra.items()])


@pytest.mark.parametrize("net", backbones.NAMES)
@pytest.mark.parametrize("size,convention,out", SIZES)
def test_shapes_at_full_size(net, size, convention, out):
    cfg = _cfg(net, size, convention)
    data = (2, 3, size, size)
    scores = networks.sec_scores(cfg, mx.sym.Variable("data"))
    assert scores.infer_shape(data=data)[1] == [(2, 21, out, out)]
    assert networks.sec_infer_symbol(cfg).infer_shape(data=data)[1] == [(2, 21, out, out)]
    train = SEC.symbol(cfg)
    assert train.list_outputs() == ["seed_loss_output", "expand_loss_output",
                                     "constrain_loss_output"]
    _, outs, _ = train.infer_shape(data=data, small_images=(2, out, out, 3), labels=(2, 21),
                                   cues=(2, 21, out, out))
    assert outs == [(1,), (1,), (1,)]
    assert networks.cam_symbol(cfg).infer_shape(data=data)[1] == [(2, 20, out, out)]
    assert networks.cam_train_symbol(cfg).infer_shape(data=data, label=(2, 20))[1] == [(2, 20)]
    assert networks.saliency_train_symbol(cfg).infer_shape(
        data=data, label=(2, 20))[1] == [(2, 20)]
    front, back = networks.saliency_parts(cfg)
    (preact,) = front.infer_shape(data=data)[1]
    assert preact == (2, 512, out, out)
    assert back.infer_shape(saliency_input=preact)[1] == [(2, 20)]


def test_saliency_layer_is_the_pre_activation():
    """VGG16: the cut is conv4_1's convolution output, before its ReLU (method §3)."""
    front, back = networks.saliency_parts(_cfg("vgg16"))
    assert front.name == "conv4_1"
    assert "data" not in back.list_arguments()
    assert set(back.list_arguments()) - {"saliency_input"} <= set(
        networks.saliency_train_symbol(_cfg("vgg16")).list_arguments())


def _dropouts(sym):
    return sorted(n[:-len("_output")] for n in sym.get_internals().list_outputs()
                  if n.startswith("drop") and n.endswith("_output"))


def test_saliency_dropout_in_training_only():
    """The authors' saliency network: dropout 0.5 after fc6 and fc7 in training, none when
    the cues are extracted (its gradient is taken in training mode); the port: none."""
    cfg = _cfg("vgg16")
    assert _dropouts(networks.saliency_train_symbol(cfg)) == ["drop_fc6_saliency",
                                                             "drop_fc7_saliency"]
    front, back = networks.saliency_parts(cfg)
    assert _dropouts(front) == [] and _dropouts(back) == []
    port = type(cfg)(cfg, SALIENCY_DROPOUT=False)
    assert _dropouts(networks.saliency_train_symbol(port)) == []


def _resnet101_params():
    """ResNet-101's Caffe names: res3a, res3b1..res3b3, res4a, res4b1..res4b22 (letters in res2
    and res5), as in the ResNet50 list."""
    names = RESNET50_SEC_PARAMS[:RESNET50_SEC_PARAMS.index("res3a_branch1_weight")]
    blocks = {3: ["a", "b1", "b2", "b3"], 4: ["a"] + ["b%d" % i for i in range(1, 23)],
              5: ["a", "b", "c"]}
    for stage, letters in blocks.items():
        for b in letters:
            for branch in (["branch1"] if b == "a" else []) + ["branch2a", "branch2b",
                                                                "branch2c"]:
                names += ["res%d%s_%s_weight" % (stage, b, branch),
                          "bn%d%s_%s_gamma" % (stage, b, branch),
                          "bn%d%s_%s_beta" % (stage, b, branch)]
    return names + RESNET50_SEC_PARAMS[-6:]


@pytest.mark.parametrize("net,expected", [("vgg16", VGG16_SEC_PARAMS),
                                          ("resnet50", RESNET50_SEC_PARAMS),
                                          ("resnet101", _resnet101_params())])
def test_sec_parameter_names(net, expected):
    sym = networks.sec_scores(_cfg(net), mx.sym.Variable("data"))
    assert sym.list_arguments() == ["data"] + expected
    if net.startswith("resnet"):
        bns = [n[: -len("_gamma")] for n in expected if n.endswith("_gamma")]
        assert sym.list_auxiliary_states() == [
            "%s_%s" % (b, s) for b in bns for s in ("moving_mean", "moving_var")]


def _mults(sym):
    attrs = sym.attr_dict()
    return {n: (float(attrs[n]["__lr_mult__"]), float(attrs[n].get("__wd_mult__", 1)))
            for n in sym.list_arguments() if n in attrs and "__lr_mult__" in attrs[n]}


def test_vgg16_lr_multipliers():
    mults = _mults(networks.sec_scores(_cfg("vgg16"), mx.sym.Variable("data")))
    for name in VGG16_SEC_PARAMS:
        new = name.startswith("fc8")
        if name.endswith("_weight"):
            assert mults[name] == ((10.0, 1.0) if new else (1.0, 1.0)), name
        else:
            assert mults[name] == ((20.0, 0.0) if new else (2.0, 0.0)), name
    assert networks.new_param_names(
        networks.sec_scores(_cfg("vgg16"), mx.sym.Variable("data"))) == {"fc8_weight",
                                                                          "fc8_bias"}


def test_resnet50_multipliers_freeze_batchnorm_and_boost_the_head():
    mults = _mults(networks.sec_scores(_cfg("resnet50"), mx.sym.Variable("data")))
    assert mults["bn3a_branch2b_gamma"] == (0.0, 0.0)
    assert mults["bn3a_branch2b_beta"] == (0.0, 0.0)
    assert mults["res3a_branch2b_weight"] == (1.0, 1.0)
    assert mults["conv1_bias"] == (2.0, 0.0)
    for head in ("fc6", "fc7", "fc8"):
        assert mults[head + "_weight"] == (10.0, 1.0)
        assert mults[head + "_bias"] == (20.0, 0.0)


def test_cue_network_heads_are_new_and_scores_has_no_bias():
    cam = networks.cam_train_symbol(_cfg("vgg16"))
    assert "scores_weight" in cam.list_arguments() and "scores_bias" not in cam.list_arguments()
    assert networks.new_param_names(cam) == {"fc6_CAM_weight", "fc6_CAM_bias", "fc7_CAM_weight",
                                             "fc7_CAM_bias", "scores_weight"}
    sal = networks.saliency_train_symbol(_cfg("vgg16"))
    assert {n for n in sal.list_arguments() if n.endswith("saliency_weight")} == {
        "fc6_saliency_weight", "fc7_saliency_weight", "fc8_saliency_weight"}


def test_width_mult_scales_channels_only():
    full = networks.sec_scores(_cfg("vgg16"), mx.sym.Variable("data"))
    small = networks.sec_scores(_cfg("vgg16", WIDTH_MULT=0.125), mx.sym.Variable("data"))
    assert full.list_arguments() == small.list_arguments()
    shapes = dict(zip(small.list_arguments(), small.infer_shape(data=(1, 3, 321, 321))[0]))
    assert shapes["conv1_1_weight"] == (8, 3, 3, 3)
    assert shapes["fc6_weight"] == (128, 64, 3, 3)
    assert shapes["fc8_weight"] == (21, 128, 1, 1)
    assert small.infer_shape(data=(1, 3, 321, 321))[1] == [(1, 21, 41, 41)]


def test_cam_maps_are_the_class_weighted_sum_of_fc7():
    cfg = _cfg("vgg16", 65, WIDTH_MULT=0.0625, CLASS_NUM=4)
    cam = networks.cam_symbol(cfg)
    fc7 = cam.get_internals()["fc7_CAM_output"]
    both = mx.sym.Group([cam, fc7])
    arg_shapes, _, _ = both.infer_shape(data=(1, 3, 65, 65))
    rng = np.random.RandomState(0)
    args = {n: mx.nd.array(rng.randn(*s) * 0.1) for n, s in zip(both.list_arguments(), arg_shapes)}
    maps, feat = [o.asnumpy() for o in both.bind(mx.cpu(), args).forward()]
    weight = args["scores_weight"].asnumpy()
    np.testing.assert_allclose(maps[0], np.einsum("ck,khw->chw", weight, feat[0]), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("net", backbones.NAMES)
@pytest.mark.parametrize("recipe", ["default", "port"])
def test_both_recipes_shape_infer_at_full_size(net, recipe):
    """The default (authors') and the port's recipe, each at its full input size."""
    import os
    from tests.conftest import REPO
    files = [os.path.join(REPO, "configs", "port.yaml")] if recipe == "port" else []
    cfg = load_config(files, ["BASE_NET=" + net])
    out = 40 if recipe == "port" else 41
    data = (1, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE)
    assert networks.sec_scores(cfg, mx.sym.Variable("data")).infer_shape(data=data)[1] == [
        (1, 21, out, out)]
    _, outs, _ = SEC.symbol(cfg).infer_shape(
        data=data, small_images=(1, out, out, 3), labels=(1, 21), cues=(1, 21, out, out))
    assert outs == [(1,), (1,), (1,)]
    assert networks.cam_symbol(cfg).infer_shape(data=data)[1] == [(1, 20, out, out)]
    front, back = networks.saliency_parts(cfg)
    (feature,) = front.infer_shape(data=data)[1]
    assert back.infer_shape(saliency_input=feature)[1] == [(1, 20)]


def _init_sigma(sym, name):
    import json
    kind, params = json.loads(sym.attr_dict()[name]["__init__"])
    assert kind == "normal"
    return params["sigma"]


@pytest.mark.parametrize("width", [1.0, 0.125])
def test_new_layers_keep_the_full_networks_signal_scale(width):
    """New layers start at std 0.01 at full width and 0.01 / sqrt(WIDTH_MULT) when narrowed,
    so that a narrow network's new layers pass on the full network's signal scale (docs/method.md,
    section 7); pretrained layers carry no initialiser of their own."""
    cfg = _cfg("vgg16", WIDTH_MULT=width)
    for sym, names in ((networks.cam_train_symbol(cfg), ["fc6_CAM_weight", "fc7_CAM_weight",
                                                         "scores_weight"]),
                       (networks.saliency_train_symbol(cfg), ["fc8_saliency_weight"]),
                       (SEC.symbol(cfg), ["fc8_weight"])):
        for name in names:
            assert _init_sigma(sym, name) == pytest.approx(0.01 / np.sqrt(width)), name
        assert "__init__" not in sym.attr_dict().get("conv1_1_weight", {})


def _cam_score_std(width, sigma):
    """Std of the CAM head's class scores at init, for unit-scale ReLU features."""
    from cores.symbols import heads
    _, scores = heads.cam_head(mx.sym.Variable("feature"), 20, width_mult=width)
    channels = int(round(512 * width))
    ex = scores.simple_bind(mx.cpu(), feature=(4, channels, 16, 16), grad_req="null")
    mx.random.seed(0)
    rng = np.random.RandomState(0)
    for name, arr in ex.arg_dict.items():
        if name == "feature":
            arr[:] = np.abs(rng.randn(*arr.shape))
        elif name.endswith("weight"):
            mx.init.Normal(sigma)(mx.init.InitDesc(name), arr)
        else:
            arr[:] = 0
    return float(ex.forward()[0].asnumpy().std())


def test_narrow_cam_head_starts_as_strong_as_the_full_one():
    full = _cam_score_std(1.0, 0.01)
    scaled = _cam_score_std(0.125, 0.01 / np.sqrt(0.125))
    fixed = _cam_score_std(0.125, 0.01)                      # the former init
    assert 0.5 < scaled / full < 2.0
    assert fixed / full < 0.1


@pytest.mark.parametrize("net,blocks", [("resnet50", 16), ("resnet101", 33)])
def test_pretraining_trains_what_imagenet_weights_give(net, blocks):
    """VGG16: every layer up to fc7 (DeepLab's file has them); a ResNet: the body only, its SEC
    head (fc6, fc7) being new as with real ImageNet weights."""
    vgg = networks.classifier_train_symbol(_cfg("vgg16")).list_arguments()
    res = networks.classifier_train_symbol(_cfg(net)).list_arguments()
    assert "fc7_weight" in vgg and "conv5_3_weight" in vgg
    assert "res5c_branch2c_weight" in res and "bn5c_branch2c_gamma" in res
    assert not any(n.startswith(("fc6", "fc7", "fc8")) for n in res)
    assert "pretrain_scores_weight" in vgg and "pretrain_scores_weight" in res
    # from scratch, each residual branch's last BatchNorm scale starts at 0 (the block is the
    # identity): without it the ResNet50 stand-in pretraining stayed at chance
    attrs = networks.classifier_train_symbol(_cfg(net)).attr_dict()
    zero = sorted(n for n, a in attrs.items() if n.endswith("_gamma")
                  and a.get("__init__", "").startswith('["zero"'))
    assert len(zero) == blocks and all(n.endswith("_branch2c_gamma") for n in zero)
    sec = SEC.symbol(_cfg(net)).attr_dict()
    assert "__init__" not in sec.get("bn2a_branch2c_gamma", {})


def _attrs(sym, name):
    return sym.attr_dict().get(name, {})


def test_resnet50_port_switches():
    """The port's ResNet50 choices: BatchNorm scale/shift trained with eps 1.001e-5, a CAM body
    without dilation, the saliency cut after res3b's ReLU, the CRF fed probabilities."""
    default, port = _cfg("resnet50"), _cfg("resnet50", RESNET_BN="port",
                                           RESNET_CAM_DILATION=False, RESNET_SALIENCY_LAYER="relu",
                                           RESNET_CRF_UNARY="probs")
    sym = networks.sec_scores(port, mx.sym.Variable("data"))
    assert (_attrs(sym, "bn2a_branch2a_gamma")["__lr_mult__"],
            _attrs(sym, "bn2a_branch2a_beta")["__lr_mult__"]) == ("1.0", "2.0")
    assert float(_attrs(sym, "bn2a_branch2a")["eps"]) == pytest.approx(1.001e-5)
    frozen = networks.sec_scores(default, mx.sym.Variable("data"))
    assert _attrs(frozen, "bn2a_branch2a_gamma")["__lr_mult__"] == "0.0"
    assert float(_attrs(frozen, "bn2a_branch2a")["eps"]) == pytest.approx(1e-5)
    cam_port, cam = networks.cam_symbol(port), networks.cam_symbol(default)
    assert _attrs(cam_port, "res5a_branch2b")["dilate"] == "(1, 1)"
    assert _attrs(cam, "res5a_branch2b")["dilate"] == "(4, 4)"
    assert networks.saliency_parts(port)[0].name == "res3b_relu"
    assert networks.saliency_parts(default)[0].name != "res3b_relu"
    deeper = _cfg("resnet101", RESNET_SALIENCY_LAYER="relu")     # res3's second block: res3b1
    assert networks.saliency_parts(deeper)[0].name == "res3b1_relu"

    def crf_input(cfg):
        return SEC.symbol(cfg).get_internals()["crf_output"].get_children()[0]
    assert crf_input(default).name == "fc8"                  # the scores (method §5)
    assert crf_input(port).name.startswith("broadcast_div")  # softmax_with_floor's output


def _symmetric_scores(cfg, x):
    """SEC's scores for ``x`` with every weight a positive constant (a left-right symmetric
    network), BatchNorm the identity."""
    sym = networks.sec_scores(cfg, mx.sym.Variable("data"), dropout=False)
    shapes, _, aux_shapes = sym.infer_shape(data=x.shape)
    args = {n: mx.nd.ones(s) / np.prod(s[1:]) if n.endswith("weight")
            else (mx.nd.ones(s) if n.endswith("gamma") else mx.nd.zeros(s))
            for n, s in zip(sym.list_arguments(), shapes) if n != "data"}
    args["data"] = mx.nd.array(x)
    aux = {n: mx.nd.ones(s) if n.endswith("var") else mx.nd.zeros(s)
           for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    return sym.bind(mx.cpu(), args, aux_states=aux, grad_req="null").forward()[0].asnumpy()


@pytest.mark.parametrize("net", backbones.NAMES)
@pytest.mark.parametrize("size,convention,aligned", [(321, "full", True), (121, "full", True),
                                                     (320, "valid", False)])
def test_score_grid_is_corner_aligned_with_the_input(net, size, convention, aligned):
    """Cell i of the n-cell score grid sits on input pixel 8i, the last on the last pixel, so
    the corner-aligned upsampling of the authors' test time (method §6) is its exact inverse:
    a symmetric network then commutes with mirroring. The port's 320 input with floor pooling
    (40 cells, 8 x 39 = 312 < 319) does not."""
    cfg = _cfg(net, size, convention, WIDTH_MULT=0.125, CLASS_NUM=2)
    x = np.random.RandomState(0).rand(1, 3, size, size).astype(np.float32)
    scores = _symmetric_scores(cfg, x)
    mirrored = _symmetric_scores(cfg, x[..., ::-1].copy())
    n = scores.shape[-1]
    error = np.abs(scores[..., ::-1] - mirrored).max() / np.abs(scores).max()
    if aligned:
        assert 8 * (n - 1) == size - 1
        assert error < 1e-4
    else:
        assert error > 1e-3
