"""Pretrained weights for MODEL_PATH from the files users have: Caffe ``.caffemodel`` (DeepLab's
VGG16 LargeFOV initialisation, the Caffe ResNet-50) and Gluon model-zoo ``vgg16`` /
``resnet50_v1`` parameter files. Output: ``{name: array}`` in the project's parameter names,
with the first convolution arranged for the configured input channel order, and a sidecar
recording that order and the pixel mean the weights expect."""
import logging

import numpy as np

from cores.caffe_model import read_caffemodel, prototxt_layers
from cores.symbols import vgg16 as vgg16_symbols
from cores.backbones import BACKBONES
from cores.errors import SECError

CAFFE_MEAN_BGR = [104.008, 116.669, 122.675]
GLUON_MEAN_RGB = [0.485 * 255, 0.456 * 255, 0.406 * 255]
GLUON_STD_RGB = [0.229, 0.224, 0.225]
FIRST_CONV = {net: entry["first_conv"] for net, entry in BACKBONES.items()}


class ConversionError(SECError, ValueError):
    """A weights file that cannot be converted; the message says why."""


def _reorder_first_conv(arg, net, source_order, channel_order):
    """Permute the first convolution's input channels from ``source_order`` to the config's."""
    name = FIRST_CONV[net]
    if source_order != channel_order:
        arg[name] = np.ascontiguousarray(arg[name][:, ::-1])
    return arg


def _mean_in(order, mean_rgb):
    return list(mean_rgb) if order == "RGB" else list(mean_rgb[::-1])


def _names(items, limit=8):
    items = list(items)
    return ", ".join(items[:limit]) + (" (and %d more)" % (len(items) - limit)
                                       if len(items) > limit else "")


def convert_caffe(caffemodel, net, channel_order, prototxt=None, strict=False, expected=None):
    """(arg, aux, meta) from a caffemodel. Convolution/InnerProduct blobs keep their layer
    names; a BatchNorm's mean and variance are divided by its moving-average factor and the
    Scale layer that reads its output gives gamma and beta (Caffe's BatchNorm+Scale pairs).
    Layers that ``prototxt`` does not define, and arrays that no network uses (``expected``,
    networks.pretrained_shapes: {name: shape}), are listed and left out (an ImageNet fc8, a
    DeepLab file's extra heads); ``strict`` refuses them instead. An array that a network uses
    with another shape is always an error naming it."""
    layers = read_caffemodel(caffemodel)
    if prototxt:
        named = {name for name, _ in prototxt_layers(prototxt)}
        extra = [l["name"] for l in layers if l["name"] not in named]
        if extra and strict:
            raise ConversionError("%s has layers that %s does not define: %s (leave out "
                                  "--strict to skip them)" % (caffemodel, prototxt,
                                                              _names(extra)))
        if extra:
            logging.warning("skipping %d layers of %s that %s does not define: %s", len(extra),
                            caffemodel, prototxt, _names(extra))
            layers = [l for l in layers if l["name"] in named]
    arg, aux = {}, {}
    bn_by_top = {l["top"][0]: l for l in layers if l["type"] == "BatchNorm" and l["top"]}
    for layer in layers:
        name, kind, blobs = layer["name"], layer["type"], layer["blobs"]
        if kind in ("Convolution", "InnerProduct"):
            weight = blobs[0]
            if kind == "InnerProduct" and weight.ndim == 4 and weight.shape[:2] == (1, 1):
                weight = weight[0, 0]              # V1 files: (1, 1, out, in)
            arg[name + "_weight"] = weight
            if len(blobs) > 1:
                arg[name + "_bias"] = blobs[1].reshape(-1)
        elif kind == "BatchNorm":
            factor = float(blobs[2].ravel()[0]) if len(blobs) > 2 else 1.0
            scale = 0.0 if factor == 0 else 1.0 / factor
            aux[name + "_moving_mean"] = blobs[0].reshape(-1) * scale
            aux[name + "_moving_var"] = blobs[1].reshape(-1) * scale
        elif kind == "Scale":
            bn = bn_by_top.get(layer["bottom"][0]) if layer["bottom"] else None
            if bn is None:
                raise ConversionError("%s: Scale layer %s does not follow a BatchNorm layer"
                                      % (caffemodel, name))
            arg[bn["name"] + "_gamma"] = blobs[0].reshape(-1)
            arg[bn["name"] + "_beta"] = (blobs[1].reshape(-1) if len(blobs) > 1
                                         else np.zeros_like(blobs[0].reshape(-1)))
        else:
            logging.info("skipping %s layer %s", kind, name)
    if FIRST_CONV[net] not in arg:
        raise ConversionError("%s has no %s: not a %s model" % (caffemodel, FIRST_CONV[net][:-7],
                                                               net))
    if expected is not None:
        arg, aux = keep_used(caffemodel, arg, aux, expected, strict)
    arg = _reorder_first_conv(arg, net, "BGR", channel_order)
    meta = {"channel_order": channel_order, "pixel_mean": _mean_in(channel_order,
                                                                   CAFFE_MEAN_BGR[::-1]),
            "source": "caffe"}
    return arg, aux, meta


def keep_used(source, arg, aux, expected, strict=False):
    """``arg``/``aux`` without the arrays that no network uses (listed; refused if
    ``strict``); an array a network uses with another shape is an error naming it."""
    wrong = ["%s has shape %s, the network needs %s" % (k, tuple(v.shape), expected[k])
             for d in (arg, aux) for k, v in d.items()
             if k in expected and tuple(v.shape) != tuple(expected[k])]
    if wrong:
        raise ConversionError("%s does not fit the network: %s" % (source, _names(wrong, 4)))
    unused = sorted(k for d in (arg, aux) for k in d if k not in expected)
    if unused and strict:
        raise ConversionError("%s has arrays that no network uses: %s (leave out --strict to "
                              "skip them)" % (source, _names(unused)))
    if unused:
        logging.warning("skipping %d arrays of %s that no network uses: %s", len(unused), source,
                        _names(unused))
    return ({k: v for k, v in arg.items() if k in expected},
            {k: v for k, v in aux.items() if k in expected})


def decimate_fc6(weight, bias, channels=512):
    """DeepLab-LargeFOV's fc6 from VGG16's fully connected fc6 (4096 x 512*7*7): every 4th
    output and every 3rd kernel row and column -> 1024 x 512 x 3 x 3 (the 3x3 kernel then
    runs with dilation 12)."""
    w = np.asarray(weight).reshape(-1, channels, 7, 7)
    return np.ascontiguousarray(w[::4, :, ::3, ::3]), np.asarray(bias)[::4]


def decimate_fc7(weight, bias):
    """fc7 4096 x 4096 -> 1024 x 1024 x 1 x 1: every 4th output and every 4th input."""
    w = np.asarray(weight)[::4, ::4]
    return np.ascontiguousarray(w.reshape(w.shape[0], w.shape[1], 1, 1)), np.asarray(bias)[::4]


def _gluon_net(arch, path):
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision
    net = {"vgg16": vision.vgg16, "resnet50": vision.resnet50_v1}[arch]()
    try:
        net.load_parameters(path, ctx=mx.cpu())
    except Exception as e:
        raise ConversionError("cannot load %s as Gluon %s parameters: %s"
                              % (path, "vgg16" if arch == "vgg16" else "resnet50_v1", e)) \
            from None
    return net


def _fold_input_scale(arg, net, channel_order):
    """Gluon models expect (x/255 - mean)/std in RGB; the project feeds x - 255*mean, so the
    first convolution absorbs 1/(255*std) per input channel."""
    name = FIRST_CONV[net]
    scale = 1.0 / (255.0 * np.asarray(GLUON_STD_RGB, np.float32))
    arg[name] = arg[name] * scale[None, :, None, None]
    return _reorder_first_conv(arg, net, "RGB", channel_order)


def convert_gluon(path, net, channel_order):
    """(arg, aux, meta) from a Gluon model-zoo parameter file (``vgg16`` or ``resnet50_v1``)."""
    from mxnet.gluon import nn
    model = _gluon_net(net, path)
    arg, aux = {}, {}
    if net == "vgg16":
        convs = [b for b in model.features if isinstance(b, nn.Conv2D)]
        dense = [b for b in model.features if isinstance(b, nn.Dense)]
        names = ["%s_%d" % (prefix, i) for prefix, widths in vgg16_symbols.STAGES
                 for i in range(1, len(widths) + 1)]
        for name, conv in zip(names, convs):
            arg[name + "_weight"] = conv.weight.data().asnumpy()
            arg[name + "_bias"] = conv.bias.data().asnumpy()
        arg["fc6_weight"], arg["fc6_bias"] = decimate_fc6(dense[0].weight.data().asnumpy(),
                                                          dense[0].bias.data().asnumpy())
        arg["fc7_weight"], arg["fc7_bias"] = decimate_fc7(dense[1].weight.data().asnumpy(),
                                                          dense[1].bias.data().asnumpy())
    else:
        features = list(model.features)
        arg["conv1_weight"] = features[0].weight.data().asnumpy()
        arg["conv1_bias"] = np.zeros(arg["conv1_weight"].shape[0], np.float32)
        _gluon_bn(features[1], "bn_conv1", None, arg, aux)
        for stage, blocks in zip((2, 3, 4, 5), features[4:8]):
            for b, block in enumerate(blocks):
                name = "%d%s" % (stage, "abcdef"[b])
                body = [layer for layer in block.body if not isinstance(layer, nn.Activation)]
                for branch, (conv, bn) in zip(("2a", "2b", "2c"), zip(body[::2], body[1::2])):
                    _gluon_conv_bn(conv, bn, "%s_branch%s" % (name, branch), arg, aux)
                if block.downsample is not None:
                    conv, bn = list(block.downsample)
                    _gluon_conv_bn(conv, bn, "%s_branch1" % name, arg, aux)
    arg = _fold_input_scale(arg, net, channel_order)
    meta = {"channel_order": channel_order,
            "pixel_mean": _mean_in(channel_order, GLUON_MEAN_RGB), "source": "gluon"}
    return arg, aux, meta


def _gluon_conv_bn(conv, bn, suffix, arg, aux):
    arg["res%s_weight" % suffix] = conv.weight.data().asnumpy()
    bias = conv.bias.data().asnumpy() if conv.bias is not None else None
    _gluon_bn(bn, "bn" + suffix, bias, arg, aux)


def _gluon_bn(bn, name, conv_bias, arg, aux):
    """BatchNorm parameters; a convolution bias before it is folded into the running mean
    (BN(z + b) with mean m equals BN(z) with mean m - b), since Caffe's convolutions have none."""
    arg[name + "_gamma"] = bn.gamma.data().asnumpy()
    arg[name + "_beta"] = bn.beta.data().asnumpy()
    mean = bn.running_mean.data().asnumpy()
    aux[name + "_moving_mean"] = mean - conv_bias if conv_bias is not None else mean
    aux[name + "_moving_var"] = bn.running_var.data().asnumpy()
