"""A retraining round (cores/methods/retrain.py): its schedule (DSRG's second step, DeepLab's
poly policy), the pseudo-masks it reads, its random crops, and a short run."""
import os

import mxnet as mx
import numpy as np
import pytest

from cores import checkpoint, methods, stages
from cores.config import load_config
from cores.data import transforms
from cores.data.dataset import DatasetError, load_index, read_mask
from cores.data.palette import save_palette_png
from cores.methods import retrain
from cores import segmentation
from tests.conftest import small_config


def test_the_schedule_is_dsrgs_second_step():
    cfg = load_config(None, [])
    schedule = stages.Schedule(cfg, methods.get("retrain"))
    assert (schedule.batch_size, schedule.lr, schedule.policy, schedule.max_iter,
            schedule.mirror) == (10, 1e-3, "poly", 20000, True)


def test_poly_policy_is_deeplabs():
    from cores.train import lr_scheduler
    cfg = load_config(None, ["MAX_ITER_RT=100"])
    sched = lr_scheduler(stages.Schedule(cfg, methods.get("retrain")))
    for it in (0, 30, 99):
        assert sched(it) == pytest.approx(1e-3 * (1 - it / 100) ** 0.9, rel=1e-6)
    step = lr_scheduler(stages.Schedule(cfg, methods.get("dsrg")))
    assert step(999) == pytest.approx(5e-4) and step(1001) == pytest.approx(5e-4 * 0.33)


def _pattern_masks(cfg, train, folder):
    """Pseudo-masks unlike the truth: the left half of every image class 1, the rest
    background, one row void."""
    os.makedirs(folder, exist_ok=True)
    for e in train:
        height, width = read_mask(e["mask"]).shape
        mask = np.zeros((height, width), np.uint8)
        mask[:, : width // 2] = 1
        mask[0] = 255
        save_palette_png(os.path.join(folder, e["id"] + ".png"), mask)


def test_retraining_reads_the_pseudo_masks_it_is_given(toy_tree, toy_index, tmp_path):
    cfg = small_config(toy_tree, toy_index, tmp_path, MAX_ITER_RT=4, EPOCH_SIZE_RT=2,
                       BATCH_SIZE_RT=2, DATA_WORKERS=1)
    _, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    with pytest.raises(DatasetError, match="pseudo_masks.*eval.py --label"):
        retrain.pseudo_mask_entries(cfg, train)
    folder = retrain.pseudo_mask_dir(cfg)
    _pattern_masks(cfg, train, folder)
    entries = retrain.pseudo_mask_entries(cfg, train)
    assert {e["mask"] for e in entries} == {os.path.join(folder, e["id"] + ".png") for e in train}
    # a crop's targets are the given mask's, at the crop, void left out
    job = (entries[0], 41, 6, cfg.PIXEL_MEAN, "BGR", cfg.CLASS_NUM, None, False, 3)
    data, cues = retrain.load_crop(job)
    assert data.shape == (3, 41, 41) and cues.shape == (cfg.CLASS_NUM, 6, 6)
    assert set(np.flatnonzero(cues.sum(axis=(1, 2)))) <= {0, 1}
    rgb, mask = retrain.random_crop(
        transforms.load_rgb(entries[0]["image"]).astype(np.float32),
        read_mask(entries[0]["mask"]), 41, np.random.RandomState(3), (0, 0, 0))
    from cores.grid import grid_mask
    grid = grid_mask(mask, 6)
    np.testing.assert_array_equal(cues.argmax(axis=0)[grid != 255], grid[grid != 255])
    assert (cues.sum(axis=0) == (grid != 255)).all()
    history = segmentation.train(cfg, methods.get("retrain"), [mx.cpu()])
    assert len(history) == 4 and all(np.isfinite(h["ce_loss"]) for h in history)
    assert checkpoint.latest_epoch(stages.prefix(cfg, methods.get("retrain"))) == 2


def test_a_crop_pads_small_images_with_the_mean_and_void():
    rgb = np.full((5, 7, 3), 9.0, np.float32)
    mask = np.ones((5, 7), np.uint8)
    out, crop = retrain.random_crop(rgb, mask, 8, np.random.RandomState(0), (1, 2, 3))
    assert out.shape == (8, 8, 3) and crop.shape == (8, 8)
    assert (crop[:5, :7] == 1).all() and (crop[5:] == 255).all() and (crop[:, 7:] == 255).all()
    np.testing.assert_array_equal(out[6, 7], [1, 2, 3])
