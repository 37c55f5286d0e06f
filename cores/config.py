"""Every default of the pipeline in one place (docs/method.md), with YAML and KEY=VALUE overrides.

Defaults follow the authors' Caffe release; where the earlier MXNet port differed, its choice is
an option (e.g. INPUT_SIZE 320 with POOLING_CONVENTION 'valid' gives its 40x40 score maps).
"""
import copy
import json
import os

import yaml

from cores.errors import SECError

DEFAULTS = {
    # --- paths ---
    "WORK_PATH": "",                                # outputs' folder: the six below derive from it
    "DATASET_PATH": "dataset",                      # the project's dataset index (create_dataset.py)
    "VOCDEVKIT_PATH": "dataset/VOCdevkit/VOC2012",
    "SBD_PATH": "dataset/benchmark_RELEASE/dataset",
    "MODEL_PATH": "models",                         # pretrained <BASE_NET>.params
    "SNAPSHOT_PATH": "snapshots",
    "CACHE_PATH": "cache",                          # cue files
    "OUTPUT_PATH": "outputs",                       # evaluation results
    "LOG_PATH": "log",
    "TENSORBOARD": True,                            # event files under LOG_PATH/tensorboard/
    "PLOT_LOG_SCALE": False,                        # loss figures with a log-scale y axis
    # --- data ---
    "CLASS_NUM": 21,                                # classes including background (index 0)
    "INPUT_SIZE": 321,                              # 321 -> 41x41 scores (method §2)
    "POOLING_CONVENTION": "full",                   # Caffe rounds up; 'valid' + 320 -> 40x40
    "CHANNEL_ORDER": "BGR",                         # order the pretrained weights expect
    "PIXEL_MEAN": [104.0, 117.0, 123.0],            # SEC, the bound: in CHANNEL_ORDER (§2)
    "PIXEL_MEAN_CUES": [104.008, 116.669, 122.675], # cue nets, pretraining: notebooks (§3)
    "MIRROR": False,                                # the original does not mirror (method §6)
    "DATA_WORKERS": 0,                              # decoding processes; 0 = number of cores
    "PREFETCH": 2,                                  # batches decoded ahead
    # --- networks ---
    "BASE_NET": "vgg16",                            # vgg16 | resnet50
    "WIDTH_MULT": 1.0,                              # scales channel counts (toy runs); 1.0 = exact
    "DROPOUT": True,                                # the port dropped the SEC dropouts
    "WORKSPACE": 512,
    "HEAD": "largefov",                             # largefov (SEC) | aspp (DeepLab-ASPP, DSRG)
    # ResNet50 (no authors' version; the earlier port's choices as options, docs/method.md 8)
    "RESNET_BN": "frozen",                          # frozen | port (scale/shift trained)
    "RESNET_CAM_DILATION": True,                    # port: res4/res5 stride 1, no dilation
    "RESNET_SALIENCY_LAYER": "preact",              # preact (the VGG rule) | relu (port)
    "RESNET_CRF_UNARY": "scores",                   # scores (method §5) | probs (port)
    "RANDOM_INIT": False,                           # allow training without models/*.params
    "SEED": 0,
    # --- common optimisation ---
    "MOMENTUM": 0.9,
    "WD": 5e-4,
    "LR_FACTOR": 0.1,
    "WARMUP_ITER": 0,                               # linear lr warm-up (0: none, as Caffe)
    "CLIP_GRADIENT": 0.0,                           # clip each gradient element (0: no clip)
    "MIRROR_CUES": True,                            # mirroring in the cue/pretrain networks
    "MIN_CLASSIFIER_MAP": 0.5,                      # below it a cue network localises nothing
    # --- background cue (saliency) network ---
    "BATCH_SIZE_BG": 15,
    "LR_BG": 1e-3,
    "LR_STEP_BG": 4000,                             # the authors' (kolesman/SEC#8); port 2000
    "SALIENCY_DROPOUT": True,                       # 0.5 after fc6/fc7 in training; port: none
    "MAX_ITER_BG": 8000,
    "EPOCH_SIZE_BG": 1000,
    "BG_FRACTION": 0.1,                             # lowest 10% saliency -> background (method §3)
    "BG_MEDIAN_SIZE": 3,
    # --- foreground cue (CAM) network ---
    "BATCH_SIZE_FG": 15,
    "LR_FG": 1e-3,
    "LR_STEP_FG": 4000,                             # the authors' (kolesman/SEC#8); port 2000
    "MAX_ITER_FG": 8000,
    "EPOCH_SIZE_FG": 1000,
    "FG_THRESHOLD": 0.2,                            # CAM > 0.2 max (method §3)
    "CAM_INPUT_SCALE": 1.0,                         # CAM net input (INPUT_SIZE-1) k + 1 (§3)
    # --- backbone pretraining on image labels (no pretrained weights: toy/own data) ---
    "BATCH_SIZE_PRE": 15,
    "LR_PRE": 1e-3,
    "LR_STEP_PRE": 2000,
    "MAX_ITER_PRE": 8000,
    "EPOCH_SIZE_PRE": 1000,
    "PRETRAIN_BN": True,                            # BatchNorm while pretraining, then folded
    # --- SEC ---
    "BATCH_SIZE": 15,
    "LR": 1e-3,
    "LR_STEP": 2000,
    "MAX_ITER": 8000,
    "EPOCH_SIZE": 1000,                             # batches per epoch = snapshot interval
    "Q_FG": 0.996,
    "Q_BG": 0.999,
    "MIN_PROB": 1e-4,                               # softmax floor (method §4)
    "SEC_LOSSES": ["seed", "expand", "constrain"],  # ablations: seed with none, one or both others
    "SUPERVISED_ITER_SCALE": 1.0,                   # the bound: k x SEC's iterations and step
    "SUPERVISED_LR_SCALE": 1.0,                     # the bound: k x SEC's lr
    # --- DSRG (Huang et al. 2018, its released code): train_SEC.py --stage dsrg ---
    "BATCH_SIZE_DSRG": 20,
    "LR_DSRG": 5e-4,
    "LR_STEP_DSRG": 1000,
    "LR_FACTOR_DSRG": 0.33,
    "MAX_ITER_DSRG": 8000,
    "EPOCH_SIZE_DSRG": 1000,
    "MIRROR_DSRG": True,
    "DSRG_FG_THRESHOLD": 0.85,                      # a pixel joins a foreground class above it
    "DSRG_BG_THRESHOLD": 0.99,                      # ... the background above this
    "DSRG_CLIP": [0.05, 20.0],                      # constrain loss: Q/p clipped to this range
    "DSRG_CRF_GRADIENT": True,                      # its CRF layer passes (1 - Q) x the gradient
    # --- retraining on pseudo-masks (eval.py --label, train_SEC.py --stage retrain) ---
    "PSEUDO_MASK_PATH": "",                         # default OUTPUT_PATH/pseudo_masks
    "BATCH_SIZE_RT": 10,                            # DSRG's second step (DeepLab on the masks)
    "LR_RT": 1e-3,
    "LR_STEP_RT": 20000,                            # unused by the poly policy
    "LR_POLICY_RT": "poly",                         # lr (1 - iter/max_iter)^0.9 | step
    "MAX_ITER_RT": 20000,
    "EPOCH_SIZE_RT": 1000,
    "MIRROR_RT": True,
    "CROP_RT": True,                                # random INPUT_SIZE crops, not the resize
    # --- dense CRF in training (method §5) ---
    "CRF_SCALE": 12.0,
    "CRF_POS_XY_STD": 3.0,
    "CRF_POS_W": 3.0,
    "CRF_BI_XY_STD": 80.0,
    "CRF_BI_RGB_STD": 13.0,
    "CRF_BI_W": 10.0,
    "CRF_MAXITER": 10,
    "CRF_WORKERS": 0,                               # CRF processes; 0 = number of cores
    # --- dense CRF at test time (method §5) ---
    "CRF_TEST_SCALE": 1.0,
    "CRF_TEST_BI_RGB_STD": 13.0,                    # the port used 10
    "CRF_TEST_MIN_PROB": 1e-5,
    "CRF_TEST_MAX_SIDE": 1000,                      # larger images: CRF on a scaled copy
    "CRF_TEST_CHANNEL_ORDER": "RGB",                # the authors' demo; BGR: this code's former
    # --- evaluation (method §6) ---
    "TEST_INTERPOLATION": "corners",                # zoom(order=1) grid; half_pixel: OpenCV
    "TEST_SCALES": [1.0],                           # multi-scale test: e.g. [0.75, 1.0, 1.25]
    # --- INT8 inference on the CPU (--int8; cores/quantize.py) ---
    "INT8_CALIB_IMAGES": 32,                        # seeded train_aug sample for calibration
    "INT8_CALIB_MODE": "entropy",                   # entropy (KL thresholds) | naive (min/max)
    "INT8_CHECK_IMAGES": 32,                        # fg cues: fp32 vs INT8 on this many images
}


# The folders a run writes: unless set, each is WORK_PATH/<its default> (the default alone when
# WORK_PATH is empty), so that one key moves a whole run. Any *_PATH value may also name the
# work folder as {WORK_PATH} (demo/toy.yaml: the toy data inside it).
WORK_FOLDERS = ("DATASET_PATH", "MODEL_PATH", "SNAPSHOT_PATH", "CACHE_PATH", "OUTPUT_PATH",
                "LOG_PATH")


class ConfigError(SECError, ValueError):
    """A configuration file or override that cannot be applied."""


class Config(dict):
    """A dict whose keys read as attributes: ``cfg.BATCH_SIZE``."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value


# the losses of SEC (method §4) that SEC_LOSSES may hold
SEC_LOSS_NAMES = ("seed", "expand", "constrain")

# float lists of any length (the others have their default's)
VARIABLE_LENGTH = ("TEST_SCALES",)


def _coerce(key, value, source):
    default = DEFAULTS[key]
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):               # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, list) and isinstance(default[0], str):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
    elif key in VARIABLE_LENGTH:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return [float(v) for v in value]
    elif isinstance(default, list):
        if isinstance(value, (list, tuple)) and len(value) == len(default):
            return [float(v) for v in value]
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    raise ConfigError("%s: %s=%r has the wrong type; expected %s like the default %r"
                      % (source, key, value, type(default).__name__, default))


def _apply(cfg, key, value, source):
    if key not in DEFAULTS:
        import difflib
        close = difflib.get_close_matches(str(key).upper(), DEFAULTS, n=3, cutoff=0.6)
        hint = ("did you mean %s? " % " or ".join(close)) if close else ""
        raise ConfigError("%s: unknown config key %r; %s(every key, with its default, is in "
                          "cores/config.py)" % (source, key, hint))
    cfg[key] = _coerce(key, value, source)


def _derive_paths(cfg, explicit):
    """The work folders from WORK_PATH, and {WORK_PATH} in any path value."""
    for key in WORK_FOLDERS:
        if key not in explicit and cfg.WORK_PATH:
            cfg[key] = os.path.join(cfg.WORK_PATH, DEFAULTS[key])
    for key in DEFAULTS:
        if key.endswith("_PATH") and "{WORK_PATH}" in cfg[key]:
            cfg[key] = os.path.normpath(cfg[key].replace("{WORK_PATH}", cfg.WORK_PATH or "."))


def _read_yaml(path):
    if not os.path.isfile(path):
        raise ConfigError("config file %s does not exist" % path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = yaml.safe_load(f) or {}
    except UnicodeDecodeError as e:
        raise ConfigError("%s is not UTF-8 text (byte %d)" % (path, e.start)) from None
    except yaml.YAMLError as e:
        raise ConfigError("%s is not valid YAML: %s" % (path, e)) from None
    if not isinstance(data, dict):
        raise ConfigError("%s: expected a mapping of KEY: value" % path)
    return data


def load_config(cfg_file=None, overrides=()):
    """The effective config: DEFAULTS, then partial YAML files (one path or a list, later ones
    win), then ``KEY=VALUE`` strings; then the work folders not set derive from WORK_PATH."""
    cfg = Config(copy.deepcopy(DEFAULTS))
    explicit = set()
    files = [cfg_file] if isinstance(cfg_file, str) else list(cfg_file or [])
    for path in files:
        for key, value in _read_yaml(path).items():
            _apply(cfg, key, value, path)
            explicit.add(key)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError("--set %r: expected KEY=VALUE" % item)
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        _apply(cfg, key.strip(), value, "--set")
        explicit.add(key.strip())
    _derive_paths(cfg, explicit)
    from cores.backbones import BACKBONES               # the one table of backbones
    if cfg.BASE_NET not in BACKBONES:
        raise ConfigError("BASE_NET=%r; choose one of %s" % (cfg.BASE_NET,
                                                            ", ".join(sorted(BACKBONES))))
    if cfg.CHANNEL_ORDER not in ("RGB", "BGR"):
        raise ConfigError("CHANNEL_ORDER=%r; choose RGB or BGR" % cfg.CHANNEL_ORDER)
    for key, choices in (("RESNET_BN", ("frozen", "port")),
                         ("RESNET_SALIENCY_LAYER", ("preact", "relu")),
                         ("RESNET_CRF_UNARY", ("scores", "probs"))):
        if cfg[key] not in choices:
            raise ConfigError("%s=%r; choose %s" % (key, cfg[key], " or ".join(choices)))
    if cfg.CRF_TEST_CHANNEL_ORDER not in ("RGB", "BGR"):
        raise ConfigError("CRF_TEST_CHANNEL_ORDER=%r; choose RGB or BGR"
                          % cfg.CRF_TEST_CHANNEL_ORDER)
    if cfg.TEST_INTERPOLATION not in ("corners", "half_pixel"):
        raise ConfigError("TEST_INTERPOLATION=%r; choose corners or half_pixel"
                          % cfg.TEST_INTERPOLATION)
    if cfg.HEAD not in ("largefov", "aspp"):
        raise ConfigError("HEAD=%r; choose largefov or aspp" % cfg.HEAD)
    if cfg.LR_POLICY_RT not in ("poly", "step"):
        raise ConfigError("LR_POLICY_RT=%r; choose poly or step" % cfg.LR_POLICY_RT)
    unknown = [n for n in cfg.SEC_LOSSES if n not in SEC_LOSS_NAMES]
    if unknown or "seed" not in cfg.SEC_LOSSES or len(set(cfg.SEC_LOSSES)) != len(cfg.SEC_LOSSES):
        raise ConfigError("SEC_LOSSES=%r: distinct names from %s, seed among them (the "
                          "paper's ablations: seed, seed+expand, seed+constrain, all three)"
                          % (cfg.SEC_LOSSES, ", ".join(SEC_LOSS_NAMES)))
    if not 0 < cfg.DSRG_CLIP[0] < 1 < cfg.DSRG_CLIP[1]:
        raise ConfigError("DSRG_CLIP=%r: expected [low, high] with 0 < low < 1 < high"
                          % (cfg.DSRG_CLIP,))
    if any(not s > 0 for s in cfg.TEST_SCALES):
        raise ConfigError("TEST_SCALES=%r: every scale must be positive" % (cfg.TEST_SCALES,))
    if cfg.INT8_CALIB_MODE not in ("entropy", "naive"):
        raise ConfigError("INT8_CALIB_MODE=%r; choose entropy or naive" % cfg.INT8_CALIB_MODE)
    if cfg.POOLING_CONVENTION not in ("full", "valid"):
        raise ConfigError("POOLING_CONVENTION=%r; choose full or valid" % cfg.POOLING_CONVENTION)
    if not 0 < cfg.WIDTH_MULT <= 1.0:
        raise ConfigError("WIDTH_MULT=%r must lie in (0, 1]" % cfg.WIDTH_MULT)
    _check_ranges(cfg)
    return cfg


# besides every stage's schedule keys (cores/stages.py derives them)
POSITIVE = ("CRF_SCALE", "CRF_TEST_SCALE", "CRF_MAXITER", "INT8_CALIB_IMAGES", "CAM_INPUT_SCALE",
            "SUPERVISED_ITER_SCALE", "SUPERVISED_LR_SCALE")
UNIT_INTERVAL = ("Q_FG", "Q_BG", "BG_FRACTION", "FG_THRESHOLD", "LR_FACTOR", "MIN_PROB",
                 "CRF_TEST_MIN_PROB", "LR_FACTOR_DSRG", "DSRG_FG_THRESHOLD", "DSRG_BG_THRESHOLD")
NON_NEGATIVE = ("WARMUP_ITER", "CLIP_GRADIENT", "MOMENTUM", "WD", "DATA_WORKERS", "CRF_WORKERS",
                "MIN_CLASSIFIER_MAP", "CRF_TEST_MAX_SIDE", "INT8_CHECK_IMAGES")


def _check_ranges(cfg):
    """Values that would fail deep inside MXNet, or silently do nothing, stop here."""
    from cores.stages import schedule_keys
    for key in tuple(schedule_keys()) + POSITIVE:
        if not cfg[key] > 0:
            raise ConfigError("%s=%r must be positive" % (key, cfg[key]))
    for key in UNIT_INTERVAL:
        if not 0 < cfg[key] < 1:
            raise ConfigError("%s=%r must lie strictly between 0 and 1" % (key, cfg[key]))
    for key in NON_NEGATIVE:
        if cfg[key] < 0:
            raise ConfigError("%s=%r must not be negative" % (key, cfg[key]))
    if cfg.CLASS_NUM < 2:
        raise ConfigError("CLASS_NUM=%d: background and at least one class are needed"
                          % cfg.CLASS_NUM)
    if cfg.CAM_INPUT_SCALE < 1:
        raise ConfigError("CAM_INPUT_SCALE=%r must be at least 1: the CAM network's grid must "
                          "be as fine as the score grid it gives cues on" % cfg.CAM_INPUT_SCALE)
    if cfg.INPUT_SIZE < 33:
        raise ConfigError("INPUT_SIZE=%d is too small: the networks subsample by 8 and the "
                          "saliency classifier by 32" % cfg.INPUT_SIZE)


def save_config(cfg, path):
    """Write the effective config as JSON, atomically."""
    from cores.io import atomic_write_text
    atomic_write_text(path, json.dumps(dict(cfg), indent=2, sort_keys=True) + "\n")


def add_config_args(parser):
    """The ``--cfg`` and ``--set`` options every script takes."""
    parser.add_argument("--cfg", default=[], action="append", metavar="FILE.yaml",
                        help="YAML file of config overrides (repeatable, later files win; "
                             "e.g. --cfg configs/port.yaml for the earlier port's recipe)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", action="extend",
                        help="one-off overrides, e.g. --set BATCH_SIZE=2 BASE_NET=resnet50 "
                             "(repeatable: every group applies, later ones win)")
    return parser
