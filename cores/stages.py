"""Where every stage's files live and which config keys make its schedule: the one place that
names them. The stages run in this order (docs/method.md, section 1):

    pretrain (toy data only) -> saliency (bg cues) -> cam (fg cues) -> a segmentation method
    (cores/methods/: sec, its ablations, dsrg, supervised, the bound) [-> eval.py --label ->
    retrain]

A stage is a ``Stage``: the three classifier stages are here, every segmentation method is one
(cores/methods/). Snapshots: SNAPSHOT_PATH/<name>_<BASE_NET>-NNNN.params (+ .optimizer.params,
-history.json, -config.json); cues: CACHE_PATH/<kind>_cues.npz; evaluation:
OUTPUT_PATH/<name>_<BASE_NET>-NNNN[_flip][_crf]/."""
import glob
import math
import os
import re

# the schedule keys of a stage: each of these plus the stage's suffix (LR_BG, MAX_ITER_FG, ...)
SCHEDULE_KEYS = {"lr": "LR", "step": "LR_STEP", "max_iter": "MAX_ITER", "epoch": "EPOCH_SIZE",
                 "batch": "BATCH_SIZE"}
CRF_KEYS = ("CRF_SCALE", "CRF_POS_XY_STD", "CRF_POS_W", "CRF_BI_XY_STD", "CRF_BI_RGB_STD",
            "CRF_BI_W", "CRF_MAXITER")


class Stage:
    """A training stage: its snapshot name (``name``), its schedule keys (each of SCHEDULE_KEYS
    plus ``suffix``; ``mirror``, ``factor``, ``policy``: the keys of its mirroring, lr factor
    and lr policy, step if None; ``scale`` / ``lr_scale``: keys that scale its iterations and
    lr) and ``resume_keys``, the keys besides its schedule that a resumed run must not change
    (cores/checkpoint.py). Classifier stages also name their network (a builder of
    cores/symbols/networks.py), their cue file (``cue``: 'bg', 'fg') and the pixel mean and
    input scale keys their network runs with."""
    name = None
    suffix = ""
    mirror = "MIRROR"
    factor = "LR_FACTOR"
    policy = None
    scale = None
    lr_scale = None
    resume_keys = ()
    network = None
    cue = None
    mean = "PIXEL_MEAN"
    input_scale = None

    def __init__(self, **attributes):
        for key, value in attributes.items():
            if not hasattr(type(self), key):
                raise TypeError("Stage has no attribute %r" % key)
            setattr(self, key, value)

    def key(self, which):
        """The config key of schedule entry ``which`` (SCHEDULE_KEYS: 'lr', 'batch', ...)."""
        return SCHEDULE_KEYS[which] + self.suffix

    def schedule_keys(self):
        return [self.key(k) for k in SCHEDULE_KEYS]

    def __repr__(self):
        return "<stage %s>" % self.name


PRETRAIN = Stage(name="pretrain", suffix="_PRE", mirror="MIRROR_CUES", mean="PIXEL_MEAN_CUES",
                 resume_keys=("PRETRAIN_BN", "PIXEL_MEAN_CUES"),
                 network="classifier_train_symbol")
SALIENCY = Stage(name="saliency", suffix="_BG", mirror="MIRROR_CUES", mean="PIXEL_MEAN_CUES",
                 resume_keys=("SALIENCY_DROPOUT", "PIXEL_MEAN_CUES"), cue="bg",
                 network="saliency_train_symbol")
CAM = Stage(name="cam", suffix="_FG", mirror="MIRROR_CUES", mean="PIXEL_MEAN_CUES",
            resume_keys=("CAM_INPUT_SCALE", "PIXEL_MEAN_CUES"), cue="fg",
            network="cam_train_symbol", input_scale="CAM_INPUT_SCALE")
CLASSIFIERS = (PRETRAIN, SALIENCY, CAM)
CUE_STAGES = {s.cue: s for s in CLASSIFIERS if s.cue}


def classifier_schedule_keys():
    """The schedule keys of the classifier stages (the methods' are their own)."""
    return sorted({k for s in CLASSIFIERS for k in s.schedule_keys()})


class Schedule:
    """One stage's optimisation settings, read from the config by its keys."""

    def __init__(self, cfg, stage):
        scale = cfg[stage.scale] if stage.scale else 1
        self.lr = cfg[stage.key("lr")] * (cfg[stage.lr_scale] if stage.lr_scale else 1)
        self.lr_step = max(1, int(round(cfg[stage.key("step")] * scale)))
        self.max_iter = max(1, int(round(cfg[stage.key("max_iter")] * scale)))
        self.max_iter_key = stage.key("max_iter")
        self.epoch_size = cfg[stage.key("epoch")]
        self.batch_size = cfg[stage.key("batch")]
        self.mirror = cfg[stage.mirror]
        self.lr_factor = cfg[stage.factor]
        self.policy = cfg[stage.policy] if stage.policy else "step"
        self.resume_keys = (tuple(stage.key(k) for k in ("batch", "lr", "step", "epoch"))
                            + (stage.mirror, stage.factor) + tuple(stage.resume_keys))

    @property
    def final_epoch(self):
        return math.ceil(self.max_iter / self.epoch_size)


def weights_path(cfg, net=None):
    """The pretrained weights every stage starts from: MODEL_PATH/<BASE_NET>.params."""
    return os.path.join(cfg.MODEL_PATH, (net or cfg.BASE_NET) + ".params")


def prefix(cfg, stage):
    """Snapshot prefix of a stage: SNAPSHOT_PATH/<name>_<BASE_NET>."""
    return os.path.join(cfg.SNAPSHOT_PATH, "%s_%s" % (stage.name, cfg.BASE_NET))


# every file a stage owns, named here and nowhere else
def snapshot_path(prefix, epoch):
    return "%s-%04d.params" % (prefix, epoch)


def snapshot_epochs(prefix):
    """Sorted epochs of the complete snapshots under ``prefix``."""
    return sorted(int(m.group(1)) for p in glob.glob(glob.escape(prefix) + "-*.params")
                  for m in [re.match(re.escape(prefix) + r"-(\d{4})\.params$", p)] if m)


def latest_epoch(prefix):
    """The highest epoch with a complete snapshot under ``prefix``, or 0."""
    return max(snapshot_epochs(prefix), default=0)


def optimizer_path(prefix, epoch):
    """The optimizer state (momentum) beside snapshot ``epoch``."""
    return "%s-%04d.optimizer.params" % (prefix, epoch)


def int8_paths(snapshot):
    """The INT8 model cached beside a snapshot: symbol, parameters, settings."""
    base = os.path.splitext(snapshot)[0] + "-int8"
    return base + "-symbol.json", base + ".params", base + ".json"


def config_path(prefix):
    """The effective config of the run whose snapshots ``prefix`` names."""
    return prefix + "-config.json"


def history_path(prefix):
    """The loss history, a dict per iteration."""
    return prefix + "-history.json"


def losses_path(prefix):
    """The loss figure, drawn after every epoch."""
    return prefix + "-losses.png"


def run_files(prefix):
    """The files of a run besides its snapshots (written at its start or with every epoch)."""
    return [config_path(prefix), history_path(prefix), losses_path(prefix),
            prefix + "-classification.json"]


def metrics_path(out_dir):
    """An evaluation's scores (eval.py) in its output folder."""
    return os.path.join(out_dir, "metrics.json")


def cue_config_path(cfg, kind):
    """The config that made a cue file, written with it."""
    return os.path.join(cfg.CACHE_PATH, "%s_cues_config.json" % kind)


def classification_path(cfg, stage):
    """Classification AP of a cue network (or the pretraining network) on train_aug."""
    if stage.cue is None:
        return prefix(cfg, stage) + "-classification.json"
    return os.path.join(cfg.CACHE_PATH, "%s_classification.json" % stage.cue)


# the cue file that SEC's methods train on, merged from the fg and bg ones (method §3)
MERGED = "sec"


def cue_path(cfg, kind):
    """'fg', 'bg', MERGED (the two merged: sec_cues.npz) or 'original' (the authors' cues,
    converted by tools/convert_original_cues.py)."""
    return os.path.join(cfg.CACHE_PATH, "%s_cues.npz" % kind)


def cue_part_path(cfg, kind, rank, num_workers):
    """One distributed worker's share of a cue file."""
    return "%s.part%d-of-%d.npz" % (cue_path(cfg, kind)[:-4], rank, num_workers)


def cue_report_path(cfg, kind):
    return cue_path(cfg, kind)[:-4] + "_report.json"


def output_dir(cfg, epoch, stage, flip=False, use_crf=False, int8=False):
    """Evaluation folder of a snapshot of segmentation method ``stage``."""
    flags = "".join(["_flip" if flip else "", "_crf" if use_crf else "", "_int8" if int8 else ""])
    scales = list(cfg.get("TEST_SCALES", [1.0]))
    if scales != [1.0]:
        flags += "_ms" + "-".join("%g" % s for s in scales)
    return os.path.join(cfg.OUTPUT_PATH, "%s_%s-%04d%s" % (stage.name, cfg.BASE_NET, epoch,
                                                           flags))


def score_size(cfg):
    """Side of the SEC network's score map for INPUT_SIZE (41 for 321): the cue grid."""
    from cores.backbones import score_size as side
    return side(cfg.BASE_NET, cfg.INPUT_SIZE, cfg.POOLING_CONVENTION)


def image_shape(cfg, batch):
    return (batch, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE)
