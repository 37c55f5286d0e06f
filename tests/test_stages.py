"""The stages: one name per file, the score grid by arithmetic (equal to shape inference),
schedules from the config."""
import subprocess
import sys

import pytest

from cores import backbones, methods, stages
from cores.config import load_config
from tests.conftest import REPO


def _cfg(*overrides):
    return load_config(None, ["SNAPSHOT_PATH=/s", "CACHE_PATH=/c", "OUTPUT_PATH=/o",
                              "MODEL_PATH=/m"] + list(overrides))


def test_every_file_has_one_name():
    cfg = _cfg("BASE_NET=resnet50")
    assert stages.weights_path(cfg) == "/m/resnet50.params"
    assert stages.weights_path(cfg, "vgg16") == "/m/vgg16.params"
    every = [stages.PRETRAIN, stages.SALIENCY, stages.CAM] + [methods.get(n) for n in (
        "sec", "supervised", "seed_expand")]
    assert [stages.prefix(cfg, k) for k in every] == [
        "/s/pretrain_resnet50", "/s/saliency_resnet50", "/s/cam_resnet50", "/s/sec_resnet50",
        "/s/supervised_resnet50", "/s/seed_expand_resnet50"]
    assert stages.cue_path(cfg, "fg") == "/c/fg_cues.npz"
    assert stages.cue_path(cfg, stages.MERGED) == "/c/sec_cues.npz"
    assert stages.cue_report_path(cfg, "bg") == "/c/bg_cues_report.json"
    assert stages.cue_part_path(cfg, "fg", 1, 3) == "/c/fg_cues.part1-of-3.npz"
    assert stages.classification_path(cfg, stages.CAM) == "/c/fg_classification.json"
    assert stages.classification_path(cfg, stages.PRETRAIN) == \
        "/s/pretrain_resnet50-classification.json"
    assert stages.output_dir(cfg, 8, methods.get("sec")) == "/o/sec_resnet50-0008"
    assert stages.output_dir(cfg, 12, methods.get("supervised"), flip=True, use_crf=True) == \
        "/o/supervised_resnet50-0012_flip_crf"


def test_score_size_at_full_size():
    assert stages.score_size(_cfg()) == 41                                     # 321, ceil
    assert stages.score_size(_cfg("INPUT_SIZE=320", "POOLING_CONVENTION=valid")) == 40
    assert stages.score_size(_cfg("BASE_NET=resnet50")) == 41
    shapes = methods.get("sec").input_shapes(_cfg("CLASS_NUM=6"), 3, 41)
    assert shapes == {"data": (3, 3, 321, 321), "small_images": (3, 41, 41, 3),
                      "labels": (3, 6), "cues": (3, 6, 41, 41)}
    assert methods.get("supervised").input_shapes(_cfg(), 2, 41) == {
        "data": (2, 3, 321, 321), "cues": (2, 21, 41, 41)}


@pytest.mark.parametrize("net", backbones.NAMES)
def test_the_score_grid_arithmetic_equals_shape_inference(net):
    """stages.score_size counts the layers that change the grid (cores/backbones.py) instead
    of building the network; it agrees with MXNet's shape inference at every input side and
    both pooling conventions."""
    import mxnet as mx
    from cores.symbols import networks
    for convention in ("full", "valid"):
        cfg = _cfg("BASE_NET=" + net, "POOLING_CONVENTION=" + convention, "WIDTH_MULT=0.125")
        scores = networks.sec_scores(cfg, mx.sym.Variable("data"))
        for side in list(range(33, 72)) + [81, 121, 320, 321, 353, 513]:
            inferred = scores.infer_shape(data=(1, 3, side, side))[1][0][2]
            assert backbones.score_size(net, side, convention) == inferred, (side, convention)


@pytest.mark.parametrize("kind,keys", [
    (stages.SALIENCY, ("BATCH_SIZE_BG", "LR_BG", "LR_STEP_BG", "MAX_ITER_BG", "EPOCH_SIZE_BG")),
    (methods.get("sec"), ("BATCH_SIZE", "LR", "LR_STEP", "MAX_ITER", "EPOCH_SIZE")),
])
def test_schedules_come_from_their_own_keys(kind, keys):
    batch, lr, step, max_iter, epoch = keys
    cfg = _cfg("%s=7" % batch, "%s=0.005" % lr, "%s=300" % step, "%s=1001" % max_iter,
               "%s=250" % epoch)
    s = stages.Schedule(cfg, kind)
    assert (s.batch_size, s.lr, s.lr_step, s.max_iter, s.epoch_size) == (7, 0.005, 300, 1001,
                                                                         250)
    assert s.final_epoch == 5                                   # ceil(1001 / 250)
    assert set(keys) - {max_iter} <= set(s.resume_keys)


def test_evaluation_imports_no_training_module():
    """eval.py's import chain: inference code only."""
    code = ("import sys; sys.argv = ['eval.py']; import runpy; "
            "runpy.run_path('eval.py', run_name='not_main'); "
            "print(sorted(m for m in sys.modules if m.startswith('cores')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    loaded = eval(out.strip().splitlines()[-1])
    assert "cores.evaluation" in loaded and "cores.inference" in loaded
    for training in ("cores.train", "cores.segmentation", "cores.localization",
                     "cores.pretrain", "cores.distributed"):
        assert training not in loaded, training


def test_the_bound_scales_secs_schedule():
    """SUPERVISED_ITER_SCALE k: the bound trains k x MAX_ITER iterations with its lr step at
    k x LR_STEP; SUPERVISED_LR_SCALE m: at m x LR (a schedule that fits the data). SEC's own
    schedule does not move; by default the bound's is SEC's."""
    cfg = _cfg("MAX_ITER=1500", "LR_STEP=1200", "EPOCH_SIZE=500", "SUPERVISED_ITER_SCALE=2.5",
               "SUPERVISED_LR_SCALE=3")
    bound, sec = stages.Schedule(cfg, methods.get("supervised")), stages.Schedule(cfg, methods.get("sec"))
    assert (bound.max_iter, bound.lr_step, bound.final_epoch) == (3750, 3000, 8)
    assert (sec.max_iter, sec.lr_step, sec.final_epoch) == (1500, 1200, 3)
    assert abs(bound.lr - 3e-3) < 1e-12 and sec.lr == 1e-3
    assert bound.batch_size == sec.batch_size
    assert {"SUPERVISED_ITER_SCALE", "SUPERVISED_LR_SCALE"} <= set(bound.resume_keys)
    default = stages.Schedule(_cfg(), methods.get("supervised"))
    assert (default.max_iter, default.lr_step, default.lr) == (8000, 2000, 1e-3)
