"""Flush-to-zero and denormals-are-zero for this process's floating point (denormal stalls slowed
training several-fold on CPU).

Once softmax probabilities sit at their floor, gradients hold denormal floats, and a CPU step
on them can take 10-20x longer (seen with ResNet50). Setting the FTZ and DAZ bits of the x86
MXCSR register makes such values zero. The register is per thread and new threads copy it, so
this runs in the main thread before training and in every worker process; MXNet's CPU
operators were measured to honour it (tests/test_speed.py). Other processors: a no-op that
says so.
"""
import ctypes
import logging
import mmap
import platform

import numpy as np

_FTZ_DAZ = 0x8040
# sub rsp,8; stmxcsr [rsp]; or dword [rsp],0x8040; ldmxcsr [rsp]; add rsp,8; ret
_SET = bytes([0x48, 0x83, 0xEC, 0x08, 0x0F, 0xAE, 0x1C, 0x24, 0x81, 0x0C, 0x24, 0x40, 0x80,
              0x00, 0x00, 0x0F, 0xAE, 0x14, 0x24, 0x48, 0x83, 0xC4, 0x08, 0xC3])
# sub rsp,8; stmxcsr [rsp]; mov eax,[rsp]; add rsp,8; ret
_GET = bytes([0x48, 0x83, 0xEC, 0x08, 0x0F, 0xAE, 0x1C, 0x24, 0x8B, 0x04, 0x24, 0x48, 0x83,
              0xC4, 0x08, 0xC3])
_FUNCTIONS = {}


def _native(name, code, restype):
    if name not in _FUNCTIONS:
        buf = mmap.mmap(-1, mmap.PAGESIZE,
                        prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        buf.write(code)
        address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        _FUNCTIONS[name] = (ctypes.CFUNCTYPE(restype)(address), buf)
    return _FUNCTIONS[name][0]


def supported():
    return platform.machine().lower() in ("x86_64", "amd64")


def flush_denormals():
    """Set FTZ and DAZ in the calling thread; True when they are on afterwards."""
    if not supported():
        logging.warning("flush-to-zero is not available on %s; denormal floats may slow "
                        "CPU training", platform.machine())
        return False
    np.finfo(np.float32), np.finfo(np.float64)   # cache numpy's limits before DAZ hides them
    _native("set", _SET, None)()
    return denormals_flushed()


def denormals_flushed():
    """Whether FTZ and DAZ are set in the calling thread."""
    if not supported():
        return False
    return (_native("get", _GET, ctypes.c_uint32)() & _FTZ_DAZ) == _FTZ_DAZ
