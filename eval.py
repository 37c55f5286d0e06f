"""Evaluate a SEC snapshot on the val list (mIoU, metrics.json), or segment your own images
with --images (masks and overlays)."""
import os

from cores.evaluation import evaluate, segment_images
from cores.runtime import add_device_args, contexts, parse_args, run_script, setup_logging


def add_arguments(parser):
    add_device_args(parser)
    parser.add_argument("--epoch", type=int, default=None,
                        help="snapshot epoch (default: the latest)")
    parser.add_argument("--flip", action="store_true", help="average with the mirrored pass")
    parser.add_argument("--crf", action="store_true", help="dense CRF post-processing")
    parser.add_argument("--savemask", action="store_true", help="write palette PNG masks")
    parser.add_argument("--savescoremap", action="store_true",
                        help="write the score-map probabilities (.npz, float16)")
    parser.add_argument("--supervised", action="store_true",
                        help="evaluate the fully supervised bound (train_SEC.py --supervised)")
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
    kind = "supervised" if args.supervised else "sec"
    if args.images:
        segment_images(cfg, contexts(args), args.images, args.epoch, args.flip, args.crf,
                       args.int8, kind)
    else:
        evaluate(cfg, contexts(args), args.epoch, args.flip, args.crf, args.savemask,
                 args.savescoremap, kind, args.int8)


if __name__ == "__main__":
    run_script(main)
