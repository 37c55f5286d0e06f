"""Evaluate a SEC snapshot on the val list (mIoU, metrics.json), segment your own images
with --images (masks and overlays), or label the training images with --label (the
pseudo-masks of a retraining round)."""
import os

from cores.evaluation import evaluate, label_training_set, segment_images
from cores.runtime import (add_device_args, add_method_args, contexts, method_of, parse_args,
                           run_script, setup_logging)


def add_arguments(parser):
    add_device_args(parser)
    parser.add_argument("--epoch", type=int, default=None,
                        help="snapshot epoch (default: the latest)")
    parser.add_argument("--flip", action="store_true", help="average with the mirrored pass")
    parser.add_argument("--crf", action="store_true", help="dense CRF post-processing")
    parser.add_argument("--savemask", action="store_true", help="write palette PNG masks")
    parser.add_argument("--savescoremap", action="store_true",
                        help="write the score-map probabilities (.npz, float16)")
    add_method_args(parser, "evaluate")
    parser.add_argument("--scales", default=None, metavar="S1,S2,...",
                        help="multi-scale test: the input resized by each factor (each with "
                             "its mirror under --flip), probabilities averaged; e.g. "
                             "0.75,1,1.25 (the config's TEST_SCALES)")
    parser.add_argument("--label", action="store_true",
                        help="label the training images into PSEUDO_MASK_PATH (default "
                             "OUTPUT_PATH/pseudo_masks) for train_SEC.py --stage retrain")
    parser.add_argument("--int8", action="store_true",
                        help="run the network quantized to INT8 (CPU, oneDNN; calibrated on "
                             "train_aug and cached beside the snapshot)")
    parser.add_argument("--images", default=None,
                        help="segment this image file or folder instead of the val list")


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    # images of every size: cuDNN's autotuning would search again for each new shape
    os.environ.setdefault("MXNET_CUDNN_AUTOTUNE_DEFAULT", "0")
    setup_logging(cfg, "eval")
    method = method_of(args)
    if args.scales:                          # the config's TEST_SCALES, as one more --set
        from cores.config import ConfigError, load_config
        try:
            cfg = load_config(args.cfg, args.set + ["TEST_SCALES=[%s]" % args.scales])
        except ConfigError as e:
            raise SystemExit("error: --scales %s: %s" % (args.scales, e))
    if args.label:
        label_training_set(cfg, method, contexts(args), args.epoch, args.flip, args.crf)
    elif args.images:
        segment_images(cfg, method, contexts(args), args.images, args.epoch, args.flip,
                       args.crf, args.int8)
    else:
        evaluate(cfg, method, contexts(args), args.epoch, args.flip, args.crf, args.savemask,
                 args.savescoremap, args.int8)


if __name__ == "__main__":
    run_script(main)
