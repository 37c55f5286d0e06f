"""The test suites' wall time at an earlier commit and at this checkout, side by side in one run
on one machine: `make test-fast` alternated between the two (--rounds times each), then `make
test` once each (unless --fast-only), both through the same virtual environment (the earlier
commit in a temporary git worktree outside the tree, so that no test of this checkout sees
it). Writes bench_run/suites.{json,md}; --record NAME also copies them to
bench/results/speed/NAME/.

    python bench/suite_times.py --old 15a20c1 --record test_suites
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

COLUMNS = [("checkout", "checkout", None), ("commit", "commit", None),
           ("target", "target", None), ("round", "round", "%d"), ("wall s", "wall_s", "%.1f"),
           ("CPU s", "cpu_s", "%.1f"),
           ("passed", "passed", "%d"), ("failed", "failed", "%d"), ("exit", "exit", "%d")]


def counts(text):
    """pytest's summary line: passed and failed (errors counted as failed) tests."""
    found = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|errors?)\b", text)}
    return found.get("passed", 0), found.get("failed", 0) + found.get("error", 0) + found.get(
        "errors", 0)


def timed(tree, target, venv, log):
    """One `make TARGET` in ``tree`` (its set-up run untimed first): wall seconds, CPU seconds
    of it and its children (less moved than the wall time by other guests of a VM), exit
    status, passed, failed."""
    make = ["make", "-C", tree, "VENV=" + venv]
    subprocess.run(make + ["setup"], capture_output=True, check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    tic = time.time()
    out = subprocess.run(make + [target], capture_output=True, text=True)
    wall = time.time() - tic
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(log, "w") as f:
        f.write(out.stdout + out.stderr)
    summary = [l for l in out.stdout.splitlines() if re.search(r" in [\d.]+s", l)]
    passed, failed = counts(summary[-1] if summary else "")
    return wall, cpu, out.returncode, passed, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3, help="make test-fast runs of each")
    parser.add_argument("--fast-only", action="store_true", help="leave out make test")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench_run", "suites"))
    parser.add_argument("--record", default=None, metavar="NAME")
    args = parser.parse_args()
    from bench.provenance import markdown_table, provenance, record
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    old_tree = os.path.join(tempfile.mkdtemp(prefix="sec-suites-"), "old")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", old_tree, args.old],
                   check=True, capture_output=True)
    venv = os.path.join(ROOT, ".venv")
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    trees = [("old", old_tree, args.old), ("new", ROOT, head)]
    plan = [(r, "test-fast") for r in range(1, args.rounds + 1)]
    plan += [] if args.fast_only else [(1, "test")]
    rows = []
    try:
        for round_no, target in plan:
            for name, tree, commit in trees:
                log = "%s-%s-%s-%d.log" % (args.out, name, target, round_no)
                wall, cpu, code, passed, failed = timed(tree, target, venv, log)
                rows.append(dict(checkout=name, commit=commit, target=target, round=round_no,
                                 wall_s=wall, cpu_s=cpu, exit=code, passed=passed,
                                 failed=failed))
                print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", old_tree])
    with open(args.out + ".json", "w") as f:
        json.dump({"rows": rows, "provenance": provenance()}, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(markdown_table(rows, COLUMNS) + "\n")
    if args.record:
        print("recorded in", record("speed", args.record, args.out))


if __name__ == "__main__":
    main()
