"""Write a variant of the generated dataset family (datagen/): the demo's ``demo``
variant by default, in the VOC 2012 + SBD layout (or, for custom-layout variants, an image
folder, labels.csv, classes.txt and masks)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from datagen import toy, variants  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", nargs="?", default="dataset",
                        help="folder that receives the data set")
    parser.add_argument("--variant", default="demo", choices=sorted(variants.VARIANTS))
    parser.add_argument("--seed", type=int, default=None, help="override the variant's seed")
    parser.add_argument("--train", type=int, default=None, help="training images")
    parser.add_argument("--val", type=int, default=None, help="validation images")
    args = parser.parse_args()
    overrides = {k: v for k, v in (("seed", args.seed), ("n_train", args.train),
                                   ("n_val", args.val)) if v is not None}
    spec = variants.variant(args.variant, **overrides)
    try:
        written = toy.make_dataset(args.root, spec)
    except ValueError as e:
        parser.error(str(e))
    if spec.get("voc_train") and "voc_train" in written and len(written["voc_train"]) != \
            spec["voc_train"]:
        print("note: %d training images cannot hold the variant's %d VOC training images; %d "
              "of them are VOC training images (with VOC masks), the rest SBD-only"
              % (spec["n_train"], spec["voc_train"], len(written["voc_train"])))
    print("%s variant written to %s (%d classes, %s layout): %s" % (
        args.variant, args.root, spec["classes"], spec["layout"], ", ".join(
            "%s %s" % (k, len(v) if isinstance(v, list) else v) for k, v in written.items())))


if __name__ == "__main__":
    main()
