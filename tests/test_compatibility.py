"""The code runs on Python 3.10 (NVIDIA's MXNet container) as well as 3.11, and `make setup
MXNET=system` puts the project's venv on top of an MXNet that is already installed without
reinstalling it or moving its numpy."""
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

SOURCES = ["cores", "tests", "tools", "bench", "demo", "create_dataset.py", "eval.py",
           "train_SEC.py", "train_bg_cues.py", "train_fg_cues.py"]


def _vermin(paths):
    exe = shutil.which("vermin", path=os.path.dirname(sys.executable)) or shutil.which("vermin")
    if exe is None:
        pytest.fail("vermin is not installed (dependencies.txt pins it)")
    return subprocess.run([exe, "-q", "--no-tips", "--eval-annotations", "-t=3.10-",
                           "--violations"] + paths, cwd=REPO, capture_output=True, text=True)


def test_no_code_needs_more_than_python_3_10():
    done = _vermin(SOURCES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_sees_what_needs_3_11(tmp_path):
    (tmp_path / "new.py").write_text("import tomllib\n")
    done = _vermin([str(tmp_path / "new.py")])
    assert done.returncode != 0 and "tomllib" in done.stdout


@pytest.mark.slow
def test_setup_on_a_system_mxnet_keeps_it(tmp_path):
    """A base Python with MXNet and numpy installed (here in a user site, as NGC's are in the
    system site), then `make setup MXNET=system`: the venv imports that MXNet and numpy, pip
    installed neither into the venv, and tests run on it."""
    base = tmp_path / "base"
    env = dict(os.environ, PYTHONUSERBASE=str(base), PIP_DISABLE_PIP_VERSION_CHECK="1")
    python = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([python, "-m", "pip", "install", "-q", "--user", "mxnet==1.9.1",
                    "numpy==1.23.5"], env=env, check=True, capture_output=True)
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "-C", REPO, "setup", "MXNET=system", "PYTHON=" + python,
                           "VENV=" + str(venv)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import mxnet, numpy; "
                            "print(mxnet.__file__); print(numpy.__version__, numpy.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where[0].startswith(str(base)) and where[1] == "1.23.5"
    assert where[2].startswith(str(base))
    site = [p for p in venv.glob("lib/python*/site-packages")][0]
    assert not list(site.glob("mxnet*")) and not list(site.glob("numpy*"))
    assert list(site.glob("scipy*")) and list(site.glob("pydensecrf*"))
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p",
                           "no:cacheprovider", "tests/test_config.py", "tests/test_sec_losses.py",
                           "tests/test_gpus.py", "-m", "not slow"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout.splitlines()[-1]
