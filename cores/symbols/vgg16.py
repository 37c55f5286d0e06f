"""VGG16 body, written once for the SEC (DeepLab-LargeFOV), CAM and saliency networks (method §2).

The three networks differ only in their pooling layers, the dilation of conv5 and their heads.
Pooling entries are (kernel, stride, pad) per stage, or None for no pooling after that stage.
"""
import mxnet as mx

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
