"""The whole pipeline on the generated toy dataset, on the CPU, as a user runs it: toy data,
create_dataset.py, backbone pretraining, train_bg_cues.py, train_fg_cues.py, train_SEC.py,
eval.py (plain and --crf --flip --savemask), then the mIoU table beside two baselines."""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


class Interrupted(Exception):
    """Ctrl-C while a stage ran; the stage itself has ended cleanly by then."""


def run(step, args):
    """Run one stage script; a failure ends the demo with one line naming it. On Ctrl-C the
    stage (which receives it too) is given time to end on its own, so that its worker
    processes are shut down and nothing is half written."""
    print("\n=== %s: %s" % (step, " ".join(args)), flush=True)
    tic = time.time()
    proc = subprocess.Popen([sys.executable] + args, cwd=ROOT)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=120)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        raise Interrupted(step) from None
    if code:
        sys.exit("demo stopped: the %s stage (%s) failed with exit status %d; its message is "
                 "above" % (step, args[0], code))
    return time.time() - tic


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cfg", default="demo/toy.yaml")
    parser.add_argument("--set", nargs="+", default=[], action="extend")
    parser.add_argument("--root", default=None,
                        help="folder of every output and of the toy data (sets WORK_PATH; "
                             "default: the recipe's, demo_run/)")
    args = parser.parse_args()
    sets = (["WORK_PATH=" + os.path.abspath(args.root)] if args.root else []) + args.set
    cfg_args = ["--cfg", args.cfg] + (["--set"] + sets if sets else [])
    from cores.config import load_config, ConfigError
    try:
        cfg = load_config(args.cfg, sets)
    except ConfigError as e:
        parser.exit(2, "error: %s\n" % e)
    try:
        table(cfg, stages_run(cfg, cfg_args))
    except Interrupted as e:
        print("\ndemo interrupted during %s: every file written so far is complete; run it "
              "again to continue where it stopped (or delete %s to start over)"
              % (e, cfg.WORK_PATH or "its folders"), file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("\ndemo interrupted", file=sys.stderr)
        sys.exit(130)


def stages_run(cfg, cfg_args):
    """The pipeline's steps (cores/pipeline.py) in order; returns their times. A second demo in
    the same folder continues the first (the training steps take --resume: an interrupted stage
    goes on, a finished one trains nothing more); delete the folder to start over."""
    from cores import pipeline
    times = {}
    if not os.path.isdir(os.path.join(ROOT, os.path.dirname(cfg.VOCDEVKIT_PATH))):
        times["toy data"] = run("toy data", ["demo/make_toy_voc.py",
                                             os.path.dirname(os.path.dirname(
                                                 cfg.VOCDEVKIT_PATH))])
    steps = pipeline.training_steps(cfg, vis=4) + pipeline.eval_steps(
        ([], ["--crf", "--flip"]), savemask=[["--crf", "--flip"]])
    done, _ = pipeline.run_steps(steps, cfg_args, lambda step, args: run(step.label, args))
    times.update(done)
    return times


def table(cfg, times):
    """The mIoU table beside the baselines, printed and written as demo_summary.json."""
    os.chdir(ROOT)
    import mxnet as mx
    from cores.baselines import baselines
    from cores.io import atomic_write_text
    rows = table_rows(cfg, baselines(cfg, [mx.cpu()]))
    classes = rows[2][1]["classes"]
    print("\n%-24s %s %7s" % ("toy val mIoU", " ".join("%10s" % c[:10] for c in classes),
                              "mIoU"))
    for name, m in rows:
        print("%-24s %s %7.4f" % (name, " ".join(
            "%10s" % ("%.4f" % m["IoU"][c] if m["IoU"][c] is not None else "-")
            for c in classes), m["mIoU"]))
    print("SEC --crf --flip is %.0f%% of the supervised bound --crf --flip"
          % (100 * rows[3][1]["mIoU"] / rows[5][1]["mIoU"]))
    summary = {name: {"mIoU": m["mIoU"], "IoU": m["IoU"]} for name, m in rows}
    summary["seconds"] = times
    atomic_write_text(os.path.join(cfg.OUTPUT_PATH, "demo_summary.json"),
                      json.dumps(summary, indent=1))
    print("stage times (s): %s" % ", ".join("%s %.0f" % kv for kv in times.items()))


def table_rows(cfg, base):
    """[(row, metrics)] of the table: the baselines ``base``, then SEC's and the bound's
    evaluations (plain, --crf --flip) of their latest snapshots."""
    from cores import methods
    from cores.metrics import stage_metrics
    sec, bound = methods.get("sec"), methods.get("supervised")
    return [("all background", base["all_background"]), ("cues alone", base["cues"]),
            ("SEC", stage_metrics(cfg, sec)),
            ("SEC --crf --flip", stage_metrics(cfg, sec, True, True)),
            ("supervised", stage_metrics(cfg, bound)),
            ("supervised --crf --flip", stage_metrics(cfg, bound, True, True))]


if __name__ == "__main__":
    main()
