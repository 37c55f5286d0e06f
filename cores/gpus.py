"""GPU preflight: before any data is read, each selected GPU is named with its compute
capability, runs a tiny kernel and a cuDNN convolution; a GPU that the installed MXNet cannot
drive ends the script with one line that says why and which routes lead to a build that can.

What the pip wheels hold (MXNet 1.9.1's config/distribution/linux_cu*.cmake): machine code for
compute capabilities 3.0-7.5 (cu101, cu102) or 5.0/6.0/7.0/8.0/8.6 (cu110-cu117), no PTX: they
run on Maxwell through Ampere, on Ada (8.9) by compatibility with 8.6, not on Hopper (9.0)."""
import logging

from cores.errors import SECError

WHEEL_ARCHS = {"cu101": "3.0-7.5", "cu102": "3.0-7.5"}
WHEEL_ARCHS.update({"cu%d" % v: "5.0, 6.0, 7.0, 8.0, 8.6" for v in
                    (110, 112, 113, 114, 115, 116, 117)})
ROUTES = ("Routes: a pip wheel for your CUDA version (make setup MXNET=mxnet-cu117==1.9.1; "
          "cu101/cu102 for compute capability 3.0-7.5, cu110-cu117 for 5.0-8.6 and Ada 8.9), "
          "NVIDIA's NGC MXNet container with this project's venv on top (make setup "
          "MXNET=system; the route to Hopper 9.0), or MXNet built from source with CUDA >= 11.8 "
          "and MXNET_CUDA_ARCH including your GPU's capability (README, 'Install')")


class GPUError(SECError):
    """A selected GPU that this MXNet build cannot use; the message names it."""


class Probe:
    """What the preflight asks of MXNet and the driver (tests give a fake one)."""

    def build(self):
        """(distribution name and version, {feature: enabled}) of the installed MXNet."""
        import importlib.metadata
        import mxnet as mx
        names = [d.metadata["Name"] for d in importlib.metadata.distributions()
                 if (d.metadata["Name"] or "").lower().startswith("mxnet")]
        features = mx.runtime.Features()
        wanted = ("CUDA", "CUDNN", "NCCL", "MKLDNN", "CUDA_RTC", "TENSORRT", "OPENMP")
        return ("%s %s" % (names[0] if names else "mxnet", mx.__version__),
                {k: features.is_enabled(k) for k in wanted if k in features})

    def gpu_count(self):
        import mxnet as mx
        try:
            return mx.context.num_gpus()
        except Exception:                      # a CUDA build without a driver
            return 0

    def name(self, gpu):
        import ctypes
        cuda = ctypes.CDLL("libcuda.so")
        cuda.cuInit(0)
        device, buf = ctypes.c_int(), ctypes.create_string_buffer(128)
        cuda.cuDeviceGet(ctypes.byref(device), gpu)
        cuda.cuDeviceGetName(buf, 128, device)
        return buf.value.decode() or "GPU %d" % gpu

    def capability(self, gpu):
        """(major, minor)."""
        import mxnet as mx
        value = mx.util.get_cuda_compute_capability(mx.gpu(gpu))
        return value // 10, value % 10

    def kernel(self, gpu):
        """Run an elementwise kernel on the GPU; raises what MXNet raises."""
        import mxnet as mx
        x = mx.nd.ones((4, 4), ctx=mx.gpu(gpu)) * 2
        assert float(x.sum().asscalar()) == 32.0

    def cudnn(self, gpu):
        """Run a small cuDNN convolution on the GPU; raises what MXNet raises."""
        import mxnet as mx
        x = mx.nd.ones((1, 3, 8, 8), ctx=mx.gpu(gpu))
        w = mx.nd.ones((4, 3, 3, 3), ctx=mx.gpu(gpu))
        y = mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=4, no_bias=True, cudnn_off=False)
        y.wait_to_read()


def _reason(error):
    """The line of an MXNet error that says what failed (its C++ stack trace left out)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for marks in (("no kernel image", "Check failed", "cannot open"), ("CUDA", "cudnn", "Error")):
        hits = [line for line in lines if any(m in line for m in marks)]
        if hits:
            return hits[0][:300]
    return (lines or [type(error).__name__])[0][:300]


def _archs(build):
    wheel = build.split()[0].lower().replace("mxnet-", "")
    archs = WHEEL_ARCHS.get(wheel)
    if archs:
        return "; this build (%s) holds machine code for compute capability %s and no PTX" % (
            build, archs)
    return "; the installed build is %s" % build


def preflight(gpu_ids, probe=None):
    """Check every GPU in ``gpu_ids`` (duplicates allowed: ``--gpus 0,0`` runs the
    multi-device path on one GPU); returns [(id, name, (major, minor))] and logs one line per
    GPU. Raises GPUError with one line when a GPU cannot be used."""
    probe = probe or Probe()
    build, features = probe.build()
    wanted = sorted(set(gpu_ids))
    if not features.get("CUDA"):
        raise GPUError("--gpus %s: the installed MXNet (%s) is built without CUDA, so it sees "
                       "no GPU. %s" % (",".join(map(str, gpu_ids)), build, ROUTES))
    count = probe.gpu_count()
    missing = [g for g in wanted if g >= count]
    if missing:
        raise GPUError("--gpus %s: GPU %s is not there (%s visible to %s; check "
                       "CUDA_VISIBLE_DEVICES and the driver)" % (
                           ",".join(map(str, gpu_ids)), ", ".join(map(str, missing)),
                           "no GPU" if not count else "%d GPUs" % count, build))
    rows = []
    for gpu in wanted:
        name = probe.name(gpu)
        major, minor = probe.capability(gpu)
        where = "GPU %d (%s, compute capability %d.%d)" % (gpu, name, major, minor)
        try:
            probe.kernel(gpu)
        except Exception as e:
            raise GPUError("%s cannot run this MXNet build's kernels: %s%s. %s" % (
                where, _reason(e), _archs(build), ROUTES)) from None
        if not features.get("CUDNN"):
            raise GPUError("%s: the installed MXNet (%s) is built without cuDNN. %s"
                           % (where, build, ROUTES))
        try:
            probe.cudnn(gpu)
        except Exception as e:
            raise GPUError("%s: cuDNN cannot be loaded or run (%s); the pip wheels load "
                           "libcudnn.so.8, libnvrtc and libcusolver of their CUDA version from "
                           "the system (LD_LIBRARY_PATH), and need libquadmath" % (
                               where, _reason(e))) from None
        rows.append((gpu, name, (major, minor)))
        logging.info("%s: kernels and cuDNN run (%s)", where, build)
    if len(gpu_ids) > len(wanted):
        logging.info("--gpus %s lists a GPU more than once: each entry is a context of its own, "
                     "so one GPU runs the multi-device path (batch slicing, kvstore reduce)",
                     ",".join(map(str, gpu_ids)))
    return rows


def parse_gpus(text):
    """'0,1' -> [0, 1] ('0,0' -> [0, 0]); a clear error for anything else."""
    try:
        ids = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise GPUError("--gpus %r: expected GPU ids separated by commas, e.g. 0,1" % text) \
            from None
    if not ids or min(ids) < 0:
        raise GPUError("--gpus %r: expected GPU ids separated by commas, e.g. 0,1" % text)
    return ids
