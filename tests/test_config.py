"""Config: defaults from the spec, YAML and KEY=VALUE overrides, clear errors."""
import json
import os

import pytest

from cores.config import ConfigError, DEFAULTS, load_config, save_config
from tests.conftest import REPO


def test_spec_defaults():
    cfg = load_config()
    assert (cfg.CLASS_NUM, cfg.INPUT_SIZE, cfg.BASE_NET) == (21, 321, "vgg16")
    assert (cfg.Q_FG, cfg.Q_BG, cfg.MIN_PROB) == (0.996, 0.999, 1e-4)
    assert (cfg.BATCH_SIZE, cfg.LR, cfg.LR_STEP, cfg.MAX_ITER) == (15, 1e-3, 2000, 8000)
    assert (cfg.MOMENTUM, cfg.WD, cfg.MIRROR) == (0.9, 5e-4, False)
    assert (cfg.CRF_SCALE, cfg.CRF_POS_XY_STD, cfg.CRF_POS_W) == (12.0, 3.0, 3.0)
    assert (cfg.CRF_BI_XY_STD, cfg.CRF_BI_RGB_STD, cfg.CRF_BI_W) == (80.0, 13.0, 10.0)
    assert (cfg.CRF_TEST_SCALE, cfg.CRF_TEST_BI_RGB_STD, cfg.CRF_TEST_MIN_PROB) == (1.0, 13.0,
                                                                                    1e-5)
    assert (cfg.FG_THRESHOLD, cfg.BG_FRACTION, cfg.WIDTH_MULT) == (0.2, 0.1, 1.0)


def test_each_network_takes_the_authors_mean_for_it():
    """SEC (train.prototxt, its CRF layer, deploy/demo.py) and the bound subtract 104/117/123
    (BGR); only the authors' cue notebooks use 104.008/116.669/122.675, so the CAM and saliency
    networks (and the pretraining classifier that stands in for their ImageNet start) do."""
    from cores import methods, stages
    from cores.classifier import net_config
    cfg = load_config()
    assert cfg.PIXEL_MEAN == [104.0, 117.0, 123.0]
    assert cfg.PIXEL_MEAN_CUES == [104.008, 116.669, 122.675]
    for stage in stages.CLASSIFIERS:
        assert net_config(cfg, stage).PIXEL_MEAN == cfg.PIXEL_MEAN_CUES, stage
    for method in methods.all_methods().values():
        assert net_config(cfg, method).PIXEL_MEAN == [104.0, 117.0, 123.0], method
    old = load_config(None, ["PIXEL_MEAN=[104.008, 116.669, 122.675]"])   # the former choice
    assert net_config(old, methods.get("sec")) is old and net_config(old, stages.CAM) is old


def test_yaml_then_set_overrides(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("BATCH_SIZE: 4\nBASE_NET: resnet50\nLR: 1\n")
    cfg = load_config(str(f), ["BATCH_SIZE=2", "MIRROR=true", "PIXEL_MEAN=[1, 2, 3]"])
    assert cfg.BATCH_SIZE == 2 and cfg.BASE_NET == "resnet50" and cfg.MIRROR is True
    assert cfg.LR == 1.0 and isinstance(cfg.LR, float)
    assert cfg.PIXEL_MEAN == [1.0, 2.0, 3.0]
    assert load_config().BATCH_SIZE == DEFAULTS["BATCH_SIZE"] == 15   # defaults untouched


def test_unknown_key_names_the_closest_keys_not_all_of_them(tmp_path):
    """The message listed ~100 keys; now the closest matches and where the rest are."""
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["BATCHSIZE=3"])
    message = str(err.value)
    assert "'BATCHSIZE'" in message and "did you mean BATCH_SIZE" in message
    assert "WIDTH_MULT" not in message and "cores/config.py" in message
    with pytest.raises(ConfigError, match="did you mean CRF_BI_RGB_STD"):
        load_config(overrides=["crf_bi_rgb_sdt=3"])
    f = tmp_path / "bad.yaml"
    f.write_text("NOPE: 1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*'NOPE'; \(every key"):
        load_config(str(f))


def test_work_path_moves_every_output_folder_and_explicit_ones_win():
    cfg = load_config(None, ["WORK_PATH=runs/a", "CACHE_PATH=/elsewhere"])
    assert (cfg.DATASET_PATH, cfg.MODEL_PATH, cfg.SNAPSHOT_PATH, cfg.OUTPUT_PATH,
            cfg.LOG_PATH) == tuple(os.path.join("runs/a", d) for d in (
                "dataset", "models", "snapshots", "outputs", "log"))
    assert cfg.CACHE_PATH == "/elsewhere"
    assert cfg.VOCDEVKIT_PATH == "dataset/VOCdevkit/VOC2012"      # an input: not moved
    assert load_config().SNAPSHOT_PATH == "snapshots"              # no WORK_PATH: as before
    demo = load_config(os.path.join(REPO, "demo", "toy.yaml"), ["WORK_PATH=/tmp/w"])
    assert demo.SNAPSHOT_PATH == "/tmp/w/snapshots"
    assert demo.VOCDEVKIT_PATH == "/tmp/w/data/VOCdevkit/VOC2012"  # {WORK_PATH} in the recipe
    assert load_config(os.path.join(REPO, "demo", "toy.yaml")).DATASET_PATH == \
        "demo_run/dataset"


@pytest.mark.parametrize("override,pattern", [
    ("BATCH_SIZE=two", "wrong type"), ("BASE_NET=alexnet", "choose one of resnet101, resnet50, vgg16"),
    ("WIDTH_MULT=0", r"\(0, 1\]"), ("BATCH_SIZE", "KEY=VALUE"),
    ("CHANNEL_ORDER=GBR", "choose one of RGB, BGR")])
def test_bad_values(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(overrides=[override])


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/cfg.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(overrides=["BATCH_SIZE=3"])
    save_config(cfg, str(tmp_path / "run" / "config.json"))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved == dict(cfg)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["config.json"]  # no temp left


def test_repeated_set_groups_all_apply():
    """A second --set group used to replace the first (argparse's store)."""
    from cores.runtime import parse_args
    _, cfg = parse_args("t", argv=["--set", "SNAPSHOT_PATH=/data/exp1", "BATCH_SIZE=4",
                                   "--set", "LR=0.01", "--set", "BATCH_SIZE=5"])
    assert cfg.SNAPSHOT_PATH == "/data/exp1" and cfg.LR == 0.01 and cfg.BATCH_SIZE == 5


def test_yaml_1_1_floats_and_bad_files_are_clear(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("LR: 1e-3\nLR_BG: 5e-4\n")                    # strings in YAML 1.1
    cfg = load_config(str(f))
    assert cfg.LR == 0.001 and cfg.LR_BG == 0.0005
    f.write_text("LR: [1e-3\n")
    with pytest.raises(ConfigError, match="exp.yaml is not valid YAML"):
        load_config(str(f))
    f.write_bytes(b"LR: 0.1\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(f))
    f.write_text("LR: fast\n")
    with pytest.raises(ConfigError, match="LR='fast' has the wrong type"):
        load_config(str(f))


@pytest.mark.parametrize("setting,pattern", [
    ("BATCH_SIZE=0", "BATCH_SIZE=0 must be positive"),
    ("EPOCH_SIZE=-2", "EPOCH_SIZE=-2 must be positive"),
    ("MAX_ITER=0", "MAX_ITER=0 must be positive"),
    ("LR=-1", "LR=-1.0 must be positive"),
    ("Q_FG=1.2", "Q_FG=1.2 must lie strictly between 0 and 1"),
    ("Q_BG=0", "Q_BG=0.0 must lie strictly between 0 and 1"),
    ("CLASS_NUM=1", "CLASS_NUM=1: background and at least one class"),
    ("INPUT_SIZE=16", "INPUT_SIZE=16 is too small"),
    ("WARMUP_ITER=-5", "WARMUP_ITER=-5 must not be negative"),
])
def test_out_of_range_values_are_refused(setting, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [setting])


def test_port_recipe_is_one_file_on_top_of_another(tmp_path):
    """The earlier port's recipe is selectable in one file, and config files
    stack (later ones win)."""
    from tests.conftest import REPO
    import os
    port = os.path.join(REPO, "configs", "port.yaml")
    cfg = load_config([os.path.join(REPO, "demo", "toy.yaml"), port])
    assert (cfg.INPUT_SIZE, cfg.POOLING_CONVENTION, cfg.DROPOUT, cfg.MIRROR) == (
        320, "valid", False, True)
    assert cfg.WIDTH_MULT == 0.125                     # from the first file
    assert (cfg.RESNET_BN, cfg.RESNET_CAM_DILATION, cfg.RESNET_SALIENCY_LAYER,
            cfg.RESNET_CRF_UNARY) == ("port", False, "relu", "probs")
    defaults = load_config()
    assert (defaults.RESNET_BN, defaults.RESNET_CAM_DILATION, defaults.RESNET_SALIENCY_LAYER,
            defaults.RESNET_CRF_UNARY) == ("frozen", True, "preact", "scores")
