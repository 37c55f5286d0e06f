"""A retraining round: the bound's network and loss (softmax cross-entropy, void ignored)
trained on pseudo-masks, the training images labelled by another method's snapshot
(eval.py --label [--stage dsrg] --crf [--flip]), with DSRG's second step's schedule: batch 10,
lr 1e-3 with DeepLab's poly policy, 20,000 iterations, random crops and mirroring."""
import os

import numpy as np

from cores.methods import Method, Row, register
from cores.methods.base import mask_targets
from cores.methods.supervised import cross_entropy_symbol


def pseudo_mask_dir(cfg):
    """The pseudo-masks of train_aug that eval.py --label writes and a retraining reads."""
    return cfg.PSEUDO_MASK_PATH or os.path.join(cfg.OUTPUT_PATH, "pseudo_masks")


def pseudo_mask_entries(cfg, entries):
    """The training entries with their masks replaced by the pseudo-masks (pseudo_mask_dir);
    an error naming the folder when any is missing."""
    from cores.data.dataset import DatasetError
    folder = pseudo_mask_dir(cfg)
    out = [dict(e, mask=os.path.join(folder, e["id"] + ".png")) for e in entries]
    missing = [e["mask"] for e in out if not os.path.isfile(e["mask"])]
    if missing:
        raise DatasetError("a retraining round needs a pseudo-mask for every training image; "
                           "%d of %d are missing from %s, e.g. %s: label them first with "
                           "eval.py --label [--stage dsrg] --crf [--flip]"
                           % (len(missing), len(out), folder, missing[0]))
    return out


def random_crop(rgb, mask, size, rng, fill):
    """A size x size crop at a random place of an image and its mask, both padded at the
    bottom and right first when smaller (the image with ``fill``, the mask with void 255), as
    DeepLab's training data layer."""
    height, width = mask.shape
    pad_h, pad_w = max(0, size - height), max(0, size - width)
    if pad_h or pad_w:
        rgb = np.concatenate([rgb, np.broadcast_to(np.asarray(fill, np.float32),
                                                   (height, pad_w, 3))], axis=1)
        rgb = np.concatenate([rgb, np.broadcast_to(np.asarray(fill, np.float32),
                                                   (pad_h, width + pad_w, 3))], axis=0)
        mask = np.pad(mask, ((0, pad_h), (0, pad_w)), constant_values=255)
    top = rng.randint(0, mask.shape[0] - size + 1)
    left = rng.randint(0, mask.shape[1] - size + 1)
    return rgb[top:top + size, left:left + size], mask[top:top + size, left:left + size]


def load_crop(job):
    """Worker task: (data, cues (C,H,W)) of a random INPUT_SIZE crop of an image and its mask
    (entry["mask"]: a pseudo-mask), mirrored with ``mirror``; the targets are the crop's
    labelled pixels on the score grid, void left out."""
    from cores.cues import mask_cues
    from cores.data.dataset import DatasetError, read_mask
    from cores.data.transforms import dense_cues, load_rgb, to_net_input
    entry, size, out_size, mean, order, num_classes, _, mirror, crop_seed = job
    rgb = load_rgb(entry["image"]).astype(np.float32)
    mask = read_mask(entry["mask"])
    if mask.shape != rgb.shape[:2]:
        raise DatasetError("mask %s is %dx%d but image %s is %dx%d" % (
            entry["mask"], mask.shape[1], mask.shape[0], entry["image"], rgb.shape[1],
            rgb.shape[0]))
    fill = np.asarray(mean, np.float32)[::-1] if order == "BGR" else np.asarray(mean)
    rgb, mask = random_crop(rgb, mask, size, np.random.RandomState(crop_seed), fill)
    if mirror:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    cues = dense_cues(mask_cues(np.ascontiguousarray(mask), out_size), num_classes, out_size)
    return to_net_input(rgb, mean, order), cues


class Retrain(Method):
    name = "retrain"
    help = "a retraining round on the pseudo-masks of eval.py --label"
    order = 30
    suffix = "_RT"
    mirror = "MIRROR_RT"
    policy = "LR_POLICY_RT"
    defaults = {
        "PSEUDO_MASK_PATH": "",              # default OUTPUT_PATH/pseudo_masks
        "BATCH_SIZE_RT": 10,                 # DSRG's second step (DeepLab on the masks)
        "LR_RT": 1e-3,
        "LR_STEP_RT": 20000,                 # unused by the poly policy
        "LR_POLICY_RT": "poly",              # lr (1 - iter/max_iter)^0.9 | step
        "MAX_ITER_RT": 20000,
        "EPOCH_SIZE_RT": 1000,
        "MIRROR_RT": True,
        "CROP_RT": True,                     # random INPUT_SIZE crops, not the resize
    }
    choices = {"LR_POLICY_RT": ("poly", "step")}
    resume_keys = ("LR_POLICY_RT", "CROP_RT", "HEAD")
    # a round on SEC's pseudo-masks and one on DSRG's (as released, its ASPP head)
    rows = [Row("SEC+RT", (), "SEC"), Row("DSRG+RT", ("HEAD=aspp",), "DSRG")]

    def symbol(self, cfg):
        return cross_entropy_symbol(cfg)

    def entries(self, cfg, entries):
        return pseudo_mask_entries(cfg, entries)

    def targets(self, cfg, entries, grid, cue_file=None):
        return mask_targets(entries, grid), grid

    def task(self, cfg):
        from cores.data import transforms
        if cfg.CROP_RT:
            return load_crop, ("data", "cues")
        return transforms.load_supervised, ("data", "cues")


register(Retrain())
