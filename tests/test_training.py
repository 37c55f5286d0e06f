"""The fit loop on SEC: resume reproduces an uninterrupted run, two CPU contexts give the
one-context update, a NaN stops the run naming the batch's images."""
import os

import mxnet as mx
import numpy as np
import pytest

from cores import checkpoint, stages
from cores import methods
from cores.segmentation import train
from cores.train import TrainingError
from tests.conftest import gt_cue_file as _gt_cues, small_config as _cfg


def _params(cfg, epoch):
    path = checkpoint.snapshot_path(stages.prefix(cfg, methods.get("sec")), epoch)
    arg, aux = checkpoint.load_params_file(path)
    return {**arg, **aux}


def test_resume_reproduces_the_uninterrupted_run(toy_tree, toy_index, tmp_path):
    full = _cfg(toy_tree, toy_index, tmp_path / "full")
    cue_file = _gt_cues(full, toy_index[1], 6)
    history = train(full, methods.get("sec"), [mx.cpu()], cue_file=cue_file)
    assert len(history) == 4
    part = _cfg(toy_tree, toy_index, tmp_path / "part", MAX_ITER=2)
    train(part, methods.get("sec"), [mx.cpu()], cue_file=cue_file)                  # "interrupted" after epoch 1
    assert checkpoint.latest_epoch(stages.prefix(part, methods.get("sec"))) == 1
    history_file = stages.prefix(part, methods.get("sec")) + "-history.json"
    with open(history_file) as f:
        saved_history = f.read()
    for change in (dict(EPOCH_SIZE=1), dict(BATCH_SIZE=3, LR=0.5)):
        with pytest.raises(checkpoint.CheckpointError) as err:
            train(type(part)(part, MAX_ITER=4, **change), methods.get("sec"), [mx.cpu()],
                  resume=True, cue_file=cue_file)
        for key in change:
            assert key in str(err.value)                 # names what differs
        assert "--allow-config-change" in str(err.value)
        with open(history_file) as f:
            assert f.read() == saved_history             # nothing lost by the refusal
    assert checkpoint.latest_epoch(stages.prefix(part, methods.get("sec"))) == 1
    assert checkpoint.snapshot_iteration(stages.prefix(part, methods.get("sec")), 1) == 2      # stored in it
    with pytest.raises(checkpoint.CheckpointError, match="saved at iteration 2"):
        train(type(part)(part, MAX_ITER=4, EPOCH_SIZE=1), methods.get("sec"), [mx.cpu()], resume=True,
                  cue_file=cue_file, allow_config_change=True)
    resumed = type(part)(part, MAX_ITER=4)               # a longer run may resume
    train(resumed, methods.get("sec"), [mx.cpu()], resume=True, cue_file=cue_file)
    a, b = _params(full, 2), _params(resumed, 2)
    assert sorted(a) == sorted(b)
    moved = max(np.abs(_params(full, 1)[k].asnumpy() - a[k].asnumpy()).max() for k in a)
    assert moved > 0
    for k in a:
        np.testing.assert_allclose(a[k].asnumpy(), b[k].asnumpy(), rtol=1e-5, atol=1e-7,
                                   err_msg=k)
    assert os.path.isfile(stages.prefix(full, methods.get("sec")) + "-losses.png")
    assert os.path.isfile(os.path.join(full.SNAPSHOT_PATH, "sec_vgg16-config.json"))


def test_two_contexts_make_the_one_context_update(toy_tree, toy_index, tmp_path):
    """Two contexts, also one device listed twice (--gpus 0,0: the check of the multi-device
    path, batch slicing and the kvstore reduce, on a one-GPU machine), update as one."""
    results = []
    for ctx, name in (([mx.cpu(0)], "one"), ([mx.cpu(0), mx.cpu(1)], "two"),
                      ([mx.cpu(0), mx.cpu(0)], "same")):
        cfg = _cfg(toy_tree, toy_index, tmp_path / name, MAX_ITER=1, EPOCH_SIZE=1,
                   DROPOUT=False)
        cue_file = _gt_cues(cfg, toy_index[1], 6)
        train(cfg, methods.get("sec"), ctx, cue_file=cue_file)
        results.append(_params(cfg, 1))
    one, two, same = results
    for k in one:
        np.testing.assert_allclose(one[k].asnumpy(), two[k].asnumpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=k)
        np.testing.assert_array_equal(two[k].asnumpy(), same[k].asnumpy(), err_msg=k)


def test_nan_loss_stops_with_image_ids_and_keeps_the_snapshot(toy_tree, toy_index, tmp_path):
    cfg = _cfg(toy_tree, toy_index, tmp_path, MAX_ITER=2, EPOCH_SIZE=2)
    cue_file = _gt_cues(cfg, toy_index[1], 6)
    train(cfg, methods.get("sec"), [mx.cpu()], cue_file=cue_file)
    before = _params(cfg, 1)
    blowup = type(cfg)(cfg, MAX_ITER=40, LR=1e12)
    with pytest.raises(TrainingError) as err:
        train(blowup, methods.get("sec"), [mx.cpu()], resume=True, cue_file=cue_file, allow_config_change=True)
    message = str(err.value)
    last = checkpoint.latest_epoch(stages.prefix(cfg, methods.get("sec")))       # the last epoch that completed
    assert "non-finite loss" in message and "sec_vgg16-%04d.params" % last in message
    ids = message.split("images of the batch: ")[1].split(".")[0].split(", ")
    assert len(ids) == 2 and all(i in {e["id"] for e in toy_index[1]["train"]} for i in ids)
    failed_epoch = int(message.split("(epoch ")[1].split(")")[0])
    assert last == failed_epoch - 1
    assert not os.path.exists(checkpoint.snapshot_path(stages.prefix(cfg, methods.get("sec")), failed_epoch))
    after = _params(cfg, 1)
    for k in before:
        np.testing.assert_array_equal(before[k].asnumpy(), after[k].asnumpy())


def test_corrupt_snapshot_files_are_named_with_a_way_out(toy_tree, toy_index, tmp_path):
    """A truncated optimizer file, snapshot or sidecar: one message with the file
    and what to do, no MXNet stack trace."""
    cfg = _cfg(toy_tree, toy_index, tmp_path, MAX_ITER=2, EPOCH_SIZE=1)
    cue_file = _gt_cues(cfg, toy_index[1], 6)
    train(cfg, methods.get("sec"), [mx.cpu()], cue_file=cue_file)
    prefix = stages.prefix(cfg, methods.get("sec"))
    optimizer = prefix + "-0002.optimizer.params"
    with open(optimizer, "r+b") as f:
        f.truncate(100)
    resumed = type(cfg)(cfg, MAX_ITER=3)
    with pytest.raises(checkpoint.CheckpointError) as err:
        train(resumed, methods.get("sec"), [mx.cpu()], resume=True, cue_file=cue_file)
    message = str(err.value)
    assert "sec_vgg16-0002.optimizer.params" in message and "--epoch 1" in message
    assert "Stack trace" not in message and "\n" not in message
    with open(checkpoint.snapshot_path(prefix, 2), "r+b") as f:
        f.truncate(100)
    with pytest.raises(checkpoint.CheckpointError) as err:
        train(resumed, methods.get("sec"), [mx.cpu()], resume=True, cue_file=cue_file)
    assert "sec_vgg16-0002.params" in str(err.value) and "--epoch 1" in str(err.value)
    weights = tmp_path / "models"
    weights.mkdir()
    (weights / "vgg16.params").write_bytes(b"")
    (weights / "vgg16.json").write_text("{not json")
    fresh = type(cfg)(cfg, MODEL_PATH=str(weights), RANDOM_INIT=False, SNAPSHOT_PATH=str(
        tmp_path / "fresh"))
    with pytest.raises(checkpoint.CheckpointError, match="cannot read .*vgg16.json, the sidecar"):
        train(fresh, methods.get("sec"), [mx.cpu()], cue_file=cue_file)


def test_epoch_means_the_snapshot_to_start_from_in_a_cue_stage(toy_tree, toy_index, tmp_path,
                                                                caplog):
    """--epoch N in a cue script continues training from snapshot N (as in train_SEC.py) and
    writes cues with the final snapshot; the later snapshots of the earlier run are refused
    without --overwrite and deleted with it; with --skip-train the cues come from snapshot N."""
    from cores.localization import run_cue_stage
    cfg = _cfg(toy_tree, toy_index, tmp_path, MIN_CLASSIFIER_MAP=0, BATCH_SIZE_FG=2,
               EPOCH_SIZE_FG=1, MAX_ITER_FG=2)
    prefix = stages.prefix(cfg, stages.CAM)
    run_cue_stage(cfg, stages.CAM, [mx.cpu()])
    first = checkpoint.load_params_file(checkpoint.snapshot_path(prefix, 2))[0]
    with pytest.raises(checkpoint.CheckpointError, match="epochs 2 from another run"):
        run_cue_stage(cfg, stages.CAM, [mx.cpu()], epoch=1)
    with caplog.at_level("INFO"):
        run_cue_stage(cfg, stages.CAM, [mx.cpu()], epoch=1, overwrite=True)
    assert "--overwrite: deleted 2 files" in caplog.text        # epoch 2 and its optimizer
    assert "resuming from %s" % checkpoint.snapshot_path(prefix, 1) in caplog.text
    assert "writing fg cues with %s" % checkpoint.snapshot_path(prefix, 2) in caplog.text
    again = checkpoint.load_params_file(checkpoint.snapshot_path(prefix, 2))[0]
    for k in first:                                  # epoch 2 trained again from epoch 1
        np.testing.assert_allclose(first[k].asnumpy(), again[k].asnumpy(), rtol=1e-5,
                                   atol=1e-7, err_msg=k)
    caplog.clear()
    with caplog.at_level("INFO"):
        run_cue_stage(cfg, stages.CAM, [mx.cpu()], skip_train=True, epoch=1)
    assert "writing fg cues with %s" % checkpoint.snapshot_path(prefix, 1) in caplog.text
    assert "resuming" not in caplog.text


def test_a_collapsed_run_is_reported(toy_tree, toy_index, tmp_path, caplog):
    """A network that labels every pixel with one class ends with a loud warning (its losses
    are finite, so the NaN guard cannot see it); a sane one does not."""
    from cores.segmentation import check_collapse
    cfg = _cfg(toy_tree, toy_index, tmp_path, MAX_ITER=2, EPOCH_SIZE=2)
    entries = toy_index[1]["train"]
    train(cfg, methods.get("sec"), [mx.cpu()], cue_file=_gt_cues(cfg, toy_index[1], 6))
    arg, aux = checkpoint.load_params_file(
        checkpoint.snapshot_path(stages.prefix(cfg, methods.get("sec")), 1))
    collapsed = dict(arg)
    collapsed["fc8_weight"] = mx.nd.zeros(arg["fc8_weight"].shape)
    bias = np.zeros(arg["fc8_bias"].shape, np.float32)
    bias[0] = 10.0                                        # background everywhere
    collapsed["fc8_bias"] = mx.nd.array(bias)
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert check_collapse(cfg, collapsed, aux, entries) == [0]
    assert "predicts class 0 on every pixel of 16 training images" in caplog.text
    caplog.clear()
    from cores import segmentation as sec
    monkey = pytest.MonkeyPatch()
    monkey.setattr(sec._Sample, "predict", lambda self, a, b: np.array([[[0, 1], [0, 0]]]))
    try:
        with caplog.at_level("WARNING"):
            assert check_collapse(cfg, collapsed, aux, entries) == [0, 1]
    finally:
        monkey.undo()
    assert "collapsed" not in caplog.text


@pytest.mark.slow                                   # worker processes
def test_a_seeded_run_is_bit_identical_on_one_machine_whatever_its_processes(toy_tree,
                                                                              toy_index,
                                                                              tmp_path):
    """Where a seeded run stops being deterministic (docs/benchmarks.md): not in the data
    order, the decoding workers or the CRF workers (their number changes nothing, to the bit);
    across CPUs oneDNN picks other kernels (DNNL_MAX_CPU_ISA shows it), which this test cannot
    see on one machine."""
    runs = []
    for workers in (1, 2):
        cfg = _cfg(toy_tree, toy_index, tmp_path / str(workers), MAX_ITER=3, EPOCH_SIZE=3,
                   BATCH_SIZE=4, DATA_WORKERS=workers, CRF_WORKERS=workers)
        history = train(cfg, methods.get("sec"), [mx.cpu()], cue_file=_gt_cues(cfg, toy_index[1], 6))
        runs.append((_params(cfg, 1), [h["seed_loss"] for h in history]))
    (one, losses_one), (two, losses_two) = runs
    assert losses_one == losses_two
    for k in one:
        np.testing.assert_array_equal(one[k].asnumpy(), two[k].asnumpy(), err_msg=k)


def test_batchnorm_statistics_in_a_snapshot_are_the_run_s_own(toy_tree, toy_index, tmp_path):
    """Backbone pretraining (trained BatchNorm): resuming from the first snapshot gives the
    uninterrupted run's second, moving statistics included. MXNet updates the moving
    statistics in the backward pass, and Module.get_params copied them before the engine had
    written them (two demo runs of one seed pretrained different backbones; this test failed
    in each of three runs without the wait)."""
    from cores.classifier import train_cue_network
    train = toy_index[1]["train"]

    def run(name, max_iter, resume=False):
        cfg = _cfg(toy_tree, toy_index, tmp_path / name, MAX_ITER_PRE=max_iter,
                   EPOCH_SIZE_PRE=1, LR_STEP_PRE=10, BATCH_SIZE_PRE=4, PRETRAIN_BN=True)
        train_cue_network(cfg, stages.PRETRAIN, [mx.cpu()], train, resume=resume)
        prefix = stages.prefix(cfg, stages.PRETRAIN)
        snapshots = []
        for e in range(1, checkpoint.latest_epoch(prefix) + 1):
            arg, aux = checkpoint.load_params_file(checkpoint.snapshot_path(prefix, e))
            snapshots.append({k: v.asnumpy() for k, v in {**arg, **aux}.items()})
        return snapshots
    full = run("full", 2)
    run("part", 1)
    resumed = run("part", 2, resume=True)
    moving = [k for k in full[1] if "moving" in k]
    assert moving and any(not np.array_equal(full[0][k], full[1][k]) for k in moving)
    for k in full[1]:
        np.testing.assert_array_equal(resumed[1][k], full[1][k], err_msg=k)
