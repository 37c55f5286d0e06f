"""The GPU preflight through a fake probe (no GPU here or in CI): one line naming the GPU, its
capability, the build's architectures and the routes; duplicate GPU ids; eval's cuDNN
autotuning; make gpu-check's clear failure without a GPU."""
import argparse
import os
import subprocess
import sys

import pytest

from cores import gpus
from tests.conftest import REPO, load_script


class FakeProbe:
    """A machine as the preflight sees it."""

    def __init__(self, build="mxnet-cu112 1.9.1", cuda=True, cudnn=True, count=1,
                 capability=(8, 0), name="NVIDIA A100-SXM4-40GB", kernel_error=None,
                 cudnn_error=None):
        self._build = build
        self._features = {"CUDA": cuda, "CUDNN": cudnn, "NCCL": cuda, "MKLDNN": True}
        self.count, self.cap, self._name = count, capability, name
        self.kernel_error, self.cudnn_error = kernel_error, cudnn_error
        self.ran = []

    def build(self):
        return self._build, self._features

    def gpu_count(self):
        return self.count

    def name(self, gpu):
        return self._name

    def capability(self, gpu):
        return self.cap

    def kernel(self, gpu):
        self.ran.append(("kernel", gpu))
        if self.kernel_error:
            raise RuntimeError(self.kernel_error)

    def cudnn(self, gpu):
        self.ran.append(("cudnn", gpu))
        if self.cudnn_error:
            raise RuntimeError(self.cudnn_error)


HOPPER_ERROR = ("MXNetError: Traceback (most recent call last):\n  File \"../src/...\"\n"
                "CUDA: Check failed: e == cudaSuccess (209 vs. 0) : no kernel image is "
                "available for execution on the device")


def _one_line(error):
    assert "\n" not in str(error)
    return str(error)


def test_a_supported_gpu_passes_and_is_named(caplog):
    probe = FakeProbe()
    with caplog.at_level("INFO"):
        rows = gpus.preflight([0], probe)
    assert rows == [(0, "NVIDIA A100-SXM4-40GB", (8, 0))]
    assert probe.ran == [("kernel", 0), ("cudnn", 0)]
    assert "GPU 0 (NVIDIA A100-SXM4-40GB, compute capability 8.0): kernels and cuDNN run" in \
        caplog.text


def test_no_gpu_is_one_line_with_the_routes():
    with pytest.raises(gpus.GPUError) as err:
        gpus.preflight([0], FakeProbe(build="mxnet 1.9.1", cuda=False, cudnn=False, count=0))
    line = _one_line(err.value)
    assert "--gpus 0: the installed MXNet (mxnet 1.9.1) is built without CUDA" in line
    assert "make setup MXNET=system" in line and "NGC" in line and "MXNET_CUDA_ARCH" in line
    with pytest.raises(gpus.GPUError, match="GPU 1 is not there \\(1 GPUs visible"):
        gpus.preflight([0, 1], FakeProbe())


def test_an_unsupported_capability_names_the_gpu_the_build_and_the_routes():
    """A Hopper GPU with a pip CUDA wheel: the first kernel fails with 'no kernel image'."""
    probe = FakeProbe(capability=(9, 0), name="NVIDIA H200", kernel_error=HOPPER_ERROR)
    with pytest.raises(gpus.GPUError) as err:
        gpus.preflight([0], probe)
    line = _one_line(err.value)
    assert line.startswith("GPU 0 (NVIDIA H200, compute capability 9.0) cannot run this MXNet "
                           "build's kernels")
    assert "no kernel image is available" in line
    assert "mxnet-cu112 1.9.1) holds machine code for compute capability 5.0, 6.0, 7.0, 8.0, " \
        "8.6 and no PTX" in line
    assert "NGC" in line and "make setup MXNET=system" in line
    assert probe.ran == [("kernel", 0)]                     # nothing more was tried


def test_no_cudnn_is_one_line():
    with pytest.raises(gpus.GPUError) as err:
        gpus.preflight([0], FakeProbe(cudnn_error="MXNetError: libcudnn.so.8: cannot open "
                                                  "shared object file"))
    line = _one_line(err.value)
    assert "GPU 0 (NVIDIA A100-SXM4-40GB, compute capability 8.0): cuDNN cannot be loaded" in line
    assert "libcudnn.so.8" in line
    with pytest.raises(gpus.GPUError, match="built without cuDNN"):
        gpus.preflight([0], FakeProbe(cudnn=False))


def test_the_same_gpu_twice_is_checked_once_and_said(caplog):
    probe = FakeProbe()
    with caplog.at_level("INFO"):
        gpus.preflight([0, 0], probe)
    assert probe.ran == [("kernel", 0), ("cudnn", 0)]
    assert "lists a GPU more than once" in caplog.text


def test_contexts_run_the_preflight_before_anything_else():
    import mxnet as mx
    from cores.runtime import contexts
    args = argparse.Namespace(gpus="0,0", cpus=1)
    assert contexts(args, FakeProbe()) == [mx.gpu(0), mx.gpu(0)]
    with pytest.raises(gpus.GPUError, match="compute capability 9.0"):
        contexts(args, FakeProbe(capability=(9, 0), kernel_error=HOPPER_ERROR))
    with pytest.raises(gpus.GPUError, match="expected GPU ids"):
        contexts(argparse.Namespace(gpus="a,b", cpus=1), FakeProbe())
    assert contexts(argparse.Namespace(gpus=None, cpus=2), FakeProbe(count=0)) == [
        mx.cpu(0), mx.cpu(1)]


def test_a_script_with_gpus_on_this_machine_ends_in_one_line(tmp_path):
    """Here MXNet is the CPU wheel: --gpus ends before any data is read, with one line."""
    done = subprocess.run([sys.executable, os.path.join(REPO, "train_SEC.py"), "--gpus", "0",
                           "--set", "WORK_PATH=%s" % tmp_path], capture_output=True, text=True,
                          cwd=str(tmp_path))
    text = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in text
    errors = [line for line in text.splitlines() if "error:" in line]
    assert len(errors) == 1 and "built without CUDA" in errors[0], text
    assert "dataset index not found" not in text                  # before any data


def test_eval_turns_cudnn_autotuning_off_unless_the_user_set_it(monkeypatch, tmp_path):
    script = load_script("eval.py")
    seen = []
    monkeypatch.setattr(script, "evaluate", lambda *a, **k: seen.append(
        os.environ.get("MXNET_CUDNN_AUTOTUNE_DEFAULT")))
    monkeypatch.setattr(sys, "argv", ["eval.py", "--set", "WORK_PATH=%s" % tmp_path])
    monkeypatch.delenv("MXNET_CUDNN_AUTOTUNE_DEFAULT", raising=False)
    script.main()
    monkeypatch.setenv("MXNET_CUDNN_AUTOTUNE_DEFAULT", "2")
    script.main()
    assert seen == ["0", "2"]


def test_gpu_check_fails_in_one_line_without_a_gpu():
    done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "gpu_check.py")],
                          capture_output=True, text=True)
    text = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in text
    assert len(text.strip().splitlines()) == 1 and "built without CUDA" in text


@pytest.mark.slow
def test_gpu_check_builds_its_table_on_cpu_contexts(tmp_path):
    out = tmp_path / "table.json"
    done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "gpu_check.py"), "--cpu",
                           "--size", "65", "--batch", "2", "--width", "0.0625", "--images", "2",
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    import json
    table = json.load(open(out))
    assert table["feature CUDA"] == "off" and table["feature MKLDNN"] == "on"
    from cores import backbones                   # the device test runs on every backbone
    assert table["device tests on cpu"] == "%d passed, 0 failed" % len(backbones.NAMES)
    for net in ("vgg16", "resnet50"):
        for label in ("one cpu", "cpu listed twice"):
            assert float(table["SEC step s, %s 65, batch 2, %s" % (net, label)]) > 0
        assert float(table["eval --crf --flip s/image, %s 65, cpu" % net]) > 0
    assert "| SEC step s, vgg16 65, batch 2, cpu listed twice " in done.stdout
