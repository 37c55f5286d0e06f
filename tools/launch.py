"""Run a training script on MXNet's distributed kvstore, on this machine:

  python tools/launch.py -n 2 [-s 1] [--timeout 3600] -- python train_SEC.py --kvstore dist_sync

starts a scheduler, the servers and the workers on 127.0.0.1 with the DMLC_* variables MXNet
reads, ends when the workers end, and stops the whole job (non-zero status) as soon as a worker
fails or the time limit passes. For several machines see docs/distributed.md.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def dmlc_env(role, host, port, num_workers, num_servers):
    """The variables ps-lite reads, for one process of the job."""
    return {"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": host, "DMLC_PS_ROOT_PORT": str(port),
            "DMLC_NUM_WORKER": str(num_workers), "DMLC_NUM_SERVER": str(num_servers),
            "DMLC_NODE_HOST": host}


def _stop(procs):
    for _, p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 10
    for _, p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def launch_local(command, num_workers, num_servers=1, timeout=None, host="127.0.0.1",
                 log=print):
    """Run ``command`` (a list) as ``num_workers`` workers; returns the job's exit status:
    0 when all workers succeed, the first failing worker's status (or 1), 124 on time-out."""
    port = free_port(host)
    procs = []

    def start(role, argv):
        env = dict(os.environ, **dmlc_env(role, host, port, num_workers, num_servers))
        p = subprocess.Popen(argv, env=env, start_new_session=True)
        procs.append((role, p))
        return p

    server_cmd = [sys.executable, "-c", "import mxnet"]   # importing mxnet runs the role
    try:
        start("scheduler", server_cmd)
        for _ in range(num_servers):
            start("server", server_cmd)
        workers = [start("worker", command) for _ in range(num_workers)]
        log("launch: scheduler, %d server(s) and %d worker(s) on %s:%d; worker pids %s"
            % (num_servers, num_workers, host, port, " ".join(str(w.pid) for w in workers)))
        started = time.time()
        while True:
            codes = [w.poll() for w in workers]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                log("launch: worker %d (pid %d) exited with status %d; stopping the job"
                    % (i, workers[i].pid, code))
                return code if code > 0 else 1
            if all(c == 0 for c in codes):
                return 0
            for role, p in procs:
                if role != "worker" and p.poll() not in (None, 0):
                    log("launch: the %s (pid %d) exited with status %d; stopping the job"
                        % (role, p.pid, p.returncode))
                    return 1
            if timeout and time.time() - started > timeout:
                log("launch: the job ran past its time limit of %d s; stopping it" % timeout)
                return 124
            time.sleep(0.2)
    finally:
        _stop(procs)


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
