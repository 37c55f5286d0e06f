"""Write the synthetic toy VOC 2012 + SBD data set (the embedded default of every stage)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cores.data.toy import make_toy_voc  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", nargs="?", default="dataset",
                        help="folder that receives VOCdevkit/ and benchmark_RELEASE/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voc-train", type=int, default=24)
    parser.add_argument("--voc-val", type=int, default=20)
    parser.add_argument("--sbd-only", type=int, default=80)
    args = parser.parse_args()
    ids = make_toy_voc(args.root, args.seed, args.voc_train, args.voc_val, args.sbd_only)
    print("toy VOC written to %s: %s" % (args.root, ", ".join(
        "%s %d" % (k, len(v)) for k, v in ids.items())))


if __name__ == "__main__":
    main()
