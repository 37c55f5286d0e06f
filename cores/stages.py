"""Where every stage's files live, and the shapes its networks take: the one place that names
them. The stages run in this order (docs/method.md, section 1):

    pretrain (toy data only) -> bg (saliency) -> fg (CAM) -> sec (and supervised, the bound)
                                                          -> dsrg (instead of sec or beside it)
    sec or dsrg -> eval.py --label (pseudo-masks of train_aug) -> retrain

Snapshots: SNAPSHOT_PATH/<name>_<BASE_NET>-NNNN.params (+ .optimizer.params, -history.json,
-config.json); cues: CACHE_PATH/<kind>_cues.npz; evaluation: OUTPUT_PATH/<name>_<BASE_NET>-NNNN
[_flip][_crf]/."""
import math
import os

# the schedule keys of a stage: each of these plus the stage's suffix (LR_BG, MAX_ITER_FG, ...)
SCHEDULE_KEYS = {"lr": "LR", "step": "LR_STEP", "max_iter": "MAX_ITER", "epoch": "EPOCH_SIZE",
                 "batch": "BATCH_SIZE"}


def _stage(name, suffix, resume_keys, mirror="MIRROR", factor="LR_FACTOR", **more):
    """A stage table entry: its snapshot name, the schedule keys derived from ``suffix``, the
    keys besides them that a resumed run must not change (cores/checkpoint.py), its mirroring
    and lr factor keys, and its network (classifier stages: a builder of
    cores/symbols/networks.py) or objective (segmentation stages: cores/objectives.py);
    ``policy``: the key of its lr policy (step, the default, or poly)."""
    entry = {k: key + suffix for k, key in SCHEDULE_KEYS.items()}
    entry.update(name=name, resume_keys=(mirror, factor) + tuple(resume_keys), mirror=mirror,
                 factor=factor, **more)
    return entry


CRF_KEYS = ("CRF_SCALE", "CRF_POS_XY_STD", "CRF_POS_W", "CRF_BI_XY_STD", "CRF_BI_RGB_STD",
            "CRF_BI_W", "CRF_MAXITER")
DSRG_KEYS = ("DSRG_FG_THRESHOLD", "DSRG_BG_THRESHOLD", "DSRG_CLIP", "DSRG_CRF_GRADIENT")
STAGES = {
    "pretrain": _stage("pretrain", "_PRE", ("PRETRAIN_BN", "PIXEL_MEAN_CUES"),
                       mirror="MIRROR_CUES", network="classifier_train_symbol"),
    "bg": _stage("saliency", "_BG", ("SALIENCY_DROPOUT", "PIXEL_MEAN_CUES"),
                 mirror="MIRROR_CUES", network="saliency_train_symbol"),
    "fg": _stage("cam", "_FG", ("CAM_INPUT_SCALE", "PIXEL_MEAN_CUES"), mirror="MIRROR_CUES",
                 network="cam_train_symbol"),
    "sec": _stage("sec", "", ("Q_FG", "Q_BG", "MIN_PROB", "SEC_LOSSES", "HEAD") + CRF_KEYS,
                  objective="sec"),
    # the bound: SEC's schedule, its lr scaled by SUPERVISED_LR_SCALE and its iterations and
    # step by SUPERVISED_ITER_SCALE (a schedule that fits the data: docs/method.md, section 7)
    "supervised": _stage("supervised", "", ("SUPERVISED_ITER_SCALE", "SUPERVISED_LR_SCALE",
                                            "HEAD"),
                         objective="supervised", scale="SUPERVISED_ITER_SCALE",
                         lr_scale="SUPERVISED_LR_SCALE"),
    # DSRG: grown seeds, balanced seeding and clipped constrain losses, with its schedule
    "dsrg": _stage("dsrg", "_DSRG", ("MIN_PROB", "HEAD") + CRF_KEYS + DSRG_KEYS,
                   mirror="MIRROR_DSRG", factor="LR_FACTOR_DSRG", objective="dsrg"),
    # a retraining round on pseudo-masks (eval.py --label), DSRG's second step's schedule
    "retrain": _stage("retrain", "_RT", ("LR_POLICY_RT", "CROP_RT", "HEAD"), mirror="MIRROR_RT",
                      objective="retrain", policy="LR_POLICY_RT"),
}
SEGMENTATION = tuple(k for k, s in STAGES.items() if "objective" in s)


def schedule_keys():
    """Every stage's schedule keys (all must be positive)."""
    return sorted({entry[k] for entry in STAGES.values() for k in SCHEDULE_KEYS})


class Schedule:
    """One stage's optimisation settings, read from the config by the stage table."""

    def __init__(self, cfg, kind):
        s = STAGES[kind]
        scale = cfg[s["scale"]] if "scale" in s else 1
        self.lr = cfg[s["lr"]] * (cfg[s["lr_scale"]] if "lr_scale" in s else 1)
        self.lr_step = max(1, int(round(cfg[s["step"]] * scale)))
        self.max_iter = max(1, int(round(cfg[s["max_iter"]] * scale)))
        self.max_iter_key = s["max_iter"]
        self.epoch_size = cfg[s["epoch"]]
        self.batch_size = cfg[s["batch"]]
        self.mirror = cfg[s["mirror"]]
        self.lr_factor = cfg[s["factor"]]
        self.policy = cfg[s["policy"]] if "policy" in s else "step"
        self.resume_keys = tuple(s[k] for k in ("batch", "lr", "step", "epoch")) + s["resume_keys"]

    @property
    def final_epoch(self):
        return math.ceil(self.max_iter / self.epoch_size)


def train_symbol(cfg, kind):
    """The training network of a classifier stage (pretrain, bg, fg): the stage table names
    its builder in cores/symbols/networks.py (segmentation stages: cores/objectives.py)."""
    from cores.symbols import networks
    return getattr(networks, STAGES[kind]["network"])(cfg)


def weights_path(cfg, net=None):
    """The pretrained weights every stage starts from: MODEL_PATH/<BASE_NET>.params."""
    return os.path.join(cfg.MODEL_PATH, (net or cfg.BASE_NET) + ".params")


def prefix(cfg, kind):
    """Snapshot prefix of a stage ('pretrain', 'bg', 'fg', 'sec', 'supervised')."""
    return os.path.join(cfg.SNAPSHOT_PATH, "%s_%s" % (STAGES[kind]["name"], cfg.BASE_NET))


# every file a stage owns, named here and nowhere else
def snapshot_path(prefix, epoch):
    return "%s-%04d.params" % (prefix, epoch)


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


def classification_path(cfg, kind):
    """Classification AP of a cue network (or the pretraining network) on train_aug."""
    if kind == "pretrain":
        return prefix(cfg, kind) + "-classification.json"
    return os.path.join(cfg.CACHE_PATH, "%s_classification.json" % kind)


def cue_path(cfg, kind):
    """'fg', 'bg', 'sec' (the two merged, what SEC trains on) or 'original' (the authors'
    cues, converted by tools/convert_original_cues.py)."""
    return os.path.join(cfg.CACHE_PATH, "%s_cues.npz" % kind)


def cue_part_path(cfg, kind, rank, num_workers):
    """One distributed worker's share of a cue file."""
    return "%s.part%d-of-%d.npz" % (cue_path(cfg, kind)[:-4], rank, num_workers)


def cue_report_path(cfg, kind):
    return cue_path(cfg, kind)[:-4] + "_report.json"


def output_dir(cfg, epoch, flip=False, use_crf=False, kind="sec", int8=False):
    """Evaluation folder of a snapshot of segmentation stage ``kind`` (SEGMENTATION)."""
    flags = "".join(["_flip" if flip else "", "_crf" if use_crf else "", "_int8" if int8 else ""])
    scales = list(cfg.get("TEST_SCALES", [1.0]))
    if scales != [1.0]:
        flags += "_ms" + "-".join("%g" % s for s in scales)
    name = STAGES[kind]["name"]
    return os.path.join(cfg.OUTPUT_PATH, "%s_%s-%04d%s" % (name, cfg.BASE_NET, epoch, flags))


def pseudo_mask_dir(cfg):
    """The pseudo-masks of train_aug that eval.py --label writes and a retraining reads."""
    return cfg.PSEUDO_MASK_PATH or os.path.join(cfg.OUTPUT_PATH, "pseudo_masks")


def score_size(cfg):
    """Side of the SEC network's score map for INPUT_SIZE (41 for 321): the cue grid."""
    import mxnet as mx
    from cores.symbols import networks
    sym = networks.sec_scores(cfg, mx.sym.Variable("data"))
    return sym.infer_shape(data=(1, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE))[1][0][2]


def image_shape(cfg, batch):
    return (batch, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE)


def sec_input_shapes(cfg, size=None):
    """Inputs of the SEC training network (the supervised bound uses a subset)."""
    n, c, size = cfg.BATCH_SIZE, cfg.CLASS_NUM, size or score_size(cfg)
    return {"data": image_shape(cfg, n), "small_images": (n, size, size, 3),
            "labels": (n, c), "cues": (n, c, size, size)}
