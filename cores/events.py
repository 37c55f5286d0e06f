"""TensorBoard event files (tensorboardX: no TensorFlow needed) for watching a run while it goes:
one run folder per stage and config under LOG_PATH/tensorboard/, written by rank 0. With
TENSORBOARD off nothing is imported and nothing is written."""
import hashlib
import json
import os
import struct

from cores import stages

SAMPLE_IMAGES = 4          # train images shown every epoch (the first of a seeded shuffle)


class EventLog:
    """Scalars and images of one run; every call is a no-op without a folder."""

    def __init__(self, folder=None):
        self.folder = folder
        self._writer = None
        if folder:
            from tensorboardX import SummaryWriter
            os.makedirs(folder, exist_ok=True)
            self._writer = SummaryWriter(folder, flush_secs=10)

    def __bool__(self):
        return self._writer is not None

    def scalar(self, tag, value, step):
        if self._writer is not None:
            self._writer.add_scalar(tag, float(value), int(step))

    def image(self, tag, rgb, step):
        """``rgb``: (H, W, 3) uint8."""
        if self._writer is not None:
            self._writer.add_image(tag, rgb, int(step), dataformats="HWC")

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def config_tag(cfg):
    """8 hex digits naming a config (same config, same run folder: a resumed run continues it)."""
    text = json.dumps({k: cfg[k] for k in sorted(cfg)}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def run_folder(cfg, name):
    return os.path.join(cfg.LOG_PATH, "tensorboard", "%s-%s" % (name, config_tag(cfg)))


def open_run(cfg, stage, rank=0):
    """The event log of training ``stage`` (cores/stages.py, a method), or an inactive one."""
    if not cfg.TENSORBOARD or rank != 0:
        return EventLog()
    return EventLog(run_folder(cfg, os.path.basename(stages.prefix(cfg, stage))))


def sample_entries(cfg, entries, count=SAMPLE_IMAGES):
    """A fixed, seeded handful of training images (the same in every epoch and run)."""
    import numpy as np
    order = np.random.RandomState(cfg.SEED).permutation(len(entries))[:count]
    return [entries[i] for i in sorted(order)]


def read_events(folder):
    """{'scalars': {tag: [(step, value)]}, 'images': {tag: [step]}} of every event file in
    ``folder``: TensorBoard's record format read back without TensorBoard."""
    from tensorboardX.proto import event_pb2
    out = {"scalars": {}, "images": {}}
    for name in sorted(os.listdir(folder)):
        if not name.startswith("events.out.tfevents"):
            continue
        with open(os.path.join(folder, name), "rb") as f:
            while True:
                header = f.read(12)
                if len(header) < 12:
                    break
                length = struct.unpack("<Q", header[:8])[0]
                data = f.read(length)
                f.read(4)
                event = event_pb2.Event.FromString(data)
                for value in event.summary.value:
                    if value.HasField("image"):
                        out["images"].setdefault(value.tag, []).append(event.step)
                    else:
                        out["scalars"].setdefault(value.tag, []).append(
                            (event.step, value.simple_value))
    return out
