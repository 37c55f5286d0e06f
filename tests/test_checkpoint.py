"""Snapshots say which run they belong to: a new run into a folder of another run's snapshots
is refused (or, with --overwrite, starts clean), and evaluation or --resume never takes a
snapshot of another config without saying so."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from cores import checkpoint, methods, stages
from cores.config import load_config

SEC = methods.get("sec")


def _cfg(tmp_path, *overrides):
    return load_config(None, ["RANDOM_INIT=true", "MODEL_PATH=%s" % tmp_path,
                              "SNAPSHOT_PATH=%s" % (tmp_path / "snapshots"),
                              "EPOCH_SIZE=50", "LR_STEP=100"] + list(overrides))


def _net():
    return mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=2, name="fc"), \
        {"data": (1, 3)}


def _write_run(cfg, epochs, kind=SEC):
    """Snapshots 1..epochs of a run of ``cfg`` (random weights, iteration stored)."""
    prefix = stages.prefix(cfg, kind)
    size = stages.Schedule(cfg, kind).epoch_size
    for epoch in range(1, epochs + 1):
        arg = {"fc_weight": mx.nd.ones((2, 3)) * epoch, "fc_bias": mx.nd.zeros(2)}
        checkpoint.save_snapshot(prefix, epoch, arg, {}, cfg, {"fc_weight": mx.nd.zeros((2, 3))},
                                 epoch * size)
    return prefix


def test_every_snapshot_stores_its_config_and_iteration(tmp_path):
    cfg = _cfg(tmp_path, "MAX_ITER=300")
    prefix = _write_run(cfg, 2)
    iteration, saved = checkpoint.snapshot_meta(prefix, 2)
    assert iteration == 100 and saved["MAX_ITER"] == 300 and saved == json.loads(json.dumps(cfg))
    arg, aux = checkpoint.load_params_file(checkpoint.snapshot_path(prefix, 2))
    assert sorted(arg) == ["fc_bias", "fc_weight"] and not aux      # meta: is not a parameter


def test_a_new_run_into_a_folder_of_another_run_is_refused(tmp_path):
    """The defect: a MAX_ITER 100 run over epochs 1-6 of a MAX_ITER 300 run rewrote 1-2 and
    kept 3-6, which eval then used. Now it stops before training, naming the folder, the
    epochs and the config's differences, and says the ways on."""
    symbol, shapes = _net()
    _write_run(_cfg(tmp_path, "MAX_ITER=300"), 6)
    cfg = _cfg(tmp_path, "MAX_ITER=100")
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.initial_params(cfg, SEC, symbol, shapes)
    message = str(err.value)
    assert str(tmp_path / "snapshots") in message and "epochs 1-6" in message
    assert "MAX_ITER 300 -> 100" in message
    for way in ("--resume", "SNAPSHOT_PATH", "--overwrite"):
        assert way in message
    assert checkpoint.snapshot_epochs(stages.prefix(cfg, SEC)) == [1, 2, 3, 4, 5, 6]


def test_overwrite_deletes_the_earlier_run_and_only_it(tmp_path):
    symbol, shapes = _net()
    old = _cfg(tmp_path, "MAX_ITER=300")
    prefix = _write_run(old, 6)
    other = _write_run(old, 1, kind=methods.get("supervised"))                  # another stage: kept
    with open(prefix + "-history.json", "w") as f:
        f.write("[]")
    start = checkpoint.initial_params(_cfg(tmp_path, "MAX_ITER=100"), SEC, symbol, shapes,
                                      overwrite=True)
    assert start.begin_epoch == 0
    left = sorted(os.listdir(tmp_path / "snapshots"))
    assert left == sorted(os.path.basename(other) + s for s in
                          ("-0001.params", "-0001.optimizer.params", "-config.json"))


def test_overwrite_on_a_worker_that_does_not_write_deletes_nothing(tmp_path):
    symbol, shapes = _net()
    prefix = _write_run(_cfg(tmp_path), 2)
    checkpoint.initial_params(_cfg(tmp_path), SEC, symbol, shapes, overwrite=True,
                              writer=False)
    assert checkpoint.snapshot_epochs(prefix) == [1, 2]


def test_continuing_from_an_earlier_epoch_needs_overwrite_for_the_later_ones(tmp_path):
    symbol, shapes = _net()
    cfg = _cfg(tmp_path, "MAX_ITER=300")
    prefix = _write_run(cfg, 6)
    with pytest.raises(checkpoint.CheckpointError, match="epochs 3-6 from another run"):
        checkpoint.initial_params(cfg, SEC, symbol, shapes, epoch=2)
    start = checkpoint.initial_params(cfg, SEC, symbol, shapes, epoch=2, overwrite=True)
    assert start.begin_epoch == 2 and checkpoint.snapshot_epochs(prefix) == [1, 2]
    np.testing.assert_array_equal(start.arg["fc_weight"].asnumpy(), 2)


def test_resume_past_the_end_of_the_schedule_is_refused(tmp_path):
    """The defect: resume said 'resuming from cam 0003 (iteration 150)' with MAX_ITER_FG 100,
    then wrote the cues with 0002."""
    symbol, shapes = _net()
    _write_run(_cfg(tmp_path, "MAX_ITER=150"), 3)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.initial_params(_cfg(tmp_path, "MAX_ITER=100"), SEC, symbol, shapes,
                                  resume=True)
    assert "iteration 150" in str(err.value) and "ends at iteration 100" in str(err.value)
    assert "MAX_ITER" in str(err.value)
    start = checkpoint.initial_params(_cfg(tmp_path, "MAX_ITER=200"), SEC, symbol, shapes,
                                      resume=True)                # a longer run: continues
    assert start.begin_epoch == 3


def test_resume_compares_the_config_stored_in_the_snapshot(tmp_path):
    """The snapshot's own config decides, not a -config.json that a later run rewrote."""
    symbol, shapes = _net()
    cfg = _cfg(tmp_path, "MAX_ITER=300")
    prefix = _write_run(cfg, 2)
    from cores.config import save_config
    save_config(_cfg(tmp_path, "MAX_ITER=300", "LR=0.5"), prefix + "-config.json")
    start = checkpoint.initial_params(cfg, SEC, symbol, shapes, resume=True)
    assert start.begin_epoch == 2
    with pytest.raises(checkpoint.CheckpointError, match="stored in the snapshot.*LR 0.001 -> "
                                                         "0.5"):
        checkpoint.initial_params(_cfg(tmp_path, "MAX_ITER=300", "LR=0.5"), SEC, symbol,
                                  shapes, resume=True)


def test_eval_of_a_snapshot_of_another_config_says_so(tmp_path, caplog):
    prefix = _write_run(_cfg(tmp_path, "MAX_ITER=300", "Q_FG=0.99"), 6)
    with caplog.at_level("WARNING"):
        notes = checkpoint.check_snapshot_config(prefix, 6, _cfg(tmp_path, "MAX_ITER=100"),
                                                 SEC)
    assert len(notes) == 2 and "Q_FG 0.99 -> 0.996" in notes[0]
    assert "MAX_ITER 300 -> 100" in notes[0] and "past the end" in notes[1]
    assert "sec_vgg16-0006.params" in caplog.text
    assert checkpoint.check_snapshot_config(prefix, 6, _cfg(tmp_path, "MAX_ITER=300",
                                                            "Q_FG=0.99"), SEC) == []


def test_eval_of_an_old_stale_epoch_without_a_stored_config_says_so(tmp_path):
    """Snapshots written before the config was stored in them: a stale later epoch is still
    found by its place past the end of the run's schedule."""
    cfg = _cfg(tmp_path, "MAX_ITER=100")
    prefix = stages.prefix(cfg, SEC)
    os.makedirs(os.path.dirname(prefix))
    for epoch in range(1, 7):
        mx.nd.save(checkpoint.snapshot_path(prefix, epoch),
                   {"arg:fc_weight": mx.nd.ones((2, 3)),
                    "meta:iteration": mx.nd.array([epoch * 50], dtype="int64")})
    notes = checkpoint.check_snapshot_config(prefix, 6, cfg, SEC)
    assert len(notes) == 1 and "iteration 300" in notes[0] and "last epoch 2" in notes[0]


def test_a_snapshot_that_cannot_be_written_is_one_line_naming_it(tmp_path):
    """A file-size limit (as a full disk) in the middle of a snapshot: MXNet's 'FileStream.Write
    incomplete' becomes one OutputError naming the file; no half file or temporary is left."""
    import subprocess
    import sys
    code = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
import mxnet as mx
from cores import checkpoint
from cores.errors import OutputError
from cores.config import load_config
resource.setrlimit(resource.RLIMIT_FSIZE, (200000, 200000))
try:
    checkpoint.save_snapshot(sys.argv[1], 1, {"w": mx.nd.ones((1000, 1000))}, {},
                             load_config())
except OutputError as e:
    print("OUTPUT_ERROR", e)
"""
    prefix = str(tmp_path / "sec_vgg16")
    done = subprocess.run([sys.executable, "-c", code, prefix], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = [line for line in done.stdout.splitlines() if line.startswith("OUTPUT_ERROR")]
    assert len(lines) == 1, done.stdout + done.stderr
    assert "cannot write %s-0001.params" % prefix in lines[0] and "Stack trace" not in lines[0]
    assert os.listdir(tmp_path) == []
