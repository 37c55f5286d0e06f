"""Run a training script on MXNet's distributed kvstore, on this machine:

  python tools/launch.py -n 2 [-s 1] [--timeout 3600] -- python train_SEC.py --kvstore dist_sync

starts a scheduler, the servers and the workers on 127.0.0.1 with the DMLC_* variables MXNet
reads, ends when the workers end, and stops the whole job (non-zero status) as soon as a worker
fails or the time limit passes. For several machines see docs/distributed.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cores.launcher import launch_local  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--num-workers", type=int, required=True)
    parser.add_argument("-s", "--num-servers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop the job after this many seconds")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run, after --")
    sys.exit(launch_local(command, args.num_workers, args.num_servers, args.timeout, args.host,
                          log=lambda m: print(m, flush=True)))


if __name__ == "__main__":
    main()
