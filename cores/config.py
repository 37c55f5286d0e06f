"""Every default of the pipeline in one place (docs/method.md), with YAML and KEY=VALUE overrides.

Defaults follow the authors' Caffe release; where the earlier MXNet port differed, its choice is
an option (e.g. INPUT_SIZE 320 with POOLING_CONVENTION 'valid' gives its 40x40 score maps).
"""
import copy
import os

import yaml

from cores.errors import ConfigError  # noqa: F401  (raised here, defined with the others)
from cores.io import save_config  # noqa: F401  (the scripts save the config they ran with)

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
    "DATA_WORKERS": 0,                              # decoding processes; 0 = number of cores
    "PREFETCH": 2,                                  # batches decoded ahead
    # --- networks ---
    "BASE_NET": "vgg16",                            # cores/backbones.py: vgg16, resnet50, ...
    "WIDTH_MULT": 1.0,                              # scales channel counts (toy runs); 1.0 = exact
    "DROPOUT": True,                                # the port dropped the SEC dropouts
    "WORKSPACE": 512,
    "HEAD": "largefov",                             # largefov (SEC) | aspp (DeepLab-ASPP, DSRG)
    "MIN_PROB": 1e-4,                               # softmax floor of the methods (method §4)
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


def _owned_keys():
    """The keys the backbones (cores/backbones.py) and the methods (cores/methods/) own, with
    their defaults: each key has one owner."""
    from cores import backbones, methods
    owned = {key: default for key, (default, _) in backbones.options().items()}
    owners = dict.fromkeys(owned, "the backbones")
    for method in methods.all_methods().values():
        for key, value in method.defaults.items():
            if key in DEFAULTS or key in owned:
                raise ConfigError("config key %s of method %s is already %s's" % (
                    key, method.name, owners.get(key, "the core config")))
            owned[key], owners[key] = value, method.name
    return owned


DEFAULTS.update(_owned_keys())


def choices():
    """{key: allowed values} of every key with a fixed set of values."""
    from cores import backbones, methods
    out = {"CHANNEL_ORDER": ("RGB", "BGR"), "CRF_TEST_CHANNEL_ORDER": ("RGB", "BGR"),
           "TEST_INTERPOLATION": ("corners", "half_pixel"), "HEAD": ("largefov", "aspp"),
           "INT8_CALIB_MODE": ("entropy", "naive"), "POOLING_CONVENTION": ("full", "valid"),
           "BASE_NET": tuple(backbones.NAMES)}
    out.update({key: values for key, (_, values) in backbones.options().items()})
    for method in methods.all_methods().values():
        out.update(method.choices)
    return out


# The folders a run writes: unless set, each is WORK_PATH/<its default> (the default alone when
# WORK_PATH is empty), so that one key moves a whole run. Any *_PATH value may also name the
# work folder as {WORK_PATH} (demo/toy.yaml: the toy data inside it).
WORK_FOLDERS = ("DATASET_PATH", "MODEL_PATH", "SNAPSHOT_PATH", "CACHE_PATH", "OUTPUT_PATH",
                "LOG_PATH")


class Config(dict):
    """A dict whose keys read as attributes: ``cfg.BATCH_SIZE``."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value


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
    for key, values in choices().items():
        if cfg[key] not in values:
            raise ConfigError("%s=%r; choose one of %s" % (key, cfg[key],
                                                          ", ".join(map(str, values))))
    if any(not s > 0 for s in cfg.TEST_SCALES):
        raise ConfigError("TEST_SCALES=%r: every scale must be positive" % (cfg.TEST_SCALES,))
    if not 0 < cfg.WIDTH_MULT <= 1.0:
        raise ConfigError("WIDTH_MULT=%r must lie in (0, 1]" % cfg.WIDTH_MULT)
    _check_ranges(cfg)
    return cfg


# besides every stage's schedule keys and the methods' own (cores/methods/)
POSITIVE = ("CRF_SCALE", "CRF_TEST_SCALE", "CRF_MAXITER", "INT8_CALIB_IMAGES", "CAM_INPUT_SCALE")
UNIT_INTERVAL = ("BG_FRACTION", "FG_THRESHOLD", "LR_FACTOR", "MIN_PROB", "CRF_TEST_MIN_PROB")
NON_NEGATIVE = ("WARMUP_ITER", "CLIP_GRADIENT", "MOMENTUM", "WD", "DATA_WORKERS", "CRF_WORKERS",
                "MIN_CLASSIFIER_MAP", "CRF_TEST_MAX_SIDE", "INT8_CHECK_IMAGES")


def _check_ranges(cfg):
    """Values that would fail deep inside MXNet, or silently do nothing, stop here."""
    from cores import methods, stages
    every = list(methods.all_methods().values())
    schedule = set(stages.classifier_schedule_keys())
    schedule.update(k for m in every for k in m.schedule_keys())
    for key in sorted(schedule) + list(POSITIVE) + [k for m in every for k in m.positive]:
        if not cfg[key] > 0:
            raise ConfigError("%s=%r must be positive" % (key, cfg[key]))
    for key in list(UNIT_INTERVAL) + [k for m in every for k in m.unit_interval]:
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
    for method in every:
        method.check(cfg)


def add_config_args(parser):
    """The ``--cfg`` and ``--set`` options every script takes."""
    parser.add_argument("--cfg", default=[], action="append", metavar="FILE.yaml",
                        help="YAML file of config overrides (repeatable, later files win; "
                             "e.g. --cfg configs/port.yaml for the earlier port's recipe)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", action="extend",
                        help="one-off overrides, e.g. --set BATCH_SIZE=2 BASE_NET=resnet50 "
                             "(repeatable: every group applies, later ones win)")
    return parser
