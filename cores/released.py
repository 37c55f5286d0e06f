"""The released trained SEC networks as this project's snapshots: the authors' Caffe model
(deploy.prototxt, classifier ``fc8-SEC``) and the earlier MXNet port's snapshots
(``SEC_vgg16-8.params``, ``SEC_resnet50-8.params``: ``arg:``/``aux:`` keys, classifier
``fc8_SEC``; the ResNet50 head ``new_conv1`` and ``fc``). A converted file is a snapshot of the
``sec`` method with the config it must run with stored in it (the authors': input 321, BGR,
mean 104/117/123; the port's: configs/port.yaml, input 320, RGB, mean 123/117/104), so that
``eval.py`` evaluates it as a trained run of its own."""
import logging
import os
import re

import numpy as np

from cores import checkpoint, methods, stages
from cores.errors import SECError

# the port's names of the layers this project names otherwise
PORT_NAMES = {"fc8_SEC": "fc8", "new_conv1": "fc6", "fc": "fc7"}
CAFFE_NAMES = {"fc8-SEC": "fc8", "fc8_SEC": "fc8"}
AUTHORS = {"CHANNEL_ORDER": "BGR", "PIXEL_MEAN": [104.0, 117.0, 123.0]}
PORT_RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "configs", "port.yaml")


class ReleasedModelError(SECError, ValueError):
    """A trained model that is not the network the config describes; the message names the
    layers and their shapes."""


def _renamed(arrays, names):
    """{our name: (array, its name in the file)} with the layers of ``names`` renamed."""
    out = {}
    for key, value in arrays.items():
        layer, sep, suffix = key.rpartition("_")
        ours = names.get(layer, layer) + sep + suffix if sep else key
        out[ours] = (value, key)
    return out


def check_network(source, cfg, arg, aux):
    """(arg, aux) as arrays when they are exactly the SEC inference network of ``cfg``: every
    parameter there with its shape and nothing else; otherwise an error naming the layers (as
    the file names them) and the shapes, with the class count the file holds."""
    import mxnet as mx
    from cores.symbols import networks
    symbol = networks.sec_infer_symbol(cfg)
    want_arg, want_aux = checkpoint.expected_shapes(symbol, {"data": stages.image_shape(cfg, 1)})
    problems, extra = [], []
    for want, have in ((want_arg, arg), (want_aux, aux)):
        for name, shape in want.items():
            if name not in have:
                problems.append("%s is missing" % name)
            elif tuple(have[name][0].shape) != tuple(shape):
                problems.append("%s has shape %s, the network needs %s" % (
                    have[name][1], tuple(have[name][0].shape), tuple(shape)))
        extra += [have[k][1] for k in have if k not in want]
    if problems or extra:
        found = arg.get("fc8_weight")
        classes = (" (the file's classifier has %d classes, CLASS_NUM=%d)"
                   % (found[0].shape[0], cfg.CLASS_NUM) if found is not None
                   and found[0].shape[0] != cfg.CLASS_NUM else "")
        more = ["%d arrays the network does not have, e.g. %s" % (
            len(extra), ", ".join(sorted(extra)[:4]))] if extra else []
        raise ReleasedModelError(
            "%s is not the SEC network of BASE_NET=%s%s: %s" % (
                source, cfg.BASE_NET, classes, "; ".join((problems[:6] + more))))
    def array(v):
        return v.asnumpy() if isinstance(v, mx.nd.NDArray) else np.asarray(v)
    return ({k: array(v[0]) for k, v in arg.items()}, {k: array(v[0]) for k, v in aux.items()})


def from_caffe(cfg, caffemodel, prototxt=None):
    """(arg, aux) of the authors' trained SEC model (VGG16, input BGR with mean 104/117/123:
    the config must say so)."""
    from cores.caffe_model import read_caffemodel
    from cores.weights import convert_caffe
    for key, value in AUTHORS.items():
        if cfg[key] != value:
            raise ReleasedModelError("the authors' SEC model takes %s=%s (their deploy and "
                                     "demo); the config has %r" % (key, value, cfg[key]))
    if cfg.BASE_NET != "vgg16":
        raise ReleasedModelError("the authors' SEC model is VGG16 (DeepLab-LargeFOV), not "
                                 "BASE_NET=%s" % cfg.BASE_NET)
    read_caffemodel(caffemodel)                           # a clear error for a bad file first
    arg, aux, _ = convert_caffe(caffemodel, "vgg16", "BGR", prototxt)
    return check_network(caffemodel, cfg, _renamed(arg, CAFFE_NAMES), _renamed(aux, {}))


def from_port(cfg, path):
    """(arg, aux) of one of the earlier port's SEC snapshots, for ``cfg`` (its recipe)."""
    arg, aux = checkpoint.load_params_file(path)
    return check_network(path, cfg, _renamed(arg, PORT_NAMES), _renamed(aux, PORT_NAMES))


def port_epoch(path):
    """The epoch in a port snapshot's name (SEC_vgg16-8.params: 8), or None."""
    found = re.search(r"-(\d+)\.params$", os.path.basename(path))
    return int(found.group(1)) if found else None


def save(cfg, arg, aux, epoch=None, overwrite=False):
    """Write (arg, aux) as snapshot ``epoch`` (default: the last of SEC's schedule in
    ``cfg``) of the sec method, with ``cfg`` stored in it; returns its path. An existing
    snapshot there is refused unless ``overwrite``."""
    import mxnet as mx
    sec = methods.get("sec")
    prefix = stages.prefix(cfg, sec)
    epoch = epoch or stages.Schedule(cfg, sec).final_epoch
    path = stages.snapshot_path(prefix, epoch)
    if os.path.isfile(path) and not overwrite:
        raise ReleasedModelError("%s exists; convert into another SNAPSHOT_PATH or pass "
                                 "--overwrite" % path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    checkpoint.save_snapshot(prefix, epoch, {k: mx.nd.array(v) for k, v in arg.items()},
                             {k: mx.nd.array(v) for k, v in aux.items()}, cfg,
                             iteration=epoch * cfg.EPOCH_SIZE)
    logging.info("wrote %s (%d parameters, %d auxiliary states)", path, len(arg), len(aux))
    return path
