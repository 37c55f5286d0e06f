"""Report any cue file (fg, bg, merged, or the authors' original cues) against the dataset's
masks: per-class precision and coverage, printed and saved beside it as JSON; --vis K
pictures of image | cues | ground truth."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cores import cues  # noqa: E402
from cores.data.dataset import load_index  # noqa: E402
from cores.localization import report_cues  # noqa: E402
from cores.runtime import parse_args, run_script, setup_logging  # noqa: E402


def add_arguments(parser):
    parser.add_argument("cue_file")
    parser.add_argument("--vis", type=int, default=0, metavar="K")


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    setup_logging(cfg, "cue_report")
    classes, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    cue_set, size = cues.load_cues(args.cue_file)
    kind = os.path.splitext(os.path.basename(args.cue_file))[0]
    if kind.endswith("_cues"):                     # fg_cues.npz -> fg, as cores/stages.py names
        kind = kind[:-len("_cues")]
    report_cues(cfg, kind, cue_set, size, [e for e in train if e["id"] in cue_set], classes,
                args.vis)


if __name__ == "__main__":
    run_script(main)
