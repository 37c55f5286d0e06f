"""Worker processes: crashes surface, no orphans however the parent ends; denormals flush."""
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from cores.denormals import denormals_flushed, flush_denormals, supported
from cores.workers import BrokenProcessPool, process_pool, shared_pool
from tests.conftest import REPO


def _crash(code):
    os._exit(code)


def test_a_worker_crash_raises_and_the_shared_pool_recovers():
    pool = shared_pool(2)
    with pytest.raises(BrokenProcessPool):
        pool.submit(_crash, 3).result(timeout=60)
    fresh = shared_pool(2)
    assert fresh is not pool
    assert fresh.submit(abs, -4).result(timeout=60) == 4


CHILD = """
import sys, time
sys.path.insert(0, %r)
from cores.workers import process_pool
pool = process_pool(2)
pids = [pool.submit(__import__('os').getpid).result() for _ in range(8)]
print(' '.join(str(p) for p in sorted(set(pool._processes))), flush=True)
time.sleep(600)
"""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:       # a zombie is gone for our purposes
        return f.read().split()[2] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_workers_end_when_the_parent_dies(sig):
    # a shell that runs this suite in the background makes its jobs ignore SIGINT, and that
    # disposition is inherited: give the child the default one, as a terminal would
    child = subprocess.Popen([sys.executable, "-c", CHILD % REPO], stdout=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                         signal.SIG_DFL))
    pids = [int(p) for p in child.stdout.readline().split()]
    assert pids and all(_alive(p) for p in pids)     # the pool starts workers on demand
    child.send_signal(sig)
    child.wait(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def _worker_flushes():
    from cores.denormals import denormals_flushed
    return denormals_flushed(), float(np.float32(1e-39) * np.float32(1.0))


@pytest.mark.skipif(not supported(), reason="FTZ/DAZ is set only on x86-64")
def test_denormals_flush_in_this_process_mxnet_and_workers():
    assert flush_denormals() and denormals_flushed()
    assert np.float32(1e-39) * np.float32(1.0) == 0.0
    x = mx.sym.Variable("x")
    out = mx.sym.exp(x) * 1.0
    got = out.bind(mx.cpu(), {"x": mx.nd.array([-88.5, -100.0, 0.0])}).forward()[0].asnumpy()
    assert got[0] == 0.0 and got[1] == 0.0 and got[2] == 1.0     # exp(-88.5) is denormal
    with process_pool(1) as pool:
        assert pool.submit(_worker_flushes).result(timeout=60) == (True, 0.0)
