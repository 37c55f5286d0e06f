"""What every script shares at its end: one line for an error or Ctrl-C, on a line of its own;
the demo driver ends the same way and honours --root."""
import io
import logging
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from tqdm import tqdm

from tests.conftest import REPO, load_script


def _load_demo():
    return load_script("demo/run_demo.py")


def test_interrupted_starts_a_line_of_its_own_not_the_progress_bars(monkeypatch):
    """'interrupted' was printed after the bar's text, on the bar's line."""
    from cores.runtime import run_script
    screen = io.StringIO()                       # one terminal for the bar and the log
    handler = logging.StreamHandler(screen)
    logging.getLogger().addHandler(handler)
    try:
        def stage():
            bar = tqdm(total=10, file=screen, desc="sec_vgg16 epoch 1/2", leave=False)
            bar.update(3)
            raise KeyboardInterrupt
        with pytest.raises(SystemExit) as done:
            run_script(stage)
    finally:
        logging.getLogger().removeHandler(handler)
    assert done.value.code == 130
    text = screen.getvalue()
    before = text[:text.index("interrupted: every")]
    line = before.split("\n")[-1].split("\r")[-1]      # what is left on the line, on screen
    assert line.strip() == "", repr(before[-80:])
    assert not [b for b in getattr(tqdm, "_instances", ()) if not b.disable]


def test_demo_root_moves_every_output_and_the_toy_data(monkeypatch, tmp_path):
    """--root DIR was accepted and ignored (everything went to demo_run/)."""
    demo = _load_demo()
    calls = []
    monkeypatch.setattr(demo, "run", lambda step, args: calls.append(args) or 0.0)
    monkeypatch.setattr(demo, "table", lambda cfg, times: calls.append(cfg))
    monkeypatch.setattr(sys, "argv", ["run_demo.py", "--root", str(tmp_path / "mine")])
    demo.main()
    cfg = calls[-1]
    root = str(tmp_path / "mine")
    for key in ("DATASET_PATH", "MODEL_PATH", "SNAPSHOT_PATH", "CACHE_PATH", "OUTPUT_PATH",
                "LOG_PATH", "VOCDEVKIT_PATH", "SBD_PATH"):
        assert cfg[key].startswith(root + os.sep), key
    assert calls[0] == ["demo/make_toy_voc.py", os.path.join(root, "data")]
    assert all("WORK_PATH=" + root in args for args in calls[1:-1])


@pytest.mark.slow
def test_ctrl_c_during_the_demo_is_one_line_and_130(tmp_path):
    """Ctrl-C in make demo printed a 20-line KeyboardInterrupt traceback and a 'leaked
    semaphore objects' warning (rc -2): now the stage ends cleanly, then the demo, with 130."""
    proc = subprocess.Popen(
        [sys.executable, "demo/run_demo.py", "--root", str(tmp_path / "run"), "--set",
         "MAX_ITER_PRE=100000", "EPOCH_SIZE_PRE=100000", "DATA_WORKERS=2"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,     # a terminal's Ctrl-C: jobs of a background shell (CI's)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))    # ignore SIGINT
    seen, started = [], False
    deadline = time.time() + 300
    for line in proc.stdout:           # into the pretraining loop: its workers are running
        seen.append(line)
        started = started or "=== backbone pretraining" in line
        if (started and re.search(r"\biter \d+", line)) or time.time() > deadline:
            break
    os.killpg(proc.pid, signal.SIGINT)            # what Ctrl-C in a terminal sends
    try:
        rest, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rest = proc.communicate()[0]
        pytest.fail("the demo did not end within 240 s of Ctrl-C:\n" + ("".join(seen)
                                                                        + rest)[-3000:])
    text = "".join(seen) + rest
    assert proc.returncode == 130, text[-3000:]
    assert "Traceback" not in text and "leaked semaphore" not in text, text[-3000:]
    assert "demo interrupted during backbone pretraining" in text
    assert not [f for _, _, files in os.walk(tmp_path) for f in files if ".tmp" in f]


def test_stage_flags_name_one_segmentation_method():
    import argparse
    from cores import methods
    from cores.runtime import add_method_args, method_of
    parser = argparse.ArgumentParser()
    add_method_args(parser, "train")
    assert method_of(parser.parse_args([])) is methods.get("sec")
    assert method_of(parser.parse_args(["--supervised"])) is methods.get("supervised")
    assert method_of(parser.parse_args(["--stage", "dsrg"])) is methods.get("dsrg")
    with pytest.raises(SystemExit, match="two methods"):
        method_of(parser.parse_args(["--stage", "retrain", "--supervised"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--stage", "grow"])
