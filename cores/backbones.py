"""The registry of backbones: everything the rest of the code knows of a backbone without building
it (no MXNet here: the config validates BASE_NET and the backbone's options with it, and the
stage table computes the score grid from it). A new backbone is one entry here and, unless it
is a member of an existing family, its module under cores/symbols/.

An entry (``Backbone``) holds:

- ``name``: the BASE_NET value, also the name of its weights file (MODEL_PATH/<name>.params);
- ``family``, ``params``: the module cores/symbols/<family>.py and the keyword arguments of its
  ``Networks`` class (ResNet: ``depth``); the instance (``networks()``) builds its symbols;
- ``first_conv``: the weight of the first convolution, whose input channels CHANNEL_ORDER
  describes (what a converted weights file must contain, and what a converter reorders);
- ``options``: {config key: (default, choices)} of the keys that belong to this family alone;
- ``caffe_mean``: the BGR pixel mean of the family's Caffe weights, recorded with a conversion;
- ``gluon_model``: the Gluon model-zoo network whose weights convert to it (cores/weights.py);
- ``size_steps``: the layers that change the SEC network's grid, (kernel, stride, pad, rounding)
  with rounding 'pool' (POOLING_CONVENTION) or 'floor' (a convolution): ``score_size``.

The ``Networks`` class of a family (cores/symbols/vgg16.py, resnet.py) provides the SEC
network's scores (``sec_scores``) and the input of its CRF (``crf_unary``), the CAM body
(``cam_body``), the saliency classifier cut at its saliency layer (``saliency_scores``), the
layers pretraining trains (``pretrain_features``), and the conversion of its Gluon weights
(``gluon_params``)."""
import collections
import importlib

Backbone = collections.namedtuple(
    "Backbone", "name family params first_conv options caffe_mean gluon_model size_steps")

CAFFE_MEAN_BGR = (104.008, 116.669, 122.675)
# the earlier port's ResNet choices (docs/method.md section 8): no authors' version exists
RESNET_OPTIONS = {
    "RESNET_BN": ("frozen", ("frozen", "port")),             # port: scale/shift trained
    "RESNET_CAM_DILATION": (True, (True, False)),            # port: res4/res5 without dilation
    "RESNET_SALIENCY_LAYER": ("preact", ("preact", "relu")),  # preact: the VGG rule
    "RESNET_CRF_UNARY": ("scores", ("scores", "probs")),     # scores: method §5
}
# DeepLab-LargeFOV: pool1-3 3x3/2 pad 1 (321 -> 161 -> 81 -> 41)
VGG_STEPS = ((3, 2, 1, "pool"),) * 3
# conv1 7x7/2 pad 3, pool1 3x3/2 pad 1, res3a 1x1/2 (res4, res5 dilated at stride 1)
RESNET_STEPS = ((7, 2, 3, "floor"), (3, 2, 1, "pool"), (1, 2, 0, "floor"))


def _resnet(depth):
    return Backbone("resnet%d" % depth, "resnet", {"depth": depth}, "conv1_weight",
                    RESNET_OPTIONS, CAFFE_MEAN_BGR, "resnet%d_v1" % depth, RESNET_STEPS)


BACKBONES = {b.name: b for b in (
    Backbone("vgg16", "vgg16", {}, "conv1_1_weight", {}, CAFFE_MEAN_BGR, "vgg16", VGG_STEPS),
    _resnet(50), _resnet(101))}
NAMES = sorted(BACKBONES)


class BackboneError(ValueError):
    """A BASE_NET that no entry names."""


def get(name):
    """The entry of BASE_NET ``name``; an error listing the choices otherwise."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise BackboneError("unknown BASE_NET %r; choose one of %s" % (name, ", ".join(NAMES))) \
            from None


def options():
    """{key: (default, choices)} of every backbone's options (a key shared by a family once)."""
    out = {}
    for entry in BACKBONES.values():
        out.update(entry.options)
    return out


def networks(name):
    """The ``Networks`` instance that builds backbone ``name``'s symbols (imports MXNet)."""
    entry = get(name)
    module = importlib.import_module("cores.symbols." + entry.family)
    return module.Networks(**entry.params)


def pooled(size, kernel, stride, pad, rounding, convention="full"):
    """The side after one layer: Caffe's pooling rounds up (POOLING_CONVENTION full), MXNet's
    'valid' pooling and every convolution round down."""
    span = size + 2 * pad - kernel
    if rounding == "pool" and convention == "full":
        return -(-span // stride) + 1
    return span // stride + 1


def score_size(name, input_size, convention="full"):
    """Side of the SEC network's score map for an input side (41 for 321): the cue grid."""
    size = input_size
    for kernel, stride, pad, rounding in get(name).size_steps:
        size = pooled(size, kernel, stride, pad, rounding, convention)
    return size
