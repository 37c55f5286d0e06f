"""The reference points beside a SEC result on the val list: all-background, and the CAM
network's foreground cues alone (cores/baselines.py). Prints the tables and writes JSON."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cores.baselines import baselines  # noqa: E402
from cores.io import atomic_write_text  # noqa: E402
from cores.runtime import (add_device_args, contexts, parse_args, run_script,  # noqa: E402
                           setup_logging)


def add_arguments(parser):
    add_device_args(parser)
    parser.add_argument("--out", default=None,
                        help="JSON file (default: OUTPUT_PATH/baselines.json)")


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    setup_logging(cfg, "baselines")
    result = baselines(cfg, contexts(args)[:1])
    out = args.out or os.path.join(cfg.OUTPUT_PATH, "baselines.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    run_script(main)
