"""What every script does first: config from the command line, a log file, the devices."""
import argparse
import datetime
import logging
import os
import sys

from cores.config import add_config_args, load_config, ConfigError


def parse_args(description, add_arguments=None, argv=None):
    """Parse ``--cfg``/``--set`` plus the script's own options; returns (args, cfg).
    Config errors end the script with their message, not a traceback."""
    parser = argparse.ArgumentParser(description=description)
    add_config_args(parser)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.cfg, args.set)
    except ConfigError as e:
        parser.exit(2, "error: %s\n" % e)
    from cores.denormals import flush_denormals
    flush_denormals()
    return args, cfg


def add_device_args(parser):
    parser.add_argument("--gpus", default=None,
                        help="GPU ids, e.g. 0,1,2,3 (default: all GPUs if any, else the CPU); "
                             "an id twice (0,0) runs the multi-device path on one GPU")
    parser.add_argument("--cpus", type=int, default=1,
                        help="number of CPU contexts when no GPU is used (tests the "
                             "data-parallel path)")


def add_resume_args(parser):
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest snapshot (refused when the training "
                             "config differs from the one saved with it)")
    parser.add_argument("--allow-config-change", action="store_true",
                        help="resume even though the training config changed")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the snapshots of an earlier run of this stage in "
                             "SNAPSHOT_PATH and start again (without it such a folder is "
                             "refused)")


def add_method_args(parser, verb):
    """--stage (a segmentation method of cores/methods/; the choices and their help come from
    the registry) and --supervised, its short form for the bound."""
    from cores import methods
    found = methods.all_methods()
    parser.add_argument("--stage", default="sec", choices=list(found), metavar="METHOD",
                        help="the segmentation method to %s: %s" % (verb, "; ".join(
                            "%s, %s" % (name, m.help) for name, m in found.items())))
    parser.add_argument("--supervised", action="store_true",
                        help="the fully supervised bound: --stage supervised")


def method_of(args):
    """The method that --stage/--supervised name (cores/methods/), resolved once."""
    from cores import methods
    if args.supervised and args.stage not in ("sec", "supervised"):
        raise SystemExit("error: --supervised and --stage %s name two methods" % args.stage)
    return methods.get("supervised" if args.supervised else args.stage)


def contexts(args, probe=None):
    """MXNet contexts from --gpus/--cpus: all GPUs by default when there are any. Selected
    GPUs pass the preflight (cores/gpus.py) first: a GPU this MXNet cannot drive is one line
    now, not a CUDA error inside the first training step."""
    import mxnet as mx
    from cores import gpus
    ids = None
    if args.gpus is not None and args.gpus.strip():
        ids = gpus.parse_gpus(args.gpus)
    elif args.gpus is None and (probe or gpus.Probe()).gpu_count() > 0:
        ids = list(range((probe or gpus.Probe()).gpu_count()))
    if ids is not None:
        gpus.preflight(ids, probe)
        return [mx.gpu(i) for i in ids]
    return [mx.cpu(i) for i in range(max(1, args.cpus))]


def setup_logging(cfg, name, rank=0):
    """Log to the console and, on rank 0, to LOG_PATH/<name>-<time>.log; returns the file's
    path (None on other ranks, whose console lines start with their rank)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(cfg.LOG_PATH, "%s-%s.log" % (name, stamp)) if rank == 0 else None
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s " + ("[rank %d] " % rank if rank else "") +
                            "%(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stdout)]
    if path:
        os.makedirs(cfg.LOG_PATH, exist_ok=True)
        handlers.append(logging.FileHandler(path))
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.info("command: %s", " ".join(sys.argv))
    return path


def fail(message):
    """End a script with a clear message (exit status 1), no traceback."""
    logging.error("error: %s", message)
    sys.exit(1)


def close_progress_bars():
    """Close every open tqdm bar, so that a last message starts on a line of its own instead
    of after the bar's text."""
    from tqdm import tqdm
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.leave = False
        bar.close()


def run_script(main):
    """Run a script's ``main``: errors a user can act on (cores.errors.SECError) end in one
    line, Ctrl-C in one line (workers ignore it and end with their parent); anything else is a
    programming error and keeps its traceback."""
    from cores.errors import SECError
    try:
        main()
    except SECError as e:
        close_progress_bars()
        fail(str(e))
    except KeyboardInterrupt:
        close_progress_bars()
        logging.error("interrupted: every snapshot and output file written so far is complete "
                      "(--resume continues a training stage)")
        sys.exit(130)
