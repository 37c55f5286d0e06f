"""Layer helpers shared by the backbones and heads: Caffe-style learning-rate multipliers.

Spec 2: pretrained layers learn their weights at lr x1 (decay 1) and biases at x2 (decay 0);
new layers at x10 and x20 (decay 0), Gaussian std 0.01 with zero bias. A new layer's variables
carry the attribute ``__sec_new__`` so that weight loading knows not to expect them in a file.

In a narrowed network (WIDTH_MULT < 1) every new layer's fan-in shrinks by WIDTH_MULT, so std
0.01 would shrink its output by sqrt(WIDTH_MULT) relative to the full network's (3x per layer at
1/8 width: the CAM head's three new layers started ~20x weaker and sat at chance for hundreds of
iterations). ``new_std`` keeps the full network's signal scale: 0.01 / sqrt(WIDTH_MULT), exactly
0.01 at full width (docs/method.md, section 7).
"""
import math

import mxnet as mx

PRETRAINED = "pretrained"
NEW = "new"
FROZEN = "frozen"

_MULTS = {  # kind -> (weight lr, weight wd, bias lr, bias wd)
    PRETRAINED: (1.0, 1.0, 2.0, 0.0),
    NEW: (10.0, 1.0, 20.0, 0.0),
    FROZEN: (0.0, 0.0, 0.0, 0.0),
}


def channels(num, width_mult):
    """Channel count scaled by WIDTH_MULT (1.0 leaves the architecture exact)."""
    return max(1, int(round(num * width_mult)))


NEW_STD = 0.01


def new_std(width_mult=1.0):
    """Initial std of a new layer's weights in a network of WIDTH_MULT ``width_mult``."""
    return NEW_STD / math.sqrt(width_mult)


def _variables(name, kind, no_bias, width_mult=1.0, copy_of=None):
    w_lr, w_wd, b_lr, b_wd = _MULTS[kind]
    extra = {}
    if kind == NEW:
        extra = {"__sec_new__": "1"}

    def attrs(suffix):
        return dict(extra, __sec_copy_of__=copy_of + suffix) if copy_of else dict(extra)
    weight = mx.sym.Variable(name + "_weight", lr_mult=w_lr, wd_mult=w_wd, attr=attrs("_weight"),
                             init=mx.init.Normal(new_std(width_mult)) if kind == NEW
                             else None)
    bias = None
    if not no_bias:
        bias = mx.sym.Variable(name + "_bias", lr_mult=b_lr, wd_mult=b_wd, attr=attrs("_bias"),
                               init=mx.init.Zero() if kind == NEW else None)
    return weight, bias


def conv(data, name, num_filter, kernel=3, pad=None, stride=1, dilate=1, no_bias=False,
         kind=PRETRAINED, workspace=512, width_mult=1.0, copy_of=None):
    """A 2-D convolution whose variables carry the lr/wd multipliers of ``kind`` (and, if new,
    the initial std of a network of ``width_mult``); ``copy_of``: a pretrained layer whose
    weights this one starts from (DeepLab-ASPP's branches start from fc6 and fc7)."""
    if pad is None:
        pad = dilate * (kernel - 1) // 2
    weight, bias = _variables(name, kind, no_bias, width_mult, copy_of)
    kwargs = dict(data=data, weight=weight, name=name, num_filter=num_filter,
                  kernel=(kernel, kernel), pad=(pad, pad), stride=(stride, stride),
                  dilate=(dilate, dilate), no_bias=no_bias, workspace=workspace)
    if not no_bias:
        kwargs["bias"] = bias
    return mx.sym.Convolution(**kwargs)


def fully_connected(data, name, num_hidden, no_bias=False, kind=PRETRAINED, width_mult=1.0):
    weight, bias = _variables(name, kind, no_bias, width_mult)
    kwargs = dict(data=data, weight=weight, name=name, num_hidden=num_hidden, no_bias=no_bias)
    if not no_bias:
        kwargs["bias"] = bias
    return mx.sym.FullyConnected(**kwargs)


def frozen_batchnorm(data, name, train=False, affine=False, eps=1e-5, zero_gamma=False):
    """Caffe BatchNorm+Scale with global statistics and frozen scale/shift (DeepLab's ResNet);
    ``affine``: statistics frozen but scale (lr x1) and shift (lr x2) trained, the earlier
    port's choice; ``train``: an ordinary trained BatchNorm (batch statistics), for backbone
    pretraining (``zero_gamma``: its scale starts at 0)."""
    if train:
        return batchnorm(data, name, eps=eps, zero_gamma=zero_gamma)
    gamma = mx.sym.Variable(name + "_gamma", lr_mult=1.0 if affine else 0.0, wd_mult=0.0)
    beta = mx.sym.Variable(name + "_beta", lr_mult=2.0 if affine else 0.0, wd_mult=0.0)
    return mx.sym.BatchNorm(data=data, gamma=gamma, beta=beta, name=name, fix_gamma=False,
                            use_global_stats=True, eps=eps)


BN_EPS = 1e-3


def batchnorm(data, name, eps=BN_EPS, zero_gamma=False):
    """A trained BatchNorm (scale and shift learned, no decay): used only while pretraining a
    backbone from scratch; for VGG16 cores/pretrain.py folds it into the convolution before
    it. ``zero_gamma``: the scale starts at 0, so that a residual branch ending in it starts as
    the identity (how deep ResNets are trained from scratch: Goyal et al. 2017)."""
    gamma = mx.sym.Variable(name + "_gamma", wd_mult=0.0,
                            init=mx.init.Zero() if zero_gamma else None)
    beta = mx.sym.Variable(name + "_beta", wd_mult=0.0)
    return mx.sym.BatchNorm(data=data, gamma=gamma, beta=beta, name=name, fix_gamma=False,
                            eps=eps)


def relu(data, name):
    return mx.sym.Activation(data=data, act_type="relu", name=name)


def pool(data, name, kernel, stride, pad=0, pool_type="max", convention="full"):
    return mx.sym.Pooling(data=data, name=name, kernel=(kernel, kernel), stride=(stride, stride),
                          pad=(pad, pad), pool_type=pool_type, pooling_convention=convention)


def dropout(data, name, p=0.5):
    return mx.sym.Dropout(data=data, p=p, name=name)


def copied_params(symbol, arg):
    """{name: array} of the parameters that start as a copy of another layer's pretrained
    weights (``conv(copy_of=...)``), taken from ``arg``, for those ``arg`` does not hold."""
    attrs = symbol.attr_dict()
    out = {}
    for name in symbol.list_arguments():
        source = attrs.get(name, {}).get("__sec_copy_of__")
        if source and name not in arg and source in arg:
            out[name] = arg[source].copy()
    return out


def new_param_names(symbol):
    """Names of the arguments that belong to new layers (not expected in pretrained files)."""
    attrs = symbol.attr_dict()
    return {name for name in symbol.list_arguments() if attrs.get(name, {}).get("__sec_new__")}
