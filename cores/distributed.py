"""Where this process stands in a training job: one process, or one worker of MXNet's
distributed kvstore (ps-lite: a scheduler, servers and workers, set up by the DMLC_*
environment variables that tools/launch.py or a cluster's own launcher provides).

The rules (docs/distributed.md): BATCH_SIZE is each worker's batch; the gradient of an
iteration is the mean over all workers' batches, and the learning rate applies to that mean,
so W workers with batch b train exactly like one process with batch W*b. Rank 0 alone writes
snapshots, log files, cue files and reports; all workers read from a shared filesystem.
"""
import atexit

import mxnet as mx

KVSTORES = ("local", "device", "dist_sync", "dist_device_sync", "dist_async")


class Cluster:
    """This process's rank among ``num_workers`` and the kvstore connecting them."""

    def __init__(self, kvstore="local"):
        if kvstore not in KVSTORES:
            raise ValueError("--kvstore %r; choose one of %s" % (kvstore, ", ".join(KVSTORES)))
        self.type = kvstore
        self.kv = mx.kv.create(kvstore) if kvstore.startswith("dist") else None
        self.rank = self.kv.rank if self.kv else 0
        self.num_workers = self.kv.num_workers if self.kv else 1

    @property
    def is_root(self):
        return self.rank == 0

    @property
    def synchronous(self):
        return self.kv is None or "sync" in self.type

    def kvstore_for(self, ctx):
        """What Module.init_optimizer gets: the distributed store, the local one for several
        devices, or None for a single device on one machine."""
        if self.kv is not None:
            return self.kv
        return self.type if len(ctx) > 1 else None

    def barrier(self):
        """Wait for every worker (a no-op for one process)."""
        if self.kv is not None:
            self.kv._barrier()

    def my_share(self, items):
        """Every num_workers-th item from this rank: shares are disjoint and cover ``items``."""
        return items[self.rank::self.num_workers]


_CLUSTERS = {}


@atexit.register
def _close():
    """Release distributed kvstores before interpreter teardown: ps-lite's finalisation
    aborts the process ("terminate called without an active exception") when it runs during
    module destruction."""
    for c in _CLUSTERS.values():
        c.kv = None
    _CLUSTERS.clear()
    import gc
    gc.collect()


def cluster(kvstore="local"):
    """The process's Cluster (a distributed kvstore is created once per process)."""
    if kvstore not in _CLUSTERS:
        _CLUSTERS[kvstore] = Cluster(kvstore)
    return _CLUSTERS[kvstore]


def add_kvstore_arg(parser):
    parser.add_argument("--kvstore", default="local", choices=KVSTORES,
                        help="local/device: one machine; dist_*: MXNet's distributed kvstore "
                             "(start the job with tools/launch.py or DMLC_* variables)")
