"""Backbone pretraining on image labels: the stand-in for ImageNet weights when none exist
(the toy demo, or a user's own domain). No masks are used."""
import logging
import os

from cores import checkpoint
from cores.data.dataset import load_index
from cores.localization import stage_prefix, train_cue_network


def pretrain_backbone(cfg, ctx, resume=False):
    """Train the SEC layers up to fc7 as a multi-label classifier on the train_aug labels
    (from random weights) and write them as MODEL_PATH/<BASE_NET>.params, with a sidecar
    recording CHANNEL_ORDER. Returns the written path."""
    _, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    path = os.path.join(cfg.MODEL_PATH, cfg.BASE_NET + ".params")
    if os.path.isfile(path):
        raise checkpoint.CheckpointError("%s exists; remove it to pretrain a new one" % path)
    random_cfg = type(cfg)(cfg, RANDOM_INIT=True)
    last = train_cue_network(random_cfg, "pretrain", ctx, train, resume)
    arg, aux = checkpoint.load_params_file(
        checkpoint.snapshot_path(stage_prefix(cfg, "pretrain"), last))
    arg = {k: v.asnumpy() for k, v in arg.items() if not k.startswith("pretrain_scores")}
    aux = {k: v.asnumpy() for k, v in aux.items()}
    checkpoint.save_weights(path, arg, aux, {"channel_order": cfg.CHANNEL_ORDER,
                                             "pixel_mean": cfg.PIXEL_MEAN,
                                             "source": "demo/pretrain_backbone.py"})
    logging.info("wrote %s (%d arrays)", path, len(arg) + len(aux))
    return path
