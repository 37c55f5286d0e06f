"""Build the dataset index from PASCAL VOC 2012 + SBD (method §1) or from your own data.

VOC mode (default): reads VOCDEVKIT_PATH and SBD_PATH, writes DATASET_PATH/{classes,train_aug,
val}.json. Custom mode: --images DIR --labels FILE.csv|json --classes FILE [--val-images DIR
--val-masks DIR].
"""
from cores.data.dataset import create_dataset
from cores.runtime import fail, parse_args, run_script, setup_logging
from cores.config import save_config
import logging
import os


def add_arguments(parser):
    parser.add_argument("--class-names", default=None,
                        help="VOC mode: file of class names (default: VOC's first CLASS_NUM)")
    parser.add_argument("--images", help="custom mode: folder of training images")
    parser.add_argument("--labels", help="custom mode: CSV (image,names) or JSON {image: names}")
    parser.add_argument("--classes", help="custom mode: foreground class names, one per line")
    parser.add_argument("--masks", help="custom mode: palette-PNG masks of the training "
                                        "images (optional; for the supervised bound and the "
                                        "cue reports)")
    parser.add_argument("--val-images", help="custom mode: folder of validation images")
    parser.add_argument("--val-masks", help="custom mode: folder of palette-PNG masks")


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    setup_logging(cfg, "create_dataset")
    custom = None
    if args.images or args.labels or args.classes:
        if not (args.images and args.labels and args.classes):
            fail("custom mode needs --images, --labels and --classes")
        custom = dict(images=args.images, labels=args.labels, classes=args.classes,
                      val_images=args.val_images, val_masks=args.val_masks, masks=args.masks)
    index = create_dataset(cfg, args.class_names, custom)
    save_config(cfg, os.path.join(cfg.DATASET_PATH, "config.json"))
    logging.info("dataset index written to %s: %d train_aug images, %d val images, %d classes",
                 cfg.DATASET_PATH, len(index["train"]), len(index["val"]), len(index["classes"]))


if __name__ == "__main__":
    run_script(main)
