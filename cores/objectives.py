"""What a segmentation stage trains on: one entry per objective, with its training symbol, the
targets of each training image on the score grid, and the worker task that loads a sample. SEC
trains on the localization cues with its three losses (method §4); the bound on the ground-truth
masks with softmax cross-entropy. A stage of cores/stages.py names its objective: a new one (an
ablation, grown seeds, a retraining round on pseudo-masks) is an entry here and a stage there,
not a flag threaded through the pipeline."""
import collections
import logging
import os

from tqdm import tqdm

from cores import cues, stages
from cores.data.dataset import DatasetError, read_mask
from cores.symbols import networks


def supervised_cues(entries, size):
    """{id: (3, M)} every labelled pixel of each training image's ground-truth mask."""
    missing = [e["image"] for e in entries if not e.get("mask")]
    if missing:
        raise DatasetError("the supervised bound needs a mask for every training image; %d have "
                           "none, e.g. %s (custom mode: create_dataset.py --masks DIR)"
                           % (len(missing), missing[0]))
    return {e["id"]: cues.mask_cues(read_mask(e["mask"]), size)
            for e in tqdm(entries, desc="ground-truth masks")}


def training_cues(cfg, cue_file=None):
    """({id: (3, M)}, grid size): ``cue_file`` if given ('original': the authors' cues
    converted by tools/convert_original_cues.py), else CACHE_PATH/sec_cues.npz, merged from
    the fg and bg cue files whenever those are newer (method §3)."""
    if cue_file == "original":
        cue_file = stages.cue_path(cfg, "original")
        if not os.path.isfile(cue_file):
            raise cues.CueFileError("%s not found; convert the authors' cues first with "
                                    "tools/convert_original_cues.py" % cue_file)
    if cue_file:
        return cues.load_cues(cue_file)
    merged = stages.cue_path(cfg, "sec")
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


def _cue_targets(cfg, entries, grid, cue_file):
    cue_set, size = training_cues(cfg, cue_file)
    cues.check_classes(cue_set, cfg.CLASS_NUM, cue_file or "the merged cues")
    return cue_set, size


def _mask_targets(cfg, entries, grid, cue_file):
    return supervised_cues(entries, grid), grid


def pseudo_mask_entries(cfg, entries):
    """The training entries with their masks replaced by the pseudo-masks of a retraining
    round (stages.pseudo_mask_dir: eval.py --label writes them); an error naming the folder
    when any is missing."""
    folder = stages.pseudo_mask_dir(cfg)
    out = [dict(e, mask=os.path.join(folder, e["id"] + ".png")) for e in entries]
    missing = [e["mask"] for e in out if not os.path.isfile(e["mask"])]
    if missing:
        raise DatasetError("a retraining round needs a pseudo-mask for every training image; "
                           "%d of %d are missing from %s, e.g. %s: label them first with "
                           "eval.py --label [--stage dsrg] --crf [--flip]"
                           % (len(missing), len(out), folder, missing[0]))
    return out


def _same_entries(cfg, entries):
    return entries


def _crop_task(cfg):
    return "load_crop" if cfg.CROP_RT else "load_supervised"


# symbol(cfg): the training network; targets(cfg, train entries, grid, cue file) -> ({id: (3, M)},
# grid size); task(cfg): the worker task of cores/data/transforms.py; inputs: what the task gives
# besides data and the targets ("small_images": the CRF's image, "labels": image labels; the
# network may take fewer); entries(cfg, train entries): the entries the stage trains on
Objective = collections.namedtuple("Objective", "symbol targets task inputs entries")
OBJECTIVES = {
    "sec": Objective(networks.sec_train_symbol, _cue_targets, lambda cfg: "load_sec",
                     ("small_images", "labels"), _same_entries),
    "supervised": Objective(networks.supervised_train_symbol, _mask_targets,
                            lambda cfg: "load_supervised", (), _same_entries),
    "dsrg": Objective(networks.dsrg_train_symbol, _cue_targets, lambda cfg: "load_sec",
                      ("small_images", "labels"), _same_entries),
    # softmax cross-entropy on pseudo-masks, void ignored: the bound's network and loss
    "retrain": Objective(networks.supervised_train_symbol, _mask_targets, _crop_task, (),
                         pseudo_mask_entries),
}


def objective_of(kind):
    """The objective a segmentation stage trains with."""
    return OBJECTIVES[stages.STAGES[kind]["objective"]]
