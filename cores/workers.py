"""Process pools for CPU-side work (dense CRF, decoding) that must not hold the GIL.

Pools use the 'spawn' start method: forking a process that runs MXNet's engine threads (or
from inside a CustomOp callback) can deadlock. A pool is created once per size and shut down
at exit.
"""
import atexit
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

_POOLS = {}


def shared_pool(workers):
    """A process pool of ``workers`` processes, or None when ``workers`` <= 1 (run serially)."""
    if workers is None or workers <= 1:
        return None
    pool = _POOLS.get(workers)
    if pool is None:
        pool = ProcessPoolExecutor(max_workers=workers,
                                   mp_context=multiprocessing.get_context("spawn"))
        _POOLS[workers] = pool
    return pool


def shutdown_pools():
    for pool in _POOLS.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _POOLS.clear()


atexit.register(shutdown_pools)
