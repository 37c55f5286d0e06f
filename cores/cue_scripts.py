"""The command line shared by train_bg_cues.py and train_fg_cues.py."""
from cores.distributed import add_kvstore_arg, cluster as make_cluster
from cores.localization import run_cue_stage
from cores.stages import CUE_STAGES
from cores.runtime import (add_device_args, add_resume_args, contexts, parse_args, run_script,
                           setup_logging)


def main(kind, description):
    """The script for the cue stage of cue file ``kind`` ('bg': saliency, 'fg': CAM)."""
    run_script(lambda: _main(CUE_STAGES[kind], description))


def _main(stage, description):
    def add_arguments(parser):
        add_device_args(parser)
        add_kvstore_arg(parser)
        parser.add_argument("--skip-train", action="store_true",
                            help="write cues from an existing snapshot instead of training")
        add_resume_args(parser)
        parser.add_argument("--epoch", type=int, default=None,
                            help="snapshot epoch to write cues from (default: the last)")
        parser.add_argument("--vis", type=int, default=0, metavar="K",
                            help="write K pictures of image | cues | ground truth")
        if stage.cue == "fg":
            parser.add_argument("--int8", action="store_true",
                                help="extract the cues with the CAM network quantized to INT8 "
                                     "(CPU, oneDNN); the report compares them with fp32 cues")

    args, cfg = parse_args(description, add_arguments)
    cluster = make_cluster(args.kvstore)
    setup_logging(cfg, "train_%s_cues" % stage.cue, cluster.rank)
    run_cue_stage(cfg, stage, contexts(args), args.skip_train, args.resume, args.epoch, args.vis,
                  cluster, args.allow_config_change, getattr(args, "int8", False),
                  args.overwrite)
