"""The objectives of cores/objectives.py beside SEC: the paper's ablations (SEC_LOSSES), DSRG,
a retraining round on pseudo-masks (eval.py --label), and the ASPP head they may use."""
import os

import mxnet as mx
import numpy as np
import pytest

from cores import checkpoint, objectives, stages
from cores.config import ConfigError, load_config
from cores.data import transforms
from cores.data.dataset import DatasetError, load_index, read_mask
from cores.data.palette import save_palette_png
from cores.sec import train_sec
from cores.symbols import networks
from tests.conftest import gt_cue_file, small_config


@pytest.mark.parametrize("losses, inputs", [
    ("seed", {"data", "cues"}),
    ("seed,expand", {"data", "cues", "labels"}),
    ("seed,constrain", {"data", "cues", "small_images"}),
    ("seed,expand,constrain", {"data", "cues", "labels", "small_images"}),
])
def test_each_ablation_holds_exactly_its_losses(losses, inputs):
    cfg = load_config(None, ["SEC_LOSSES=" + losses])
    sym = networks.sec_train_symbol(cfg)
    assert networks.loss_names(sym) == [n + "_loss" for n in losses.split(",")]
    args = set(sym.list_arguments())
    assert {a for a in args if not a.endswith(("_weight", "_bias"))} == inputs
    has_crf = any(n.startswith("crf") for n in sym.get_internals().list_outputs())
    assert has_crf == ("constrain" in losses)
    shapes = {k: v for k, v in stages.sec_input_shapes(cfg).items() if k in args}
    assert sym.infer_shape(**shapes)[1] == [(1,)] * len(losses.split(","))


@pytest.mark.parametrize("bad", ["expand,constrain", "seed,seed", "seed,grow"])
def test_an_ablation_without_the_seeding_loss_or_with_unknown_names_is_refused(bad):
    with pytest.raises(ConfigError, match="SEC_LOSSES"):
        load_config(None, ["SEC_LOSSES=" + bad])


def test_dsrg_symbol_is_balanced_seeding_and_clipped_constrain_on_grown_seeds():
    cfg = load_config(None, [])
    sym = networks.dsrg_train_symbol(cfg)
    assert networks.loss_names(sym) == ["seed_loss", "constrain_loss"]
    internals = sym.get_internals().list_outputs()
    assert "grow_grown" in internals and "grow_log_q" in internals
    assert not any("expand" in n for n in internals)
    arg_shapes, out_shapes, _ = sym.infer_shape(**stages.sec_input_shapes(cfg))
    assert out_shapes == [(1,), (1,)]
    entry = stages.STAGES["dsrg"]
    assert (entry["batch"], entry["lr"], entry["step"], entry["max_iter"]) == (
        "BATCH_SIZE_DSRG", "LR_DSRG", "LR_STEP_DSRG", "MAX_ITER_DSRG")
    schedule = stages.Schedule(cfg, "dsrg")           # DSRG's released solver
    assert (schedule.batch_size, schedule.lr, schedule.lr_step, schedule.lr_factor,
            schedule.max_iter, schedule.mirror) == (20, 5e-4, 1000, 0.33, 8000, True)
    retrain = stages.Schedule(cfg, "retrain")         # its second step
    assert (retrain.batch_size, retrain.lr, retrain.policy, retrain.max_iter,
            retrain.mirror) == (10, 1e-3, "poly", 20000, True)


@pytest.mark.parametrize("net", ["vgg16", "resnet50"])
def test_aspp_head_at_full_size(net):
    cfg = load_config(None, ["HEAD=aspp", "BASE_NET=" + net])
    scores = networks.sec_scores(cfg, mx.sym.Variable("data"), dropout=False)
    args, out, _ = scores.infer_shape(data=(1, 3, 321, 321))
    assert out == [(1, 21, 41, 41)]
    shapes = dict(zip(scores.list_arguments(), args))
    for k, dilation in enumerate((6, 12, 18, 24), start=1):
        assert "fc8_%d_weight" % k in networks.new_param_names(scores)
        conv = scores.get_internals()["%s_%d_output" % ("fc6" if net == "vgg16" else "fc8", k)]
        assert conv.attr("dilate") == "(%d, %d)" % (dilation, dilation)
    if net == "vgg16":
        assert shapes["fc6_1_weight"] == (1024, 512, 3, 3)
        assert shapes["fc7_4_weight"] == (1024, 1024, 1, 1)


def test_aspp_branches_start_from_the_pretrained_fc6_and_fc7(tmp_path):
    cfg = load_config(None, ["HEAD=aspp", "WIDTH_MULT=0.125", "INPUT_SIZE=81",
                             "MODEL_PATH=" + str(tmp_path)])
    plain = networks.sec_scores(type(cfg)(cfg, HEAD="largefov"), mx.sym.Variable("data"))
    shapes = checkpoint.expected_shapes(plain, {"data": (1, 3, 81, 81)})[0]
    rng = np.random.RandomState(0)
    weights = {k: mx.nd.array(rng.randn(*s)) for k, s in shapes.items() if not k.startswith("fc8")}
    checkpoint.save_params(stages.weights_path(cfg), weights, {})
    aspp = networks.sec_scores(cfg, mx.sym.Variable("data"))
    arg, _ = checkpoint.pretrained_params(cfg, aspp, {"data": (1, 3, 81, 81)})
    for k in range(1, 5):
        for layer in ("fc6", "fc7"):
            np.testing.assert_array_equal(arg["%s_%d_weight" % (layer, k)].asnumpy(),
                                          weights[layer + "_weight"].asnumpy())
        assert "fc8_%d_weight" % k not in arg              # new: its own initialiser


def test_poly_policy_is_deeplabs():
    from cores.train import lr_scheduler
    cfg = load_config(None, ["MAX_ITER_RT=100"])
    sched = lr_scheduler(stages.Schedule(cfg, "retrain"))
    for it in (0, 30, 99):
        assert sched(it) == pytest.approx(1e-3 * (1 - it / 100) ** 0.9, rel=1e-6)
    step = lr_scheduler(stages.Schedule(cfg, "dsrg"))
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
        objectives.pseudo_mask_entries(cfg, train)
    folder = stages.pseudo_mask_dir(cfg)
    _pattern_masks(cfg, train, folder)
    entries = objectives.pseudo_mask_entries(cfg, train)
    assert {e["mask"] for e in entries} == {os.path.join(folder, e["id"] + ".png") for e in train}
    # a crop's targets are the given mask's, at the crop, void left out
    job = (entries[0], 41, 6, cfg.PIXEL_MEAN, "BGR", cfg.CLASS_NUM, None, False, 3)
    data, cues = transforms.load_crop(job)
    assert data.shape == (3, 41, 41) and cues.shape == (cfg.CLASS_NUM, 6, 6)
    assert set(np.flatnonzero(cues.sum(axis=(1, 2)))) <= {0, 1}
    rgb, mask = transforms.random_crop(
        transforms.load_rgb(entries[0]["image"]).astype(np.float32),
        read_mask(entries[0]["mask"]), 41, np.random.RandomState(3), (0, 0, 0))
    from cores.grid import grid_mask
    grid = grid_mask(mask, 6)
    np.testing.assert_array_equal(cues.argmax(axis=0)[grid != 255], grid[grid != 255])
    assert (cues.sum(axis=0) == (grid != 255)).all()
    history = train_sec(cfg, [mx.cpu()], kind="retrain")
    assert len(history) == 4 and all(np.isfinite(h["ce_loss"]) for h in history)
    assert checkpoint.latest_epoch(stages.prefix(cfg, "retrain")) == 2


def test_a_crop_pads_small_images_with_the_mean_and_void():
    rgb = np.full((5, 7, 3), 9.0, np.float32)
    mask = np.ones((5, 7), np.uint8)
    out, crop = transforms.random_crop(rgb, mask, 8, np.random.RandomState(0), (1, 2, 3))
    assert out.shape == (8, 8, 3) and crop.shape == (8, 8)
    assert (crop[:5, :7] == 1).all() and (crop[5:] == 255).all() and (crop[:, 7:] == 255).all()
    np.testing.assert_array_equal(out[6, 7], [1, 2, 3])


def test_dsrg_learns_on_the_toy_cues(toy_tree, toy_index, tmp_path):
    """A short DSRG run from random weights on stand-in cues: its seeding loss falls."""
    cfg = small_config(toy_tree, toy_index, tmp_path, MAX_ITER_DSRG=30, EPOCH_SIZE_DSRG=15,
                       BATCH_SIZE_DSRG=4, LR_DSRG=0.01, LR_STEP_DSRG=1000, DATA_WORKERS=1,
                       CRF_WORKERS=1)
    cue_file = gt_cue_file(cfg, toy_index[1], 6)
    history = train_sec(cfg, [mx.cpu()], cue_file=cue_file, kind="dsrg")
    assert len(history) == 30
    first = np.mean([h["seed_loss"] for h in history[:5]])
    last = np.mean([h["seed_loss"] for h in history[-5:]])
    assert last < 0.8 * first, (first, last)
