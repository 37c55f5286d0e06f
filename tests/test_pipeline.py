"""End to end on toy data, as a user runs it: the five scripts (plus the toy backbone
pretraining) at a tiny size, then checks of every output and that learning happened."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from cores import cues, methods, stages
from cores import pipeline as driver
from cores.config import load_config
from datagen import toy, variants
from cores.data.dataset import load_index, read_mask
from cores.data.palette import voc_palette
from cores.metrics import confusion_matrix, iou_scores
from tests.conftest import REPO

pytestmark = pytest.mark.slow

# A tiny variant of the dataset family (not the demo's), the demo's recipe (demo/toy.yaml) at
# input 81 with shortened schedules; seeds are fixed. Its objects are not mirrored: with
# mirrored chiral classes these schedules (then 600 pretraining iterations on 64 images) left the
# bound at 0.30 (cue precision 0.09), while the benchmark's full schedules learn them.
VARIANT = dict(name="stripes5", n_train=64, n_val=12, mirror=False)
FAST = dict(DATA_WORKERS=2, CRF_WORKERS=2, INPUT_SIZE=81, Q_FG=0.945, Q_BG=0.986,
            MAX_ITER_PRE=300, LR_STEP_PRE=250, EPOCH_SIZE_PRE=300, MAX_ITER_BG=300,
            LR_STEP_BG=250, EPOCH_SIZE_BG=300, MAX_ITER_FG=600, LR_STEP_FG=500, EPOCH_SIZE_FG=300,
            MAX_ITER=400, LR_STEP=300, EPOCH_SIZE=200, SUPERVISED_ITER_SCALE=2)


def _run(args, cwd):
    out = subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, "%s failed:\n%s\n%s" % (args[0], out.stdout[-3000:],
                                                      out.stderr[-3000:])
    return out.stdout


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("pipeline"))
    spec = variants.variant(VARIANT["name"], n_train=VARIANT["n_train"], n_val=VARIANT["n_val"],
                       mirror=VARIANT["mirror"])
    toy.make_dataset(os.path.join(work, "data"), spec)
    with open(os.path.join(REPO, "demo", "toy.yaml")) as f:
        settings = yaml.safe_load(f)
    settings.update(FAST, CLASS_NUM=spec["classes"] + 1)
    settings["WORK_PATH"] = work                 # every folder of the recipe derives from it
    cfg_file = os.path.join(work, "toy_fast.yaml")
    with open(cfg_file, "w") as f:
        yaml.safe_dump(settings, f)
    c = ["--cfg", cfg_file]
    scripts = os.path.join(REPO, "{}")
    cfg = load_config(cfg_file)
    printed = {}

    def run_one(step, args):                 # the demo's and the benchmark's driver
        printed[step.key] = _run([scripts.format(args[0])] + args[1:], work)
    steps = driver.training_steps(cfg, vis=2) + driver.eval_steps(
        [["--crf", "--flip"]], savemask=[["--crf", "--flip"]]) + [driver.Step(
            "baselines", "baselines", ["tools/baselines.py", "--out",
                                       os.path.join(work, "base.json")])]
    times, ran = driver.run_steps(steps, c, run_one, markers=work)
    assert ran == [s.key for s in steps] and "pretrain" in ran
    assert driver.run_steps(steps, c, run_one, markers=work)[1] == []       # all marked done
    evaluated = printed["eval --crf --flip"]
    classes, train, val = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    own = os.path.join(work, "own")
    os.makedirs(own)
    for e in val[:2]:
        Image.open(e["image"]).save(os.path.join(own, e["id"] + ".jpg"))
    _run([scripts.format("eval.py"), "--images", own] + c, work)
    with open(os.path.join(work, "base.json")) as f:
        base = json.load(f)
    return dict(cfg=cfg, classes=classes, train=train, val=val, work=work, evaluated=evaluated,
                base=base)


def _metrics(cfg, kind="sec"):
    method = methods.get(kind)
    epochs = stages.Schedule(cfg, method).final_epoch
    out = stages.output_dir(cfg, epochs, method, True, True)
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f), out


def test_cue_files_cover_every_image_and_beat_random_cues(pipeline):
    cfg, train = pipeline["cfg"], pipeline["train"]
    fg, size = cues.load_cues(os.path.join(cfg.CACHE_PATH, "fg_cues.npz"))
    bg, _ = cues.load_cues(os.path.join(cfg.CACHE_PATH, "bg_cues.npz"))
    assert size == stages.score_size(cfg) == 11 and set(fg) == set(bg) == {e["id"] for e in train}
    report = json.load(open(os.path.join(cfg.CACHE_PATH, "fg_cues_report.json")))
    rng = np.random.RandomState(0)
    random_cues = {}
    for image_id, sparse in fg.items():          # same classes and pixel counts, random places
        parts = []
        for c in np.unique(sparse[0]):
            n = int((sparse[0] == c).sum())
            flat = rng.choice(size * size, n, replace=False)
            parts.append(np.stack([np.full(n, c), flat // size, flat % size]))
        random_cues[image_id] = np.concatenate(parts, 1) if parts else sparse
    baseline = cues.cue_report(random_cues, size, train, pipeline["classes"], read_mask)
    assert report["fg_precision"] > baseline["fg_precision"] + 0.05
    bg_report = json.load(open(os.path.join(cfg.CACHE_PATH, "bg_cues_report.json")))
    assert bg_report["bg_precision"] > 0.9
    for kind in ("fg", "bg"):
        pictures = os.listdir(os.path.join(cfg.CACHE_PATH, "vis_" + kind))
        assert len(pictures) == 2
        assert Image.open(os.path.join(cfg.CACHE_PATH, "vis_" + kind, pictures[0])).size == (
            3 * 6 * size, 6 * size)


def test_sec_snapshots_and_logs(pipeline):
    cfg = pipeline["cfg"]
    snaps = sorted(f for f in os.listdir(cfg.SNAPSHOT_PATH) if f.startswith("sec_vgg16-"))
    epochs = cfg.MAX_ITER // cfg.EPOCH_SIZE
    assert snaps == sorted(["sec_vgg16-%04d%s.params" % (e, kind) for e in range(1, epochs + 1)
                            for kind in ("", ".optimizer")] + [
        "sec_vgg16-config.json", "sec_vgg16-history.json", "sec_vgg16-losses.png"])
    history = json.load(open(os.path.join(cfg.SNAPSHOT_PATH, "sec_vgg16-history.json")))
    assert len(history) == cfg.MAX_ITER
    first = np.mean([h["seed_loss"] for h in history[:20]])
    last = np.mean([h["seed_loss"] for h in history[-20:]])
    assert last < 0.8 * first                          # the seeding loss falls
    saved = json.load(open(os.path.join(cfg.SNAPSHOT_PATH, "sec_vgg16-config.json")))
    assert saved["MAX_ITER"] == cfg.MAX_ITER and saved["WIDTH_MULT"] == 0.125
    logs = os.listdir(cfg.LOG_PATH)
    for name in ("create_dataset", "train_bg_cues", "train_fg_cues", "train_SEC", "eval"):
        assert any(f.startswith(name + "-") and f.endswith(".log") for f in logs), name


def test_sec_learns_beyond_its_baselines_and_towards_the_bound(pipeline):
    """Learning happened: SEC --crf --flip beats all-background and the cues alone by clear
    margins and reaches 75 % of the supervised bound (same network and loop, true masks, twice
    the iterations: converged enough with any thread count), as the quality benchmark asks of
    every variant."""
    cfg, val = pipeline["cfg"], pipeline["val"]
    metrics, out = _metrics(cfg)
    bound, _ = _metrics(cfg, kind="supervised")
    num = cfg.CLASS_NUM
    assert metrics["images"] == len(val) == 12
    conf = sum(confusion_matrix(np.zeros_like(m), m, num) for m in
               (read_mask(e["mask"]) for e in val))
    _, background_miou, _ = iou_scores(conf)
    assert pipeline["base"]["all_background"]["mIoU"] == pytest.approx(background_miou)
    # measured with these seeds (a run is bit-identical on one machine; other CPUs take other
    # oneDNN kernels): all-background 0.146, cues 0.431, SEC 0.580, bound 0.552 (with 600
    # pretraining iterations, on two machines: cues 0.450 / 0.434, SEC 0.617 / 0.547, bound
    # 0.540 / 0.539; 300 reach mAP 0.989 and save a third of the test); the margin over the
    # cues is the quality benchmark's acceptance (0.05). The bound trains twice SEC's
    # iterations here: at 400 it reached 0.331 with one OpenMP thread, under the 0.396 asked;
    # at 800 0.530 with one thread, 0.519 with two (SEC 0.536, 0.609)
    assert metrics["mIoU"] > background_miou + 0.2
    assert metrics["mIoU"] > pipeline["base"]["cues"]["mIoU"] + 0.05
    assert bound["mIoU"] > background_miou + 0.25
    assert metrics["mIoU"] > 0.75 * bound["mIoU"]
    assert "mIoU" in pipeline["evaluated"]
    palette = voc_palette().ravel().tolist()
    for e in val:
        with Image.open(os.path.join(out, "masks", e["id"] + ".png")) as mask:
            assert mask.mode == "P" and mask.getpalette() == palette[:len(mask.getpalette())]
            assert mask.size == Image.open(e["image"]).size
            assert set(np.unique(np.array(mask))) <= set(range(num))


def test_own_images_get_masks_and_overlays(pipeline):
    cfg, val = pipeline["cfg"], pipeline["val"]
    out = os.path.join(cfg.OUTPUT_PATH, "sec_vgg16-%04d" % (cfg.MAX_ITER // cfg.EPOCH_SIZE),
                       "images")
    for e in val[:2]:
        assert os.path.isfile(os.path.join(out, "masks", e["id"] + ".png"))
        overlay = Image.open(os.path.join(out, "overlays", e["id"] + ".png"))
        width, height = Image.open(e["image"]).size
        assert overlay.size == (2 * width, height)


def test_the_demo_table_reads_sec_and_the_bound(tmp_path):
    """demo/run_demo.py's table: SEC's and the bound's evaluations of their latest snapshots,
    each with its flags, beside the baselines."""
    from tests.conftest import load_script
    demo = load_script("demo/run_demo.py")
    cfg = load_config(None, ["SNAPSHOT_PATH=%s" % tmp_path, "OUTPUT_PATH=%s" % tmp_path])
    for name, epoch in (("sec", 3), ("supervised", 2)):
        method = methods.get(name)
        open(stages.snapshot_path(stages.prefix(cfg, method), epoch), "w").close()
        for flags, miou in (((False, False), 0.5), ((True, True), 0.7)):
            folder = stages.output_dir(cfg, epoch, method, *flags)
            os.makedirs(folder)
            with open(stages.metrics_path(folder), "w") as f:
                json.dump({"mIoU": round(miou + (name == "supervised") * 0.2, 3)}, f)
    rows = demo.table_rows(cfg, {"all_background": {"mIoU": 0.1}, "cues": {"mIoU": 0.4}})
    assert [(n, m["mIoU"]) for n, m in rows] == [
        ("all background", 0.1), ("cues alone", 0.4), ("SEC", 0.5), ("SEC --crf --flip", 0.7),
        ("supervised", 0.7), ("supervised --crf --flip", 0.9)]
