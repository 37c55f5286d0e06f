"""Pretrained weights for MODEL_PATH from the files users have: Caffe ``.caffemodel`` (DeepLab's
VGG16 LargeFOV initialisation, the Caffe ResNet-50) and Gluon model-zoo ``vgg16`` /
``resnet50_v1`` parameter files. Output: ``{name: array}`` in the project's parameter names,
with the first convolution arranged for the configured input channel order, and a sidecar
recording that order and the pixel mean the weights expect."""
import logging

import numpy as np

from cores import backbones
from cores.caffe_model import read_caffemodel, prototxt_layers
from cores.errors import SECError

GLUON_MEAN_RGB = [0.485 * 255, 0.456 * 255, 0.406 * 255]
GLUON_STD_RGB = [0.229, 0.224, 0.225]
FIRST_CONV = {net: entry.first_conv for net, entry in backbones.BACKBONES.items()}


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
    mean_rgb = backbones.get(net).caffe_mean[::-1]
    meta = {"channel_order": channel_order, "pixel_mean": _mean_in(channel_order, mean_rgb),
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


def _gluon_net(model, path):
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision
    net = getattr(vision, model)()
    try:
        net.load_parameters(path, ctx=mx.cpu())
    except Exception as e:
        raise ConversionError("cannot load %s as Gluon %s parameters: %s"
                              % (path, model, e)) from None
    return net


def _fold_input_scale(arg, net, channel_order):
    """Gluon models expect (x/255 - mean)/std in RGB; the project feeds x - 255*mean, so the
    first convolution absorbs 1/(255*std) per input channel."""
    name = FIRST_CONV[net]
    scale = 1.0 / (255.0 * np.asarray(GLUON_STD_RGB, np.float32))
    arg[name] = arg[name] * scale[None, :, None, None]
    return _reorder_first_conv(arg, net, "RGB", channel_order)


def convert_gluon(path, net, channel_order):
    """(arg, aux, meta) from a Gluon model-zoo parameter file of the backbone ``net`` (its
    registry entry's gluon_model: ``vgg16``, ``resnet50_v1``, ``resnet101_v1``), converted by
    its networks' ``gluon_params``."""
    entry = backbones.get(net)
    arg, aux = backbones.networks(net).gluon_params(_gluon_net(entry.gluon_model, path))
    arg = _fold_input_scale(arg, net, channel_order)
    meta = {"channel_order": channel_order,
            "pixel_mean": _mean_in(channel_order, GLUON_MEAN_RGB), "source": "gluon"}
    return arg, aux, meta
