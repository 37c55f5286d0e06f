"""What a segmentation method is (the interface every module of cores/methods/ fills in), and
the parts methods share: the targets of each training image on the score grid (cues or masks)
and the worker tasks that load a training sample. No MXNet at import: the config reads the
methods' keys, and worker processes import the tasks."""
import collections
import os

from cores import stages
from cores.errors import SECError

# a row of the quality benchmark (bench/quality.py): its name, its --set overrides ({KEY} is
# the recipe's value of KEY) and, for a method trained on pseudo-masks, the row whose snapshot
# labels them
Row = collections.namedtuple("Row", "name sets source")
Row.__new__.__defaults__ = ((), None)


class MethodError(SECError, ValueError):
    """An unknown method, or two of one name."""


class Method(stages.Stage):
    """A segmentation method, trained on the SEC network (cores/segmentation.py).

    Class attributes a module sets: ``name`` (--stage, and its files' name), ``help`` (one
    line), ``order`` (its place in listings), ``defaults`` ({KEY: value}: the config keys it
    owns, its schedule keys among them), ``positive``, ``unit_interval``, ``choices``
    ({KEY: values}) (checked by the config), ``resume_keys`` and the schedule keys of
    ``stages.Stage``, ``inputs`` (what its worker task gives besides ``data`` and ``cues``:
    "small_images", the CRF's image; "labels", the image labels) and ``rows``.

    Methods a module defines: ``symbol(cfg)``, the training network (MakeLoss outputs named
    ``<loss>_loss``); optionally ``targets``, ``task``, ``entries``, ``check``."""
    help = ""
    order = 50
    defaults = {}
    positive = ()
    unit_interval = ()
    choices = {}
    inputs = ()
    rows = None

    def symbol(self, cfg):
        raise NotImplementedError("%s defines no training network" % type(self).__name__)

    def targets(self, cfg, entries, grid, cue_file=None):
        """({id: (3, M)} rows class, y, x on the score grid, its size): what each training
        image is trained towards. By default SEC's localization cues (``training_cues``)."""
        cue_set, size = training_cues(cfg, cue_file)
        from cores import cues
        cues.check_classes(cue_set, cfg.CLASS_NUM, cue_file or "the merged cues")
        return cue_set, size

    def task(self, cfg):
        """(worker task, its outputs in order): loads one training sample (cores/data/)."""
        from cores.data import transforms
        return transforms.load_sec, ("data", "small_images", "labels", "cues")

    def entries(self, cfg, entries):
        """The training entries the method trains on (e.g. with pseudo-masks)."""
        return entries

    def check(self, cfg):
        """Raise a ConfigError for values the declarative checks cannot see."""

    @property
    def flag(self):
        """The command-line flag that selects it (train_SEC.py, eval.py)."""
        return "--stage " + self.name

    def bench_rows(self):
        """The rows the quality benchmark measures this method by (default: one, its name)."""
        return list(self.rows) if self.rows is not None else [Row(self.name)]

    def input_shapes(self, cfg, batch, size):
        """{name: shape} of every input its task can give: ``data`` (N, 3, S, S), the
        ``cues`` (N, C, H, W) targets, and its ``inputs``."""
        c = cfg.CLASS_NUM
        shapes = {"data": stages.image_shape(cfg, batch), "small_images": (batch, size, size, 3),
                  "labels": (batch, c), "cues": (batch, c, size, size)}
        return {k: v for k, v in shapes.items()
                if k in ("data", "cues") or k in self.inputs}


# ---------------------------------------------------------------- targets methods share
def training_cues(cfg, cue_file=None):
    """({id: (3, M)}, grid size): ``cue_file`` if given ('original': the authors' cues
    converted by tools/convert_original_cues.py), else CACHE_PATH/sec_cues.npz, merged from
    the fg and bg cue files whenever those are newer (method §3)."""
    import logging
    from cores import cues
    if cue_file == "original":
        cue_file = stages.cue_path(cfg, "original")
        if not os.path.isfile(cue_file):
            raise cues.CueFileError("%s not found; convert the authors' cues first with "
                                    "tools/convert_original_cues.py" % cue_file)
    if cue_file:
        return cues.load_cues(cue_file)
    merged = stages.cue_path(cfg, stages.MERGED)
    fg, bg = stages.cue_path(cfg, "fg"), stages.cue_path(cfg, "bg")
    for path, script in ((fg, "train_fg_cues.py"), (bg, "train_bg_cues.py")):
        if not os.path.isfile(path) and not os.path.isfile(merged):
            raise cues.CueFileError("cue file not found: %s; run %s first" % (path, script))
    stale = not os.path.isfile(merged) or any(
        os.path.isfile(p) and os.path.getmtime(p) > os.path.getmtime(merged) for p in (fg, bg))
    if stale:
        logging.info("merging %s and %s into %s", fg, bg, merged)
        return cues.merge_cue_files(fg, bg, merged)
    return cues.load_cues(merged)


def mask_targets(entries, size):
    """{id: (3, M)} every labelled pixel of each training image's mask on the score grid."""
    from tqdm import tqdm
    from cores import cues
    from cores.data.dataset import DatasetError, read_mask
    missing = [e["image"] for e in entries if not e.get("mask")]
    if missing:
        raise DatasetError("the supervised bound needs a mask for every training image; %d have "
                           "none, e.g. %s (custom mode: create_dataset.py --masks DIR)"
                           % (len(missing), missing[0]))
    return {e["id"]: cues.mask_cues(read_mask(e["mask"]), size)
            for e in tqdm(entries, desc="ground-truth masks")}
