"""Convert the SEC authors' released cues (localization_cues.pickle.gz + input_list.txt) into
CACHE_PATH/original_cues.npz, for `train_SEC.py --cues original`, and report them against the
dataset's masks."""
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cores.original_cues import convert_original_cues  # noqa: E402
from cores.runtime import fail, parse_args, setup_logging  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                      "sec_original")


def add_arguments(parser):
    parser.add_argument("--pickle", default=os.path.join(SHARED, "localization_cues.pickle.gz"))
    parser.add_argument("--list", default=os.path.join(SHARED, "input_list.txt"))
    parser.add_argument("--out", default=None,
                        help="default: CACHE_PATH/original_cues.npz")


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    setup_logging(cfg, "convert_original_cues")
    out = args.out or os.path.join(cfg.CACHE_PATH, "original_cues.npz")
    try:
        cue_set, _ = convert_original_cues(args.pickle, args.list, out)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    except Exception as e:  # an UnpicklingError from a refused class
        fail("%s: %s" % (args.pickle, e))
    logging.info("wrote %s: cues of %d images", out, len(cue_set))


if __name__ == "__main__":
    main()
