"""Pretrain the SEC network's layers up to fc7 as a multi-label classifier on the dataset's
image labels and save them as MODEL_PATH/<BASE_NET>.params: the toy demo's stand-in for
ImageNet weights (no masks are used)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cores.pretrain import pretrain_backbone  # noqa: E402
from cores.runtime import (add_device_args, add_resume_args, contexts, run_script,  # noqa: E402
                           parse_args, setup_logging)


def add_arguments(parser):
    add_device_args(parser)
    add_resume_args(parser)


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    setup_logging(cfg, "pretrain_backbone")
    pretrain_backbone(cfg, contexts(args), args.resume, args.allow_config_change,
                      args.overwrite)


if __name__ == "__main__":
    run_script(main)
