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

from cores import cues
from cores.config import load_config
from cores.data.dataset import load_index, read_mask
from cores.data.palette import voc_palette
from cores.metrics import confusion_matrix, iou_scores
from tests.conftest import REPO

# The demo's own settings (demo/toy.yaml): fewer iterations leave the from-scratch toy
# backbone untrained (its logistic loss plateaus near 0.5 for the first ~500 iterations).
FAST = dict(DATA_WORKERS=2, CRF_WORKERS=2)


def _run(args, cwd):
    out = subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, "%s failed:\n%s\n%s" % (args[0], out.stdout[-3000:],
                                                      out.stderr[-3000:])
    return out.stdout


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("pipeline"))
    with open(os.path.join(REPO, "demo", "toy.yaml")) as f:
        settings = yaml.safe_load(f)
    settings.update(FAST)
    for key in ("VOCDEVKIT_PATH", "SBD_PATH", "DATASET_PATH", "MODEL_PATH", "SNAPSHOT_PATH",
                "CACHE_PATH", "OUTPUT_PATH", "LOG_PATH"):
        settings[key] = os.path.join(work, settings[key].replace("demo_run/", ""))
    cfg_file = os.path.join(work, "toy_fast.yaml")
    with open(cfg_file, "w") as f:
        yaml.safe_dump(settings, f)
    c = ["--cfg", cfg_file]
    scripts = os.path.join(REPO, "{}")
    _run([scripts.format("demo/make_toy_voc.py"), os.path.join(work, "data")], work)
    _run([scripts.format("create_dataset.py")] + c, work)
    _run([scripts.format("demo/pretrain_backbone.py")] + c, work)
    _run([scripts.format("train_bg_cues.py"), "--vis", "2"] + c, work)
    _run([scripts.format("train_fg_cues.py"), "--vis", "2"] + c, work)
    _run([scripts.format("train_SEC.py")] + c, work)
    evaluated = _run([scripts.format("eval.py"), "--crf", "--flip", "--savemask"] + c, work)
    cfg = load_config(cfg_file)
    classes, train, val = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    own = os.path.join(work, "own")
    os.makedirs(own)
    for e in val[:2]:
        Image.open(e["image"]).save(os.path.join(own, e["id"] + ".jpg"))
    _run([scripts.format("eval.py"), "--images", own] + c, work)
    return dict(cfg=cfg, classes=classes, train=train, val=val, work=work, evaluated=evaluated)


def test_cue_files_cover_every_image_and_beat_random_cues(pipeline):
    cfg, train = pipeline["cfg"], pipeline["train"]
    fg, size = cues.load_cues(os.path.join(cfg.CACHE_PATH, "fg_cues.npz"))
    bg, _ = cues.load_cues(os.path.join(cfg.CACHE_PATH, "bg_cues.npz"))
    assert size == 11 and set(fg) == set(bg) == {e["id"] for e in train}
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


def test_sec_beats_all_background(pipeline):
    cfg, val = pipeline["cfg"], pipeline["val"]
    out = os.path.join(cfg.OUTPUT_PATH, "sec_vgg16-%04d_flip_crf" % (cfg.MAX_ITER //
                                                                    cfg.EPOCH_SIZE))
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["images"] == len(val) == 20
    conf = sum(confusion_matrix(np.zeros_like(m), m, 5) for m in
               (read_mask(e["mask"]) for e in val))
    _, background_miou, _ = iou_scores(conf)
    assert metrics["mIoU"] > background_miou + 0.1
    assert "mIoU" in pipeline["evaluated"]
    palette = voc_palette().ravel().tolist()
    for e in val:
        with Image.open(os.path.join(out, "masks", e["id"] + ".png")) as mask:
            assert mask.mode == "P" and mask.getpalette() == palette[:len(mask.getpalette())]
            assert mask.size == Image.open(e["image"]).size
            assert set(np.unique(np.array(mask))) <= set(range(5))


def test_own_images_get_masks_and_overlays(pipeline):
    cfg, val = pipeline["cfg"], pipeline["val"]
    out = os.path.join(cfg.OUTPUT_PATH, "sec_vgg16-%04d" % (cfg.MAX_ITER // cfg.EPOCH_SIZE),
                       "images")
    for e in val[:2]:
        assert os.path.isfile(os.path.join(out, "masks", e["id"] + ".png"))
        overlay = Image.open(os.path.join(out, "overlays", e["id"] + ".png"))
        width, height = Image.open(e["image"]).size
        assert overlay.size == (2 * width, height)
