"""VGG16 body, written once for the SEC (DeepLab-LargeFOV), CAM and saliency networks (method §2),
those networks on it, and the conversion of Gluon's VGG16 weights to it.

The three networks differ only in their pooling layers, the dilation of conv5 and their heads.
Pooling entries are (kernel, stride, pad) per stage, or None for no pooling after that stage.
"""
import mxnet as mx
import numpy as np

from cores.symbols import heads
from cores.symbols import layers as L
from cores.symbols.heads import ASPP_DILATIONS

STAGES = [
    ("conv1", [64, 64]),
    ("conv2", [128, 128]),
    ("conv3", [256, 256, 256]),
    ("conv4", [512, 512, 512]),
    ("conv5", [512, 512, 512]),
]

# DeepLab-LargeFOV: pool1-3 3x3/2 pad 1, pool4-5 3x3/1 pad 1 (321 -> 161 -> 81 -> 41).
LARGEFOV_POOLS = [(3, 2, 1), (3, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1)]
# CAM network: pool1-3 2x2/2, no pool4/pool5 (321 -> 41 with Caffe's ceil rounding).
CAM_POOLS = [(2, 2, 0), (2, 2, 0), (2, 2, 0), None, None]
# Saliency classifier: pool1-5 2x2/2.
CLASSIFIER_POOLS = [(2, 2, 0)] * 5


def vgg16_body(data, pools, conv5_dilate=1, width_mult=1.0, convention="full", workspace=512,
               preact_hook=None, batch_norm=False):
    """Features of VGG16 (after the last pooling layer given).

    ``preact_hook`` receives the conv4_1 pre-activation (method §3: the saliency layer) and returns
    the symbol to continue from, so that the saliency network can be cut there.
    ``batch_norm`` adds a BatchNorm ``<conv>_bn`` after every convolution: backbone pretraining
    from scratch only, folded into the convolutions afterwards (the topology stays VGG16's).
    """
    x = data
    for stage, (prefix, widths) in enumerate(STAGES, start=1):
        dilate = conv5_dilate if stage == 5 else 1
        for i, width in enumerate(widths, start=1):
            name = "%s_%d" % (prefix, i)
            x = L.conv(x, name, L.channels(width, width_mult), kernel=3, dilate=dilate,
                       workspace=workspace)
            if batch_norm:
                x = L.batchnorm(x, name + "_bn")
            if name == "conv4_1" and preact_hook is not None:
                x = preact_hook(x)
            x = L.relu(x, "relu%d_%d" % (stage, i))
        if pools[stage - 1] is not None:
            kernel, stride, pad = pools[stage - 1]
            x = L.pool(x, "pool%d" % stage, kernel, stride, pad, convention=convention)
    return x


def largefov_head(feature, num_classes, width_mult=1.0, workspace=512, dropout=True,
                  batch_norm=False):
    """DeepLab-LargeFOV head: pool5a, fc6 (3x3, dilation 12) and fc7 pretrained, fc8 new."""
    x = L.pool(feature, "pool5a", 3, 1, 1, pool_type="avg")
    x = L.conv(x, "fc6", L.channels(1024, width_mult), kernel=3, dilate=12, workspace=workspace)
    if batch_norm:
        x = L.batchnorm(x, "fc6_bn")
    x = L.relu(x, "relu6")
    if dropout:
        x = L.dropout(x, "drop6")
    x = L.conv(x, "fc7", L.channels(1024, width_mult), kernel=1, workspace=workspace)
    if batch_norm:
        x = L.batchnorm(x, "fc7_bn")
    x = L.relu(x, "relu7")
    if dropout:
        x = L.dropout(x, "drop7")
    return L.conv(x, "fc8", num_classes, kernel=1, kind=L.NEW, workspace=workspace,
                  width_mult=width_mult)



def aspp_head(feature, num_classes, width_mult=1.0, workspace=512, dropout=True):
    """DeepLab-ASPP head: pool5a, then per dilation d of ASPP_DILATIONS a branch fc6_k (3x3,
    dilation d) and fc7_k (1x1), each starting from the pretrained fc6/fc7 as DeepLab's
    initialisation, and a new fc8_k; the four fc8_k summed."""
    x = L.pool(feature, "pool5a", 3, 1, 1, pool_type="avg")
    branches = []
    for k, dilation in enumerate(ASPP_DILATIONS, start=1):
        y = L.conv(x, "fc6_%d" % k, L.channels(1024, width_mult), kernel=3, dilate=dilation,
                   workspace=workspace, copy_of="fc6")
        y = L.relu(y, "relu6_%d" % k)
        if dropout:
            y = L.dropout(y, "drop6_%d" % k)
        y = L.conv(y, "fc7_%d" % k, L.channels(1024, width_mult), kernel=1, workspace=workspace,
                   copy_of="fc7")
        y = L.relu(y, "relu7_%d" % k)
        if dropout:
            y = L.dropout(y, "drop7_%d" % k)
        branches.append(L.conv(y, "fc8_%d" % k, num_classes, kernel=1, kind=L.NEW,
                               workspace=workspace, width_mult=width_mult))
    return mx.sym.ElementWiseSum(*branches, name="fc8")


# ---- the networks on this backbone (cores/backbones.py: the interface)
class Networks:
    """The SEC (DeepLab-LargeFOV), CAM and saliency networks on VGG16."""

    @staticmethod
    def sec_scores(cfg, data, dropout=True, batch_norm=False):
        """The SEC network's fc8 scores: DeepLab-LargeFOV (or HEAD=aspp, not in pretraining)."""
        x = vgg16_body(data, LARGEFOV_POOLS, conv5_dilate=2, width_mult=cfg.WIDTH_MULT,
                       convention=cfg.POOLING_CONVENTION, workspace=cfg.WORKSPACE,
                       batch_norm=batch_norm)
        if cfg.HEAD == "aspp" and not batch_norm:
            return aspp_head(x, cfg.CLASS_NUM, cfg.WIDTH_MULT, cfg.WORKSPACE, dropout)
        return largefov_head(x, cfg.CLASS_NUM, cfg.WIDTH_MULT, cfg.WORKSPACE, dropout,
                             batch_norm)

    @staticmethod
    def crf_unary(cfg, scores, probs):
        """What the constrain loss's CRF takes: the scores (method §5)."""
        return scores

    @staticmethod
    def pretrain_features(cfg, data):
        """What ImageNet weights give VGG16 in DeepLab's file: every layer up to fc7
        (LargeFOV's, whatever HEAD)."""
        x = vgg16_body(data, LARGEFOV_POOLS, conv5_dilate=2, width_mult=cfg.WIDTH_MULT,
                       convention=cfg.POOLING_CONVENTION, workspace=cfg.WORKSPACE,
                       batch_norm=cfg.PRETRAIN_BN)
        scores = largefov_head(x, cfg.CLASS_NUM, cfg.WIDTH_MULT, cfg.WORKSPACE, cfg.DROPOUT,
                               cfg.PRETRAIN_BN)
        return scores.get_internals()["relu7_output"]

    @staticmethod
    def cam_body(cfg, data):
        return vgg16_body(data, CAM_POOLS, width_mult=cfg.WIDTH_MULT,
                          convention=cfg.POOLING_CONVENTION, workspace=cfg.WORKSPACE)

    @staticmethod
    def saliency_scores(cfg, data, hook=None, dropout=False):
        x = vgg16_body(data, CLASSIFIER_POOLS, width_mult=cfg.WIDTH_MULT,
                       convention=cfg.POOLING_CONVENTION, workspace=cfg.WORKSPACE,
                       preact_hook=hook)
        return heads.saliency_head(x, cfg.CLASS_NUM - 1, cfg.WIDTH_MULT, adapt=False,
                                   workspace=cfg.WORKSPACE, dropout=dropout)

    @staticmethod
    def gluon_params(model):
        """(arg, aux) in this project's names from a loaded Gluon ``vgg16``: the 13
        convolutions, and fc6/fc7 decimated to DeepLab-LargeFOV's."""
        return gluon_params(model)


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


def gluon_params(model):
    """(arg, aux) in this project's names from a loaded Gluon ``vgg16``: the 13 convolutions,
    and fc6/fc7 decimated to DeepLab-LargeFOV's."""
    from mxnet.gluon import nn
    convs = [b for b in model.features if isinstance(b, nn.Conv2D)]
    dense = [b for b in model.features if isinstance(b, nn.Dense)]
    names = ["%s_%d" % (prefix, i) for prefix, widths in STAGES
             for i in range(1, len(widths) + 1)]
    arg = {}
    for name, conv in zip(names, convs):
        arg[name + "_weight"] = conv.weight.data().asnumpy()
        arg[name + "_bias"] = conv.bias.data().asnumpy()
    arg["fc6_weight"], arg["fc6_bias"] = decimate_fc6(dense[0].weight.data().asnumpy(),
                                                      dense[0].bias.data().asnumpy())
    arg["fc7_weight"], arg["fc7_bias"] = decimate_fc7(dense[1].weight.data().asnumpy(),
                                                      dense[1].bias.data().asnumpy())
    return arg, {}
