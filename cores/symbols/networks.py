"""The SEC, CAM and saliency networks for each backbone: a body plus a head (method §2).

Input names: ``data`` (N,3,S,S) mean-subtracted in CHANNEL_ORDER; ``label`` (N,C-1) 0/1 for the
cue networks; ``small_images`` (N,H,W,3) 0..255 BGR, ``labels`` (N,C) and ``cues`` (N,C,H,W)
for SEC training.
"""
import mxnet as mx

from cores import crf
from cores.backbones import NAMES
from cores.symbols import heads, resnet50, sec_losses, vgg16
from cores.symbols import layers as L
from cores.symbols import crf_op  # noqa: F401  (registers the ``sec_crf`` operator)


# the module of each backbone of cores/backbones.py: its body, its networks (sec_scores,
# crf_unary, pretrain_features, cam_body, saliency_scores) and its Gluon weights (gluon_params)
BACKBONE_MODULES = {"vgg16": vgg16, "resnet50": resnet50}
assert sorted(BACKBONE_MODULES) == NAMES, "every backbone of cores/backbones.py needs its module"


def backbone_module(cfg):
    """The module of cfg's backbone (BACKBONE_MODULES)."""
    try:
        return BACKBONE_MODULES[cfg.BASE_NET]
    except KeyError:
        raise ValueError("unknown BASE_NET %r; choose one of: %s"
                         % (cfg.BASE_NET, ", ".join(NAMES))) from None


def sec_scores(cfg, data, dropout=None, batch_norm=False):
    """fc8 scores (N, C, H, W) of the SEC network (dropout as cfg.DROPOUT unless given);
    ``batch_norm``: trained BatchNorm layers, for backbone pretraining only."""
    return backbone_module(cfg).sec_scores(cfg, data, cfg.DROPOUT if dropout is None else dropout,
                                           batch_norm)


def sec_train_symbol(cfg):
    """The SEC losses (method §4) of SEC_LOSSES, in the order seed_loss, expand_loss,
    constrain_loss: all three by default; the seeding loss with one or none of the others
    for the paper's ablations (SEC_LOSSES always holds seed)."""
    data = mx.sym.Variable("data")
    scores = sec_scores(cfg, data)
    probs = sec_losses.softmax_with_floor(scores, cfg.MIN_PROB)
    losses = [mx.sym.MakeLoss(sec_losses.seed_loss(probs, mx.sym.Variable("cues")),
                              name="seed_loss")]
    if "expand" in cfg.SEC_LOSSES:
        losses.append(mx.sym.MakeLoss(sec_losses.expand_loss(probs, mx.sym.Variable("labels"),
                                                             cfg.Q_FG, cfg.Q_BG),
                                      name="expand_loss"))
    if "constrain" in cfg.SEC_LOSSES:
        # the CRF's unary is the scores (method §5; the backbone's module may say otherwise)
        unary = backbone_module(cfg).crf_unary(cfg, scores, probs)
        crf_log_probs = mx.sym.Custom(unary, mx.sym.Variable("small_images"),
                                      op_type="sec_crf", name="crf", min_prob=cfg.MIN_PROB,
                                      workers=cfg.CRF_WORKERS, **crf.train_params(cfg))
        losses.append(mx.sym.MakeLoss(sec_losses.constrain_loss(probs, crf_log_probs),
                                      name="constrain_loss"))
    return mx.sym.Group(losses)


def dsrg_train_symbol(cfg):
    """DSRG (Huang et al. 2018, its released code): the CRF on the floored probabilities and
    the seeds grown on its marginals every iteration from the original cues (cores/growing.py,
    in the CRF workers); the balanced seeding loss on the grown seeds and the constrain loss
    with Q/p clipped to DSRG_CLIP; no expansion loss. Grouped as seed_loss, constrain_loss."""
    scores = sec_scores(cfg, mx.sym.Variable("data"))
    probs = sec_losses.softmax_with_floor(scores, cfg.MIN_PROB)
    grown = mx.sym.Custom(probs, mx.sym.Variable("small_images"), mx.sym.Variable("labels"),
                          mx.sym.Variable("cues"), op_type="dsrg_grow", name="grow",
                          min_prob=cfg.MIN_PROB, workers=cfg.CRF_WORKERS,
                          fg_threshold=cfg.DSRG_FG_THRESHOLD, bg_threshold=cfg.DSRG_BG_THRESHOLD,
                          pass_gradient=bool(cfg.DSRG_CRF_GRADIENT), **crf.train_params(cfg))
    low, high = cfg.DSRG_CLIP
    return mx.sym.Group([
        mx.sym.MakeLoss(sec_losses.balanced_seed_loss(probs, mx.sym.BlockGrad(grown[1]),
                                                      cfg.MIN_PROB), name="seed_loss"),
        mx.sym.MakeLoss(sec_losses.clipped_constrain_loss(probs, grown[0], low, high,
                                                          bool(cfg.DSRG_CRF_GRADIENT)),
                        name="constrain_loss")])


def supervised_train_symbol(cfg):
    """The same SEC network trained on ground-truth masks: softmax cross-entropy on the score
    grid (the seeding loss with every labelled pixel as a cue, void left out), the fully
    supervised upper bound of SEC. Inputs ``data`` and ``cues`` (N, C, H, W) one-hot."""
    scores = sec_scores(cfg, mx.sym.Variable("data"))
    probs = sec_losses.softmax_with_floor(scores, cfg.MIN_PROB)
    return mx.sym.Group([mx.sym.MakeLoss(sec_losses.seed_loss(probs, mx.sym.Variable("cues")),
                                         name="ce_loss")])


def loss_names(symbol):
    """The names of a training symbol's MakeLoss outputs, in output order."""
    return [name[:-len("_output")] for name in symbol.list_outputs()]


def sec_infer_symbol(cfg):
    """Softmax probabilities (N, C, H, W) for evaluation."""
    scores = sec_scores(cfg, mx.sym.Variable("data"), dropout=False)
    return mx.sym.softmax(scores, axis=1, name="probs")


def _cam(cfg, data):
    feature = backbone_module(cfg).cam_body(cfg, data)
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
    scores = backbone_module(cfg).saliency_scores(cfg, mx.sym.Variable("data"),
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

    build = backbone_module(cfg).saliency_scores
    build(cfg, mx.sym.Variable("data"), hook=capture)
    back = build(cfg, mx.sym.Variable("data"), hook=lambda x: mx.sym.Variable("saliency_input"))
    return captured[0], back


def classifier_train_symbol(cfg):
    """The layers that ImageNet weights would give (VGG16: up to fc7; ResNet50: the body),
    global average pooling and a new fully connected classifier, trained with the multi-label
    logistic loss: a stand-in for ImageNet pretraining when no pretrained weights exist (toy
    data, a user's own domain). VGG16 trains with BatchNorm layers under PRETRAIN_BN
    (cores/pretrain.py folds them); ResNet50 has its own."""
    features = backbone_module(cfg).pretrain_features(cfg, mx.sym.Variable("data"))
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
