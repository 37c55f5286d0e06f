"""Backbone pretraining on image labels: the stand-in for ImageNet weights when none exist
(the toy demo, or a user's own domain). No masks are used."""
import logging
import os

import mxnet as mx
import numpy as np

from cores import checkpoint, events as event_log, stages
from cores.data.dataset import load_index
from cores.data.iterators import inference_stream
from cores.io import check_writable
from cores.symbols import networks
from cores.symbols.layers import BN_EPS
from cores.classifier import (check_classifier, check_negatives, classifier_scores,
                              net_config, train_cue_network)


def fold_batchnorm(arg, aux, eps=BN_EPS):
    """Fold every ``<layer>_bn`` BatchNorm (moving statistics, scale, shift) into the weights
    and bias of ``<layer>``, so that the plain network computes what the normalised one did at
    inference: W' = W s, b' = (b - mean) s + beta, s = gamma / sqrt(var + eps)."""
    arg, aux = dict(arg), dict(aux)
    for name in [k[:-len("_bn_gamma")] for k in arg if k.endswith("_bn_gamma")]:
        bn = name + "_bn"
        scale = arg.pop(bn + "_gamma") / np.sqrt(aux.pop(bn + "_moving_var") + eps)
        shift = arg.pop(bn + "_beta") - aux.pop(bn + "_moving_mean") * scale
        weight = arg[name + "_weight"]
        arg[name + "_weight"] = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
        arg[name + "_bias"] = arg[name + "_bias"] * scale + shift
    return arg, aux


def balance_scales(arg, layers, input_rms):
    """Rescale the folded plain network without changing what it computes (ReLU and pooling
    commute with positive factors): layer l's output is multiplied by
    a_l = input_rms^((L - l) / L), so activations shrink geometrically from the input's scale
    (raw pixels, RMS ~60) to 1 at the last layer. Folded, every layer's output would have scale
    ~1 except the input, which gives conv1_1 a relative step (input / output scale)^2 ~ 3,600
    times larger than the others and kills it in the first SGD steps; balanced, every layer gets
    the same (input_rms^(2/L), ~1.7x)."""
    arg = dict(arg)
    previous = 1.0
    for depth, name in enumerate(layers, start=1):
        alpha = float(input_rms) ** ((len(layers) - depth) / len(layers))
        arg[name + "_weight"] = arg[name + "_weight"] * (alpha / previous)
        arg[name + "_bias"] = arg[name + "_bias"] * alpha
        previous = alpha
    return arg


def _input_rms(cfg, entries, count=32):
    """RMS of the network input (mean-subtracted pixels) over the first ``count`` images."""
    total, n = 0.0, 0
    net = net_config(cfg, stages.PRETRAIN)
    for _, data, _, _ in inference_stream(net, [dict(e, mask=None) for e in entries[:count]]):
        total += float(np.square(data, dtype=np.float64).sum())
        n += data.size
    return np.sqrt(total / n)


def pretrain_backbone(cfg, ctx, resume=False, allow_config_change=False, overwrite=False):
    """Train the SEC layers up to fc7 as a multi-label classifier on the train_aug labels
    (from random weights) and write them as MODEL_PATH/<BASE_NET>.params, with a sidecar
    recording CHANNEL_ORDER. Returns the written path."""
    classes, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    path = stages.weights_path(cfg)
    if os.path.isfile(path):
        raise checkpoint.CheckpointError("%s exists; remove it to pretrain a new one" % path)
    check_writable(cfg.MODEL_PATH, cfg.SNAPSHOT_PATH)
    check_negatives(train, classes)
    random_cfg = type(cfg)(cfg, RANDOM_INIT=True)
    events = event_log.open_run(cfg, stages.PRETRAIN)
    try:
        last = train_cue_network(random_cfg, stages.PRETRAIN, ctx, train, resume,
                                 allow_config_change=allow_config_change, events=events,
                                 overwrite=overwrite)
        arg, aux = checkpoint.load_params_file(
            checkpoint.snapshot_path(stages.prefix(cfg, stages.PRETRAIN), last))
        scores = classifier_scores(cfg, stages.PRETRAIN, ctx, arg, aux, train)
        check_classifier(cfg, "pretraining", scores, train, classes,
                         stages.classification_path(cfg, stages.PRETRAIN), events,
                         last * stages.Schedule(cfg, stages.PRETRAIN).epoch_size)
    finally:
        events.close()
    arg = {k: v.asnumpy() for k, v in arg.items() if not k.startswith("pretrain_scores")}
    aux = {k: v.asnumpy() for k, v in aux.items()}
    folded = [k[:-len("_bn_gamma")] for k in arg if k.endswith("_bn_gamma")]
    arg, aux = fold_batchnorm(arg, aux)
    if folded:
        order = [n[:-len("_weight")] for n in networks.sec_scores(
            cfg, mx.sym.Variable("data")).list_arguments() if n[:-len("_weight")] in folded]
        rms = _input_rms(cfg, train)
        arg = balance_scales(arg, order, rms)
        logging.info("folded %d BatchNorm layers; activation scales balanced from the input "
                     "RMS %.1f to 1", len(order), rms)
    checkpoint.save_weights(path, arg, aux, {"channel_order": cfg.CHANNEL_ORDER,
                                             "pixel_mean": cfg.PIXEL_MEAN_CUES,
                                             "source": "demo/pretrain_backbone.py"})
    logging.info("wrote %s (%d arrays)", path, len(arg) + len(aux))
    return path
