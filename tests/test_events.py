"""TensorBoard event files and matplotlib figures of a tiny run, read back."""
import os

import mxnet as mx
import numpy as np
from PIL import Image

from cores import events, stages
from cores.figures import grouped_bars, loss_curves
from cores import methods
from cores.segmentation import train
from tests.conftest import gt_cue_file as _gt_cues, small_config as _cfg


def _run_folder(cfg, name):
    stage = stages.CUE_STAGES.get(name) or methods.get(name)
    return events.run_folder(cfg, os.path.basename(stages.prefix(cfg, stage)))


def test_a_sec_run_writes_losses_lr_speed_and_pictures(sec_snapshot):
    cfg = sec_snapshot                                   # MAX_ITER 2, EPOCH_SIZE 1
    got = events.read_events(_run_folder(cfg, "sec"))
    losses = ["loss/seed_loss", "loss/expand_loss", "loss/constrain_loss"]
    assert set(got["scalars"]) == set(losses + ["lr", "images_per_s"])
    for tag in losses + ["lr"]:
        assert [step for step, _ in got["scalars"][tag]] == [2]        # log_every 10: the end
    assert all(np.isfinite(v) for _, v in got["scalars"]["loss/seed_loss"])
    assert len(got["images"]) == events.SAMPLE_IMAGES                  # a handful of images
    for tag, steps in got["images"].items():
        assert steps == [1, 2], tag                                    # one per epoch
        assert tag.endswith("/image_cues_prediction_truth")
    with Image.open(stages.prefix(cfg, methods.get("sec")) + "-losses.png") as im:
        assert im.format == "PNG" and im.size == (800, 450)


def test_the_same_config_continues_its_run_and_evaluation_adds_its_scores(toy_tree, toy_index,
                                                                          tmp_path):
    from cores.evaluation import evaluate
    cfg = _cfg(toy_tree, toy_index, tmp_path, MAX_ITER=2, EPOCH_SIZE=1)
    train(cfg, methods.get("supervised"), [mx.cpu()], cue_file=_gt_cues(cfg, toy_index[1], 6))
    folder = _run_folder(cfg, "supervised")
    assert sorted(events.read_events(folder)["images"].values())[0] == [1, 2]
    metrics = evaluate(cfg, methods.get("supervised"), [mx.cpu()])
    evals = events.read_events(events.run_folder(cfg, "eval-supervised_vgg16"))
    assert evals["scalars"]["mIoU"] == [(2, np.float32(metrics["mIoU"]))]
    assert {t for t in evals["scalars"] if t.startswith("IoU/")} == {
        "IoU/" + c for c, v in metrics["IoU"].items() if v is not None}


def test_events_off_writes_nothing(toy_tree, toy_index, tmp_path):
    cfg = _cfg(toy_tree, toy_index, tmp_path, MAX_ITER=2, EPOCH_SIZE=2, TENSORBOARD=False)
    train(cfg, methods.get("sec"), [mx.cpu()], cue_file=_gt_cues(cfg, toy_index[1], 6))
    assert not os.path.exists(os.path.join(cfg.LOG_PATH, "tensorboard"))
    assert not events.EventLog()                                       # the inactive log
    assert os.path.isfile(stages.prefix(cfg, methods.get("sec")) + "-losses.png")   # figures stay


def test_loss_figure_marks_steps_and_snapshots_and_bars_are_pngs(tmp_path):
    history = [dict(iter=i, lr=1e-3 if i <= 50 else 1e-4, a=1.0 / i, b=0.5) for i in
               range(1, 101)]
    path = str(tmp_path / "l.png")
    loss_curves(path, history, ["a", "b"], epoch_size=25, log_scale=True)
    with Image.open(path) as im:
        assert im.size == (800, 450)
        pixels = np.asarray(im.convert("RGB"))
    assert (pixels.min(axis=2) < 100).mean() > 0.01                   # something is drawn
    bars = str(tmp_path / "b.png")
    grouped_bars(bars, ["v1", "v2"], ["x", "y", "z"], [[0.1, 0.5, None], [0.2, 0.3, 0.9]],
                 "mIoU")
    with Image.open(bars) as im:
        assert im.format == "PNG" and im.size[0] >= 600
    assert sorted(os.listdir(tmp_path)) == ["b.png", "l.png"]           # no temporaries left


def test_a_cue_stage_logs_its_classification_map_and_cues(toy_tree, toy_index, tmp_path):
    from cores.localization import run_cue_stage
    cfg = _cfg(toy_tree, toy_index, tmp_path, MIN_CLASSIFIER_MAP=0, BATCH_SIZE_FG=2,
               EPOCH_SIZE_FG=2, MAX_ITER_FG=4)
    run_cue_stage(cfg, stages.CAM, [mx.cpu()])
    got = events.read_events(_run_folder(cfg, "fg"))
    train = toy_index[1]["train"]
    sample = "mAP_of_%d_train_images" % min(32, len(train))
    assert [s for s, _ in got["scalars"][sample]] == [2, 4]              # every epoch
    assert [s for s, _ in got["scalars"]["mAP_of_all_train_images"]] == [4]
    assert all(0 <= v <= 1 for _, v in got["scalars"][sample])
    assert len(got["images"]) == events.SAMPLE_IMAGES
    assert all(steps == [2, 4] and tag.endswith("/image_cues_truth")
               for tag, steps in got["images"].items())
