"""Both named recipes, the default (the authors') and the earlier port's (configs/port.yaml),
run end to end on toy data for both backbones: cue stages, SEC training, evaluation with CRF
and flip. Tiny sizes: this checks that every switch works together, not quality."""
import json
import os

import mxnet as mx
import pytest

from cores import evaluation, localization, stages
from cores.config import load_config
from cores import methods
from cores.segmentation import train
from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("net", ["vgg16", "resnet50"])
@pytest.mark.parametrize("recipe", ["default", "port"])
def test_recipe_runs_end_to_end(toy_tree, toy_index, tmp_path, net, recipe):
    files = [os.path.join(REPO, "demo", "toy.yaml")]
    if recipe == "port":
        files.append(os.path.join(REPO, "configs", "port.yaml"))
    size = 80 if recipe == "port" else 81                # floor vs ceil pooling, 10 vs 11
    root = toy_tree[0]
    cfg = load_config(files, [
        "BASE_NET=" + net, "INPUT_SIZE=%d" % size, "RANDOM_INIT=true", "MIN_CLASSIFIER_MAP=0",
        "DATASET_PATH=" + toy_index[0].DATASET_PATH,
        "VOCDEVKIT_PATH=" + os.path.join(root, "VOCdevkit", "VOC2012"),
        "SBD_PATH=" + os.path.join(root, "benchmark_RELEASE", "dataset"),
        "SNAPSHOT_PATH=%s" % (tmp_path / "snapshots"), "CACHE_PATH=%s" % (tmp_path / "cache"),
        "OUTPUT_PATH=%s" % (tmp_path / "outputs"), "MODEL_PATH=%s" % (tmp_path / "models"),
        "DATA_WORKERS=1", "CRF_WORKERS=1", "BATCH_SIZE=2", "BATCH_SIZE_BG=2",
        "BATCH_SIZE_FG=2"] + ["%s=2" % k for k in (
            "MAX_ITER", "EPOCH_SIZE", "MAX_ITER_BG", "EPOCH_SIZE_BG", "MAX_ITER_FG",
            "EPOCH_SIZE_FG")])
    grid = stages.score_size(cfg)
    assert grid == (10 if recipe == "port" else 11)
    for stage in (stages.SALIENCY, stages.CAM):
        report = localization.run_cue_stage(cfg, stage, [mx.cpu()])
        assert report["images"] == len(toy_index[1]["train"])
    history = train(cfg, methods.get("sec"), [mx.cpu()])
    assert len(history) == 2
    metrics = evaluation.evaluate(cfg, methods.get("sec"), [mx.cpu()], flip=True, use_crf=True)
    out = stages.output_dir(cfg, 1, methods.get("sec"), True, True)
    with open(os.path.join(out, "metrics.json")) as f:
        assert json.load(f)["mIoU"] == metrics["mIoU"]
    assert metrics["images"] == 6
