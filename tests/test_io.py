"""Atomic outputs: renamed into place complete, with the permissions the umask gives."""
import os
import stat

import pytest

from cores.io import atomic_path, atomic_write_text


def test_outputs_honour_the_umask(tmp_path):
    """mkstemp's 0600 made every index, cue file and snapshot owner-only."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "out.json"
        atomic_write_text(str(path), "{}")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        os.umask(0o007)
        atomic_write_text(str(path), "{}")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    finally:
        os.umask(old)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "cues.npz"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["cues.npz"]


def test_a_failed_cue_stage_leaves_the_cue_config_alone(toy_index, monkeypatch, tmp_path):
    """<kind>_cues_config.json describes the cue file beside it, so it is written
    with the cues, not before training."""
    import mxnet as mx
    from cores import classifier, localization, stages
    cfg = type(toy_index[0])(toy_index[0], CACHE_PATH=str(tmp_path))
    config = tmp_path / "fg_cues_config.json"
    config.write_text('{"made": "with the cues beside it"}')

    def crash(*args, **kwargs):
        raise classifier.LearningError("training failed")
    monkeypatch.setattr(localization, "train_cue_network", crash)
    with pytest.raises(classifier.LearningError):
        localization.run_cue_stage(cfg, stages.CAM, [mx.cpu()])
    assert config.read_text() == '{"made": "with the cues beside it"}'


def test_temporaries_of_a_killed_run_are_removed_at_the_next_start(tmp_path):
    from cores.train import remove_stale_temporaries
    prefix = str(tmp_path / "sec_vgg16")
    for name in (".sec_vgg16-0003.abc.tmp.params", ".sec_vgg16-history.x1.tmp.json",
                 ".other-0001.abc.tmp.params", "sec_vgg16-0002.params"):
        (tmp_path / name).write_text("x")
    removed = remove_stale_temporaries(prefix)
    assert len(removed) == 2
    assert sorted(os.listdir(tmp_path)) == [".other-0001.abc.tmp.params",
                                            "sec_vgg16-0002.params"]


def test_unwritable_outputs_stop_before_the_work(tmp_path, toy_index):
    """Found at the first save before (one epoch in), now before training starts.
    (Tests run as root, whom permissions do not stop: a path under a file cannot be made.)"""
    import mxnet as mx
    from cores.errors import OutputError
    from cores.io import check_writable
    from cores import methods
    from cores.segmentation import train
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write to .*a_file/snapshots"):
        check_writable(str(tmp_path / "ok"), str(blocker / "snapshots"))
    cfg = type(toy_index[0])(toy_index[0], SNAPSHOT_PATH=str(blocker / "snapshots"))
    with pytest.raises(OutputError, match="a_file/snapshots"):
        train(cfg, methods.get("sec"), [mx.cpu()], cue_file="unused.npz")
    with pytest.raises(OutputError, match="cannot write .*a_file/x.json"):
        atomic_write_text(str(blocker / "x.json"), "{}")


def test_scripts_end_known_errors_and_ctrl_c_in_one_line(caplog):
    """One wrapper for every script; programming errors keep their
    traceback."""
    from cores.errors import SECError
    from cores.runtime import run_script

    def known():
        raise SECError("dataset/x.json: broken")

    def interrupted():
        raise KeyboardInterrupt

    def bug():
        raise ZeroDivisionError("a bug")
    with pytest.raises(SystemExit) as done:
        run_script(known)
    assert done.value.code == 1 and "error: dataset/x.json: broken" in caplog.text
    with pytest.raises(SystemExit) as done:
        run_script(interrupted)
    assert done.value.code == 130 and "interrupted" in caplog.text
    with pytest.raises(ZeroDivisionError):
        run_script(bug)


def test_workers_leave_ctrl_c_to_their_parent():
    import signal
    from cores.workers import process_pool
    with process_pool(1) as pool:
        handler = pool.submit(signal.getsignal, signal.SIGINT).result()
    assert handler == signal.SIG_IGN


def test_resume_without_a_snapshot_says_so(tmp_path, caplog):
    from cores import checkpoint, methods
    from cores.config import load_config
    cfg = load_config(None, ["RANDOM_INIT=true", "MODEL_PATH=%s" % tmp_path,
                             "SNAPSHOT_PATH=%s" % tmp_path])
    with caplog.at_level("WARNING"):
        arg, aux, state, begin = checkpoint.initial_params(cfg, methods.get("sec"), None, {},
                                                           resume=True)
    assert begin == 0 and "no snapshot" in caplog.text and "from the beginning" in caplog.text


def test_a_failing_demo_stage_is_named_without_a_traceback(capsys):
    from tests.conftest import load_script
    run_demo = load_script("demo/run_demo.py")
    with pytest.raises(SystemExit) as done:
        run_demo.run("SEC training", ["-c", "import sys; sys.exit(3)"])
    assert "the SEC training stage (-c) failed with exit status 3" in str(done.value.code)
