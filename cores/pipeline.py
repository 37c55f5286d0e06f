"""The pipeline as a user runs it: its steps in order, each a script of the repository with the
run's --cfg/--set, and a driver that runs them, timing each and, with a marker folder, leaving a
marker per finished step so that an interrupted run continues where it stopped. The one driver
of the demo (demo/run_demo.py), the quality benchmark (bench/quality.py) and the pipeline
test."""
import collections
import os
import time

from cores import stages

Step = collections.namedtuple("Step", "key label args")
FLAG_SETS = ([], ["--crf"], ["--crf", "--flip"])


def training_steps(cfg, dataset_args=(), vis=0, bound=True, segmentation=True):
    """create_dataset.py, the backbone pretraining (when MODEL_PATH holds no weights), both cue
    stages, then (``segmentation``) SEC and (``bound``) the supervised bound. Training steps
    take --resume: a step interrupted with the pipeline continues, one that finished trains
    nothing more."""
    shown = ["--vis", str(vis)] if vis else []
    steps = [Step("create_dataset", "dataset index", ["create_dataset.py"] + list(dataset_args))]
    if not os.path.isfile(stages.weights_path(cfg)):
        steps.append(Step("pretrain", "backbone pretraining",
                          ["demo/pretrain_backbone.py", "--resume"]))
    steps += [Step("bg_cues", "background cues", ["train_bg_cues.py", "--resume"] + shown),
              Step("fg_cues", "foreground cues", ["train_fg_cues.py", "--resume"] + shown)]
    if not segmentation:
        return steps
    steps.append(Step("sec", "SEC training", ["train_SEC.py", "--resume"]))
    if bound:
        steps.append(Step("supervised", "supervised bound (same network and schedule, true "
                          "masks)", ["train_SEC.py", "--supervised", "--resume"]))
    return steps


def eval_steps(flag_sets=FLAG_SETS, bound=True, savemask=()):
    """eval.py of SEC (and the bound) with each flag set; ``savemask``: the flag sets whose SEC
    evaluation also writes its masks."""
    steps = []
    for flags in flag_sets:
        name = " ".join(flags)
        masks = ["--savemask"] if list(flags) in [list(f) for f in savemask] else []
        steps.append(Step("eval " + name, "evaluation " + name, ["eval.py"] + list(flags)
                          + masks))
        if bound:
            steps.append(Step("eval supervised " + name, "evaluation of the bound " + name,
                              ["eval.py", "--supervised"] + list(flags)))
    return steps


def marker(folder, key):
    return os.path.join(folder, ".done_" + key.replace(" ", "_").replace("-", ""))


def run_steps(steps, common, run_one, markers=None, later=()):
    """Run each step as ``run_one(step, args)`` with ``common`` (--cfg/--set) after its own
    arguments and ``later`` (more --set values, which win) last; returns {key: seconds}. With
    a ``markers`` folder a step that finished in an earlier run is not run again (its time is
    read back); returns the times and the keys that ran."""
    times, ran = {}, []
    for step in steps:
        done = marker(markers, step.key) if markers else None
        if done and os.path.isfile(done):
            with open(done) as f:
                times[step.key] = float(f.read() or 0)
            continue
        tic = time.time()
        run_one(step, step.args + list(common) + list(later))
        times[step.key] = round(time.time() - tic, 1)
        ran.append(step.key)
        if done:
            with open(done, "w") as f:
                f.write(str(times[step.key]))
    return times, ran
