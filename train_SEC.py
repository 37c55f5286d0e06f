"""Train the SEC network on the merged localization cues (method §4, 6), or another
segmentation method (--stage, cores/methods/): the bound on the masks, SEC's ablations, DSRG,
a retraining round."""
import logging

from cores.distributed import add_kvstore_arg, cluster as make_cluster
from cores.runtime import (add_device_args, add_method_args, add_resume_args, contexts,
                           method_of, parse_args, run_script, setup_logging)
from cores.segmentation import train


def add_arguments(parser):
    add_device_args(parser)
    add_kvstore_arg(parser)
    add_resume_args(parser)
    parser.add_argument("--epoch", type=int, default=None,
                        help="continue from this snapshot epoch")
    parser.add_argument("--cues", default=None,
                        help="a cue .npz to train on, or 'original' for the authors' cues "
                             "(tools/convert_original_cues.py); default: "
                             "CACHE_PATH/sec_cues.npz, merged from the fg and bg cue files")
    add_method_args(parser, "train")


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    cluster = make_cluster(args.kvstore)
    setup_logging(cfg, "train_SEC", cluster.rank)
    train(cfg, method_of(args), contexts(args), args.resume, args.epoch, args.cues, cluster,
          args.allow_config_change, args.overwrite)
    logging.info("done")


if __name__ == "__main__":
    run_script(main)
