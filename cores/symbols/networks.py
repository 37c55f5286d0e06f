"""The SEC, CAM and saliency networks for each backbone: a body plus a head (method §2). The
methods' training networks on the SEC network are theirs (cores/methods/).

Input names: ``data`` (N,3,S,S) mean-subtracted in CHANNEL_ORDER; ``label`` (N,C-1) 0/1 for the
cue networks.
"""
import mxnet as mx

from cores import backbones
from cores.symbols import heads
from cores.symbols import layers as L


def backbone(cfg):
    """The ``Networks`` of cfg's backbone (the registry of cores/backbones.py)."""
    return backbones.networks(cfg.BASE_NET)


def sec_scores(cfg, data, dropout=None, batch_norm=False):
    """fc8 scores (N, C, H, W) of the SEC network (dropout as cfg.DROPOUT unless given);
    ``batch_norm``: trained BatchNorm layers, for backbone pretraining only."""
    return backbone(cfg).sec_scores(cfg, data, cfg.DROPOUT if dropout is None else dropout,
                                           batch_norm)


def loss_names(symbol):
    """The names of a training symbol's MakeLoss outputs, in output order."""
    return [name[:-len("_output")] for name in symbol.list_outputs()]


def sec_infer_symbol(cfg):
    """Softmax probabilities (N, C, H, W) for evaluation."""
    scores = sec_scores(cfg, mx.sym.Variable("data"), dropout=False)
    return mx.sym.softmax(scores, axis=1, name="probs")


def _cam(cfg, data):
    feature = backbone(cfg).cam_body(cfg, data)
    return heads.cam_head(feature, cfg.CLASS_NUM - 1, cfg.WIDTH_MULT, cfg.WORKSPACE)


def cam_train_symbol(cfg):
    """CAM network trained with the multi-label logistic loss on ``label`` (N, C-1)."""
    _, scores = _cam(cfg, mx.sym.Variable("data"))
    return mx.sym.LogisticRegressionOutput(scores, mx.sym.Variable("label"), name="cam_loss")


def cam_symbol(cfg):
    """Class activation maps (N, C-1, H, W) on the score-map grid (method §2)."""
    fc7, _ = _cam(cfg, mx.sym.Variable("data"))
    return heads.cam_maps(fc7, cfg.CLASS_NUM - 1, cfg.WIDTH_MULT)


def saliency_train_symbol(cfg):
    """Saliency classifier trained with the multi-label logistic loss on ``label``."""
    scores = backbone(cfg).saliency_scores(cfg, mx.sym.Variable("data"),
                                                  dropout=cfg.SALIENCY_DROPOUT)
    return mx.sym.LogisticRegressionOutput(scores, mx.sym.Variable("label"),
                                           name="saliency_loss")


def saliency_parts(cfg):
    """The saliency network cut at its saliency layer (method §3), sharing parameter names.

    Returns (front, back): ``front`` maps data to the saliency-layer pre-activation; ``back``
    maps the variable ``saliency_input`` (that pre-activation) to the C-1 class scores, so the
    gradient of the summed scores with respect to ``saliency_input`` is the saliency.
    """
    captured = []

    def capture(x):
        captured.append(x)
        return x

    build = backbone(cfg).saliency_scores
    build(cfg, mx.sym.Variable("data"), hook=capture)
    back = build(cfg, mx.sym.Variable("data"), hook=lambda x: mx.sym.Variable("saliency_input"))
    return captured[0], back


def classifier_train_symbol(cfg):
    """The layers that ImageNet weights would give (VGG16: up to fc7; ResNet50: the body),
    global average pooling and a new fully connected classifier, trained with the multi-label
    logistic loss: a stand-in for ImageNet pretraining when no pretrained weights exist (toy
    data, a user's own domain). VGG16 trains with BatchNorm layers under PRETRAIN_BN
    (cores/pretrain.py folds them); ResNet50 has its own."""
    features = backbone(cfg).pretrain_features(cfg, mx.sym.Variable("data"))
    pooled = mx.sym.Pooling(features, kernel=(1, 1), global_pool=True, pool_type="avg",
                            name="gap_pretrain")
    logits = L.fully_connected(mx.sym.flatten(pooled), "pretrain_scores", cfg.CLASS_NUM - 1,
                               kind=L.NEW)
    return mx.sym.LogisticRegressionOutput(logits, mx.sym.Variable("label"),
                                           name="pretrain_loss")


def pretrained_shapes(cfg):
    """{name: shape} of every parameter and auxiliary state that pretrained weights give the
    SEC, CAM and saliency networks of cfg's backbone (the new layers left out): what a
    converted weights file is checked against."""
    from cores.symbols.layers import new_param_names as new_names
    size = (1, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE)
    label = (1, cfg.CLASS_NUM - 1)
    shapes = {}
    for symbol, inputs in ((sec_scores(cfg, mx.sym.Variable("data")), {"data": size}),
                           (cam_train_symbol(cfg), {"data": size, "label": label}),
                           (saliency_train_symbol(cfg), {"data": size, "label": label})):
        arg_shapes, _, aux_shapes = symbol.infer_shape(**inputs)
        named = list(zip(symbol.list_arguments(), arg_shapes))
        named += list(zip(symbol.list_auxiliary_states(), aux_shapes))
        new = new_names(symbol)
        shapes.update({k: tuple(v) for k, v in named if k not in inputs and k not in new})
    return shapes


def new_param_names(symbol):
    return L.new_param_names(symbol)
