"""Where a segmentation's errors are: for each eval output folder (or its metrics.json), mIoU,
predicted over true foreground area, and the share of the wrong pixels that are background
taken for an object, an object taken for background, one object for another
(cores/metrics.py error_kinds). Reads the confusion matrix, so older outputs work too.

    python tools/error_kinds.py outputs/sec_vgg16-0008_flip_crf outputs/supervised_vgg16-*
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cores.metrics import error_kinds, read_metrics  # noqa: E402


def row(path):
    try:
        metrics = read_metrics(path)
        kinds = error_kinds(metrics["confusion_matrix"])
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit("%s: not an eval.py metrics.json (%s)" % (path, e))
    cells = ["-" if metrics.get("mIoU") is None else "%.3f" % metrics["mIoU"]] + [
        "-" if kinds[k] is None else ("%.3f" if k == "fg_area_ratio" else "%.2f") % kinds[k]
        for k in ("fg_area_ratio", "bg_as_fg", "fg_as_bg", "fg_as_other_fg")]
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    return "| %s | %s |" % (folder or ".", " | ".join(cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outputs", nargs="+", help="eval output folders or metrics.json files")
    args = parser.parse_args()
    rows = [row(path) for path in args.outputs]
    print("| output | mIoU | fg area pred/true | bg as object | object as bg | object as other |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
