"""Convert the SEC authors' released cues into CACHE_PATH/original_cues.npz, for
`train_SEC.py --cues original`. The two files ship with the authors' Caffe release
(kolesman/SEC, training/localization_cues/): localization_cues.pickle.gz and its
input_list.txt; give their paths."""
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cores import stages  # noqa: E402
from cores.original_cues import convert_original_cues  # noqa: E402
from cores.runtime import parse_args, run_script, setup_logging  # noqa: E402


def add_arguments(parser):
    parser.add_argument("--pickle", required=True, help="localization_cues.pickle.gz")
    parser.add_argument("--list", required=True, help="input_list.txt")
    parser.add_argument("--out", default=None,
                        help="default: CACHE_PATH/original_cues.npz")


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    setup_logging(cfg, "convert_original_cues")
    out = args.out or stages.cue_path(cfg, "original")
    cue_set, _ = convert_original_cues(args.pickle, args.list, out)
    logging.info("wrote %s: cues of %d images", out, len(cue_set))


if __name__ == "__main__":
    run_script(main)
