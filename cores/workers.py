"""Process pools for CPU-side work (dense CRF, decoding) that must not hold the GIL.

Pools use the 'spawn' start method: forking a process that runs MXNet's engine threads (or
from inside a CustomOp callback) can deadlock. Workers flush denormals like the main process
and end by themselves within a second when their parent dies, however it dies (no orphans);
a worker that crashes makes the pending call raise ``BrokenProcessPool``.
"""
import atexit
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

_POOLS = {}


def worker_count(value):
    """A configured process count; 0 means one per available core."""
    if value and value > 0:
        return int(value)
    from cores import cpu_count
    return cpu_count()


def _watch_parent(parent_pid):
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(0.5)


def _init_worker(parent_pid):
    import signal
    from cores.denormals import flush_denormals
    flush_denormals()
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to report, once
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def process_pool(workers):
    """A new pool of ``workers`` spawned processes."""
    return ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(),))


def shared_pool(workers):
    """A long-lived pool of ``workers`` processes, or None when ``workers`` < 1."""
    if workers is None or workers < 1:
        return None
    pool = _POOLS.get(workers)
    if pool is not None and getattr(pool, "_broken", False):
        pool.shutdown(wait=False, cancel_futures=True)
        pool = None
    if pool is None:
        pool = process_pool(workers)
        # start every worker now (the pool starts them on demand), so that the first
        # batches do not pay for process start-up
        list(pool.map(time.sleep, [0.05] * workers))
        _POOLS[workers] = pool
    return pool


def shutdown_pools():
    for pool in _POOLS.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _POOLS.clear()


atexit.register(shutdown_pools)

__all__ = ["BrokenProcessPool", "process_pool", "shared_pool", "shutdown_pools"]
