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


def run(step, args):
    print("\n=== %s: %s" % (step, " ".join(args)), flush=True)
    tic = time.time()
    done = subprocess.run([sys.executable] + args, cwd=ROOT)
    if done.returncode:
        sys.exit("demo stopped: the %s stage (%s) failed with exit status %d; its message is "
                 "above" % (step, args[0], done.returncode))
    return time.time() - tic


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cfg", default="demo/toy.yaml")
    parser.add_argument("--set", nargs="+", default=[], action="extend")
    parser.add_argument("--root", default="demo_run", help="folder of every output")
    args = parser.parse_args()
    cfg_args = ["--cfg", args.cfg] + (["--set"] + args.set if args.set else [])
    from cores.config import load_config
    cfg = load_config(args.cfg, args.set)
    times = {}
    if not os.path.isdir(os.path.join(ROOT, os.path.dirname(cfg.VOCDEVKIT_PATH))):
        times["toy data"] = run("toy data", ["demo/make_toy_voc.py",
                                             os.path.dirname(os.path.dirname(
                                                 cfg.VOCDEVKIT_PATH))])
    times["create_dataset"] = run("dataset index", ["create_dataset.py"] + cfg_args)
    from cores import stages
    if not os.path.isfile(os.path.join(ROOT, stages.weights_path(cfg))):
        times["pretrain"] = run("backbone pretraining", ["demo/pretrain_backbone.py"] + cfg_args)
    times["bg cues"] = run("background cues", ["train_bg_cues.py", "--vis", "4"] + cfg_args)
    times["fg cues"] = run("foreground cues", ["train_fg_cues.py", "--vis", "4"] + cfg_args)
    times["SEC"] = run("SEC training", ["train_SEC.py"] + cfg_args)
    times["eval"] = run("evaluation", ["eval.py"] + cfg_args)
    times["eval crf flip"] = run("evaluation --crf --flip", ["eval.py", "--crf", "--flip",
                                                             "--savemask"] + cfg_args)
    times["supervised"] = run("supervised bound (same network and schedule, true masks)",
                              ["train_SEC.py", "--supervised"] + cfg_args)
    times["eval supervised"] = run("evaluation of the bound",
                                   ["eval.py", "--supervised"] + cfg_args)
    times["eval supervised crf flip"] = run("evaluation of the bound --crf --flip",
                                            ["eval.py", "--supervised", "--crf", "--flip"]
                                            + cfg_args)
    os.chdir(ROOT)
    import mxnet as mx
    from cores.baselines import baselines
    from cores.checkpoint import latest_epoch
    base = baselines(cfg, [mx.cpu()])

    def metrics(supervised, flip, crf):
        epoch = latest_epoch(stages.prefix(cfg, "supervised" if supervised else "sec"))
        with open(os.path.join(stages.output_dir(cfg, epoch, flip, crf, supervised),
                               "metrics.json")) as f:
            return json.load(f)

    plain = metrics(False, False, False)
    rows = [("all background", base["all_background"]), ("cues alone", base["cues"]),
            ("SEC", plain), ("SEC --crf --flip", metrics(False, True, True)),
            ("supervised", metrics(True, False, False)),
            ("supervised --crf --flip", metrics(True, True, True))]
    classes = plain["classes"]
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
    with open(os.path.join(cfg.OUTPUT_PATH, "demo_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("stage times (s): %s" % ", ".join("%s %.0f" % kv for kv in times.items()))


if __name__ == "__main__":
    main()
