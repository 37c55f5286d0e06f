"""Data iterators: decoding and resizing run in worker processes, batches are prefetched.

Iteration accounting follows the earlier port: an epoch is EPOCH_SIZE batches; batches are
drawn from consecutive shuffled passes over the list (a batch may span two passes), so every
batch is full. The sample order depends only on the seed and the global batch number, which
lets a resumed run see exactly the batches an uninterrupted run would. Under a distributed
kvstore, W workers cut each global batch of W*B consecutive stream positions into their B:
within every pass the workers' shards are disjoint and together cover the list, and the job
sees the images that one process with batch W*B would.
"""
import collections
import logging

import mxnet as mx
import numpy as np

from cores.data import transforms
from cores.data.dataset import DatasetError
from cores.workers import process_pool


class _Loader:
    """Runs a task function over jobs, in a pool of spawned processes or lazily in this
    process (one worker: each job when its result is asked for)."""

    def __init__(self, workers):
        self.pool = None
        if workers > 1:
            self.pool = process_pool(workers)

    def submit(self, fn, jobs):
        if self.pool is None:
            return [_Done(fn, job) for job in jobs]
        return [self.pool.submit(fn, job) for job in jobs]

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class _Done:
    """A result computed lazily in this process, with the Future's ``result()``."""

    def __init__(self, fn, job):
        self.fn, self.job = fn, job

    def result(self):
        return self.fn(self.job)


def sample_order(num_items, seed, start, count):
    """Item indices at global positions start..start+count-1 of the endless shuffled stream."""
    out = []
    while len(out) < count:
        position = start + len(out)
        rounds, offset = divmod(position, num_items)
        perm = np.random.RandomState(seed + rounds).permutation(num_items)
        take = min(count - len(out), num_items - offset)
        out.extend(perm[offset:offset + take].tolist())
    return out


def mirror_flag(seed, position):
    return bool(np.random.RandomState((seed * 7919 + position) % (2 ** 32)).rand() < 0.5)


def crop_seed(seed, position):
    """The seed of the random crop at a stream position (retraining): like the mirror flag,
    a function of the seed and the position alone, so a resumed run crops alike."""
    return (seed * 104729 + 2 * position + 1) % (2 ** 32)


class TrainIter(mx.io.DataIter):
    """Shuffled, endless training batches; ``reset`` starts the next epoch of EPOCH_SIZE
    batches. ``last_ids`` names the images of the last batch (for NaN reports)."""

    def __init__(self, entries, batch_size, epoch_size, seed, task, make_job, data_shapes,
                 label_shapes, workers=1, prefetch=2, mirror=False, start_batch=0,
                 part=(0, 1), keep=None):
        super().__init__(batch_size)
        self.keep = keep         # the task outputs the batch holds (all, in order, if None)
        self.part_index, self.num_parts = part
        if not entries:
            raise ValueError("no training images")
        self.entries, self.epoch_size, self.seed = entries, epoch_size, seed
        self.task, self.make_job, self.mirror = task, make_job, mirror
        self._data_shapes, self._label_shapes = data_shapes, label_shapes
        self.next_batch = start_batch          # global batch number
        self.batch_in_epoch = 0
        self.prefetch = max(1, prefetch)
        self.loader = _Loader(workers)
        self.pending = collections.deque()
        self.last_ids = []

    @property
    def provide_data(self):
        return [mx.io.DataDesc(n, s) for n, s in self._data_shapes]

    @property
    def provide_label(self):
        return [mx.io.DataDesc(n, s) for n, s in self._label_shapes]

    def _submit(self, batch_no):
        start = (batch_no * self.num_parts + self.part_index) * self.batch_size
        order = sample_order(len(self.entries), self.seed, start, self.batch_size)
        jobs = [self.make_job(self.entries[i],
                              self.mirror and mirror_flag(self.seed, start + k), start + k)
                for k, i in enumerate(order)]
        ids = [self.entries[i]["id"] for i in order]
        self.pending.append((batch_no, ids, self.loader.submit(self.task, jobs)))

    def reset(self):
        self.batch_in_epoch = 0

    def next(self):
        if self.batch_in_epoch >= self.epoch_size:
            raise StopIteration
        queued = self.pending[-1][0] + 1 if self.pending else self.next_batch
        while queued < self.next_batch + self.prefetch:
            self._submit(queued)
            queued += 1
        batch_no, ids, futures = self.pending.popleft()
        samples = [f.result() for f in futures]
        if self.keep is not None:
            samples = [[sample[i] for i in self.keep] for sample in samples]
        self.next_batch = batch_no + 1
        self.batch_in_epoch += 1
        self.last_ids = ids
        arrays = [np.stack(parts) for parts in zip(*samples)]
        n_data = len(self._data_shapes)
        return mx.io.DataBatch(data=[mx.nd.array(a) for a in arrays[:n_data]],
                               label=[mx.nd.array(a) for a in arrays[n_data:]],
                               provide_data=self.provide_data,
                               provide_label=self.provide_label)

    def close(self):
        self.loader.close()
        self.pending.clear()


def _part(cluster):
    return (cluster.rank, cluster.num_workers) if cluster is not None else (0, 1)


def multilabel_iter(cfg, entries, batch_size, epoch_size, start_batch=0, cluster=None,
                    mirror=False):
    """(data, label) batches for the saliency and CAM networks."""
    size, num_fg = cfg.INPUT_SIZE, cfg.CLASS_NUM - 1

    def make_job(entry, mirror, position):
        return (entry, size, cfg.PIXEL_MEAN, cfg.CHANNEL_ORDER, num_fg, mirror)

    from cores.workers import worker_count
    return TrainIter(entries, batch_size, epoch_size, cfg.SEED, transforms.load_multilabel,
                     make_job, [("data", (batch_size, 3, size, size))],
                     [("label", (batch_size, num_fg))], worker_count(cfg.DATA_WORKERS),
                     cfg.PREFETCH, mirror, start_batch, _part(cluster))


# the targets and labels of a segmentation batch (the module's labels); the rest are its data
LABEL_INPUTS = ("labels", "cues")


def segmentation_iter(cfg, entries, cues, out_size, schedule, task, shapes, start_batch=0,
                      cluster=None):
    """Batches for a segmentation method: ``task`` (worker function, the names of its outputs
    in order: cores/methods/) loads each sample; the batch holds the outputs that ``shapes``
    ({name: shape}, the network's inputs: data, cues and the method's) names, data first.
    ``cues`` maps image id to its (3, M) targets on the score grid; batch and epoch size and
    mirroring from ``schedule`` (cores/stages.py)."""
    size, num_classes = cfg.INPUT_SIZE, cfg.CLASS_NUM
    missing = [e["id"] for e in entries if e["id"] not in cues]
    if missing:
        from cores.cues import CueFileError
        raise CueFileError("the cue file has no cues for %d training images, e.g. %s"
                           % (len(missing), ", ".join(missing[:5])))

    def make_job(entry, mirror, position):
        return (entry, size, out_size, cfg.PIXEL_MEAN, cfg.CHANNEL_ORDER, num_classes,
                cues[entry["id"]], mirror, crop_seed(cfg.SEED, position))

    from cores.workers import worker_count
    function, outputs = task
    data = [(n, s) for n, s in shapes.items() if n not in LABEL_INPUTS]
    labels = [(n, shapes[n]) for n in LABEL_INPUTS if n in shapes]
    keep = [outputs.index(name) for name, _ in data + labels]
    return TrainIter(entries, schedule.batch_size, schedule.epoch_size, cfg.SEED, function,
                     make_job, data, labels, worker_count(cfg.DATA_WORKERS), cfg.PREFETCH,
                     schedule.mirror, start_batch, _part(cluster), keep=keep)


def inference_stream(cfg, entries, workers=None, prefetch=None, corners=False, skipped=None,
                     converted=None):
    """Yields (entry, data (3,S,S), original RGB, mask or None) in list order, decoding ahead
    in worker processes (``workers`` 1: in this process, when each image is asked for);
    memory stays flat in the number of images. ``corners``: resize on the corner-aligned grid
    (evaluation's TEST_INTERPOLATION). ``skipped``, a list: images that cannot be read are
    logged, appended to it and passed over instead of ending the run. ``converted``, a dict:
    counts the images converted to RGB by kind (grayscale, 16-bit, CMYK, ...)."""
    from cores.workers import worker_count
    workers = worker_count(cfg.DATA_WORKERS) if workers is None else workers
    ahead = max(2, (prefetch or cfg.PREFETCH) * max(1, workers))
    loader = _Loader(workers)
    pending = collections.deque()
    try:
        position = 0
        while position < len(entries) or pending:
            while position < len(entries) and len(pending) < ahead:
                entry = entries[position]
                job = (entry, cfg.INPUT_SIZE, cfg.PIXEL_MEAN, cfg.CHANNEL_ORDER, corners)
                pending.append((entry, loader.submit(transforms.load_inference, [job])[0]))
                position += 1
            entry, future = pending.popleft()
            try:
                data, rgb, mask, kind = future.result()
            except DatasetError as e:
                if skipped is None:
                    raise
                logging.warning("WARNING: skipped: %s", e)
                skipped.append((entry["image"], str(e)))
                continue
            if kind and converted is not None:
                converted[kind] = converted.get(kind, 0) + 1
            yield entry, data, rgb, mask
    finally:
        loader.close()
