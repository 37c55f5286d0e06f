"""The ResNet body (depth 50 or 101) with the Caffe release's parameter names, written once for
all three networks (method §2), those networks on it (with the port's switches, RESNET_*), and
the conversion of Gluon's resnet50_v1 / resnet101_v1 weights to it.

``dilated=True`` is the port's segmentation body (res4 dilation 2, res5 dilation 4, output
stride 8: 321 -> 41); ``dilated=False`` the plain classifier (output stride 32). BatchNorm is
frozen (global statistics, fixed scale and shift) as in DeepLab.
"""
import mxnet as mx
import numpy as np

from cores.symbols import heads
from cores.symbols import layers as L
from cores.symbols.heads import ASPP_DILATIONS

# (stage, bottleneck width, output width), and the blocks of each stage per depth
STAGES = [(2, 64, 256), (3, 128, 512), (4, 256, 1024), (5, 512, 2048)]
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def block_names(depth):
    """{stage: [block names]} as the Caffe release names them: res4a..res4f in ResNet-50;
    res3a, res3b1..res3b3 and res4a, res4b1..res4b22 in ResNet-101 (letters in res2 and res5)."""
    if depth not in BLOCKS:
        raise ValueError("ResNet depth %r: one of %s" % (depth, ", ".join(map(str, BLOCKS))))
    out = {}
    for (stage, _, _), count in zip(STAGES, BLOCKS[depth]):
        if depth >= 101 and stage in (3, 4):
            names = ["a"] + ["b%d" % i for i in range(1, count)]
        else:
            names = list("abcdefghijklmnopqrstuvwxyz"[:count])
        out[stage] = ["%d%s" % (stage, n) for n in names]
    return out


def _conv_bn(x, name, num_filter, kernel, stride=1, dilate=1, workspace=512, bn=None,
             last=False):
    x = L.conv(x, "res" + name, num_filter, kernel=kernel, stride=stride, dilate=dilate,
               no_bias=True, workspace=workspace)
    bn = dict(bn or {})
    if last and bn.get("train"):
        bn["zero_gamma"] = True              # pretraining from scratch: blocks start as identity
    return L.frozen_batchnorm(x, "bn" + name, **bn)


def _bottleneck(x, name, width, out_width, stride, dilate, project, workspace, bn):
    y = _conv_bn(x, name + "_branch2a", width, 1, stride=stride, workspace=workspace, bn=bn)
    y = L.relu(y, "res%s_branch2a_relu" % name)
    y = _conv_bn(y, name + "_branch2b", width, 3, dilate=dilate, workspace=workspace, bn=bn)
    y = L.relu(y, "res%s_branch2b_relu" % name)
    y = _conv_bn(y, name + "_branch2c", out_width, 1, workspace=workspace, bn=bn, last=True)
    shortcut = x
    if project:
        shortcut = _conv_bn(x, name + "_branch1", out_width, 1, stride=stride, workspace=workspace,
                            bn=bn)
    return shortcut + y


def resnet_body(data, depth=50, dilated=True, width_mult=1.0, convention="full", workspace=512,
                preact_hook=None, batch_norm=False, bn_affine=False, bn_eps=1e-5,
                saliency_after_relu=False, dilation=True):
    """The last block's features. ``preact_hook`` receives the pre-activation of res3's second
    block (res3b; res3b1 in ResNet-101: the saliency layer), or with ``saliency_after_relu``
    its output after the ReLU (the port's choice).
    ``dilated``: res4/res5 at stride 1 (output stride 8), with dilation 2 and 4 unless
    ``dilation`` is False (the port's CAM body: stride 1 without dilation).
    ``batch_norm``: train the BatchNorm layers (statistics, scale, shift) instead of freezing
    them, for backbone pretraining from scratch; ``bn_affine``: frozen statistics but trained
    scale and shift (the port), ``bn_eps`` its epsilon (the port: 1.001e-5)."""
    bn = dict(train=batch_norm, affine=bn_affine, eps=bn_eps)
    x = L.conv(data, "conv1", L.channels(64, width_mult), kernel=7, stride=2, pad=3,
               workspace=workspace)
    x = L.frozen_batchnorm(x, "bn_conv1", **bn)
    x = L.relu(x, "conv1_relu")
    x = L.pool(x, "pool1", 3, 2, 1, convention=convention)
    names = block_names(depth)
    saliency = names[3][1]
    for stage, width, out_width in STAGES:
        for b, name in enumerate(names[stage]):
            stride, dilate = 1, 1
            if stage >= 3 and b == 0:
                stride = 2
            if dilated and stage >= 4:
                stride = 1
                dilate = 2 ** (stage - 3) if dilation else 1
            x = _bottleneck(x, name, L.channels(width, width_mult),
                            L.channels(out_width, width_mult), stride, dilate, b == 0, workspace,
                            bn)
            if name == saliency and preact_hook is not None and not saliency_after_relu:
                x = preact_hook(x)
            x = L.relu(x, "res%s_relu" % name)
            if name == saliency and preact_hook is not None and saliency_after_relu:
                x = preact_hook(x)
    return x


def sec_head(feature, num_classes, width_mult=1.0, workspace=512, dropout=True):
    """The port's segmentation head: 3x3 dilation-12 conv, 1x1 conv (512 each), classifier."""
    x = L.conv(feature, "fc6", L.channels(512, width_mult), kernel=3, dilate=12, kind=L.NEW,
               workspace=workspace, width_mult=width_mult)
    x = L.relu(x, "relu6")
    if dropout:
        x = L.dropout(x, "drop6")
    x = L.conv(x, "fc7", L.channels(512, width_mult), kernel=1, kind=L.NEW, workspace=workspace,
               width_mult=width_mult)
    x = L.relu(x, "relu7")
    return L.conv(x, "fc8", num_classes, kernel=1, kind=L.NEW, workspace=workspace,
                  width_mult=width_mult)


def aspp_head(feature, num_classes, width_mult=1.0, workspace=512, dropout=True):
    """DeepLab-ASPP head of DeepLab v2's ResNet: one new 3x3 convolution to the classes per
    dilation 6/12/18/24, summed (no dropout in it; ``dropout`` is accepted for symmetry)."""
    branches = [L.conv(feature, "fc8_%d" % k, num_classes, kernel=3, dilate=d, kind=L.NEW,
                       workspace=workspace, width_mult=width_mult)
                for k, d in enumerate(ASPP_DILATIONS, start=1)]
    return mx.sym.ElementWiseSum(*branches, name="fc8")


# ---- the networks on this backbone (cores/backbones.py: the interface)
def bn_options(cfg):
    """The BatchNorm choice (RESNET_BN): frozen, or the port's trained scale/shift."""
    port = cfg.RESNET_BN == "port"
    return dict(bn_affine=port, bn_eps=1.001e-5 if port else 1e-5)


class Networks:
    """The SEC, CAM and saliency networks on a ResNet of ``depth`` layers."""

    def __init__(self, depth=50):
        block_names(depth)
        self.depth = depth

    def _body(self, cfg, data, **kwargs):
        return resnet_body(data, self.depth, width_mult=cfg.WIDTH_MULT,
                           convention=cfg.POOLING_CONVENTION, workspace=cfg.WORKSPACE, **kwargs)

    def sec_scores(self, cfg, data, dropout=True, batch_norm=False):
        """The SEC network's fc8 scores: the dilated body and the port's head (or HEAD=aspp)."""
        x = self._body(cfg, data, dilated=True, batch_norm=batch_norm, **bn_options(cfg))
        head = aspp_head if cfg.HEAD == "aspp" else sec_head
        return head(x, cfg.CLASS_NUM, cfg.WIDTH_MULT, cfg.WORKSPACE, dropout)

    @staticmethod
    def crf_unary(cfg, scores, probs):
        """What the constrain loss's CRF takes: the scores (method §5), or the probabilities as
        the port (RESNET_CRF_UNARY=probs)."""
        return probs if cfg.RESNET_CRF_UNARY == "probs" else scores

    def pretrain_features(self, cfg, data):
        """What ImageNet weights give a ResNet: the body (its SEC head is new, as with real
        weights), with trained BatchNorm."""
        return self._body(cfg, data, dilated=True, batch_norm=True)

    def cam_body(self, cfg, data):
        return self._body(cfg, data, dilated=True, dilation=cfg.RESNET_CAM_DILATION,
                          **bn_options(cfg))

    def saliency_scores(self, cfg, data, hook=None, dropout=False):
        x = self._body(cfg, data, dilated=False, preact_hook=hook,
                       saliency_after_relu=(cfg.RESNET_SALIENCY_LAYER == "relu"),
                       **bn_options(cfg))
        return heads.saliency_head(x, cfg.CLASS_NUM - 1, cfg.WIDTH_MULT, adapt=True,
                                   workspace=cfg.WORKSPACE, dropout=dropout)

    def gluon_params(self, model):
        """(arg, aux) in this project's (Caffe's) names from a loaded Gluon ``resnet*_v1``."""
        from mxnet.gluon import nn
        arg, aux = {}, {}
        features = list(model.features)
        arg["conv1_weight"] = features[0].weight.data().asnumpy()
        arg["conv1_bias"] = np.zeros(arg["conv1_weight"].shape[0], np.float32)
        _gluon_bn(features[1], "bn_conv1", None, arg, aux)
        names = block_names(self.depth)
        for stage, blocks in zip((2, 3, 4, 5), features[4:8]):
            for name, block in zip(names[stage], blocks):
                body = [layer for layer in block.body if not isinstance(layer, nn.Activation)]
                for branch, (conv, bn) in zip(("2a", "2b", "2c"), zip(body[::2], body[1::2])):
                    _gluon_conv_bn(conv, bn, "%s_branch%s" % (name, branch), arg, aux)
                if block.downsample is not None:
                    conv, bn = list(block.downsample)
                    _gluon_conv_bn(conv, bn, "%s_branch1" % name, arg, aux)
        return arg, aux


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
