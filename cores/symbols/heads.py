"""The cue networks' heads, shared by both backbones (method §2), and the dilations of the
DeepLab-ASPP segmentation head (HEAD=aspp; each backbone module builds its own)."""
import mxnet as mx

from cores.symbols import layers as L

ASPP_DILATIONS = (6, 12, 18, 24)


def cam_head(feature, num_fg, width_mult=1.0, workspace=512):
    """CAM head: fc6_CAM (3x3, ReLU, dropout), fc7_CAM (3x3, no ReLU, dropout), global average
    pooling, ``scores`` fully connected without bias. Returns (fc7_CAM before dropout, scores)."""
    width = L.channels(1024, width_mult)
    x = L.conv(feature, "fc6_CAM", width, kernel=3, kind=L.NEW, workspace=workspace,
               width_mult=width_mult)
    x = L.relu(x, "relu6_CAM")
    x = L.dropout(x, "drop6_CAM")
    fc7 = L.conv(x, "fc7_CAM", width, kernel=3, kind=L.NEW, workspace=workspace,
                 width_mult=width_mult)
    x = L.dropout(fc7, "drop7_CAM")
    x = mx.sym.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="avg", name="gap_CAM")
    scores = L.fully_connected(mx.sym.flatten(x), "scores", num_fg, no_bias=True, kind=L.NEW,
                               width_mult=width_mult)
    return fc7, scores


def cam_maps(fc7, num_fg, width_mult=1.0):
    """CAM_c = sum_k W[c, k] fc7_CAM[k], with W the ``scores`` weight (N, C-1, H, W)."""
    width = L.channels(1024, width_mult)
    weight = mx.sym.Variable("scores_weight", shape=(num_fg, width))
    kernel = mx.sym.reshape(weight, shape=(num_fg, width, 1, 1))
    return mx.sym.Convolution(fc7, weight=kernel, num_filter=num_fg, kernel=(1, 1), no_bias=True,
                              name="cam")


def saliency_head(feature, num_fg, width_mult=1.0, adapt=False, workspace=512, dropout=False):
    """Classifier head: [1x1 adapt conv ->512 for ResNet], fc6 and fc7 fully connected -> 1024
    with ReLU (and dropout 0.5 in training, the authors' recipe), fc8 -> C-1. Names end in
    ``_saliency`` so that they never collide with the pretrained convolutional fc6/fc7."""
    x = feature
    if adapt:
        x = L.conv(x, "adapt_saliency", L.channels(512, width_mult), kernel=1, kind=L.NEW,
                   workspace=workspace, width_mult=width_mult)
        x = L.relu(x, "relu_adapt_saliency")
    x = mx.sym.flatten(x)
    for name in ("fc6_saliency", "fc7_saliency"):
        x = L.fully_connected(x, name, L.channels(1024, width_mult), kind=L.NEW,
                              width_mult=width_mult)
        x = L.relu(x, "relu_" + name)
        if dropout:
            x = L.dropout(x, "drop_" + name)
    return L.fully_connected(x, "fc8_saliency", num_fg, kind=L.NEW, width_mult=width_mult)
