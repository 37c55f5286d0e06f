"""Shared fixtures and helpers: a small toy VOC + SBD tree in the real formats, its dataset
index, configs for tiny runs on it, and stand-in cue files."""
import os

import pytest

from cores import cues
from cores.config import load_config
from cores.data.dataset import create_dataset, read_mask
from datagen.variants import make_toy_voc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def device_pair():
    """Two contexts for the data-parallel path: CPU 0 and 1, or under SEC_TEST_DEVICE=gpu GPU 0
    listed twice (the check of that path on a one-GPU machine, tools/gpu_check.py)."""
    import mxnet as mx
    if os.environ.get("SEC_TEST_DEVICE") == "gpu":
        return [mx.gpu(0), mx.gpu(0)]
    return [mx.cpu(0), mx.cpu(1)]


def load_script(relative):
    """A script of the repository (not a package module) loaded as a module."""
    import importlib.util
    name = os.path.splitext(os.path.basename(relative))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relative))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def toy_tree(tmp_path_factory):
    """(root, ids) of a toy VOC2012 + SBD tree: 8 VOC train, 6 VOC val, 16 SBD-only ids."""
    root = str(tmp_path_factory.mktemp("toy"))
    ids = make_toy_voc(root, seed=1, n_voc_train=8, n_voc_val=6, n_sbd_only=16)
    return root, ids


def toy_config(root, work, **overrides):
    """The demo's toy config pointed at ``root`` (data) and ``work`` (outputs), at input 81
    (11x11 score maps) for speed."""
    cfg = load_config(os.path.join(REPO, "demo", "toy.yaml"), [
        "VOCDEVKIT_PATH=" + os.path.join(root, "VOCdevkit", "VOC2012"),
        "SBD_PATH=" + os.path.join(root, "benchmark_RELEASE", "dataset"),
        "DATASET_PATH=" + os.path.join(work, "dataset"),
        "MODEL_PATH=" + os.path.join(work, "models"),
        "SNAPSHOT_PATH=" + os.path.join(work, "snapshots"),
        "CACHE_PATH=" + os.path.join(work, "cache"),
        "OUTPUT_PATH=" + os.path.join(work, "outputs"),
        "LOG_PATH=" + os.path.join(work, "log"),
        "DATA_WORKERS=1", "CRF_WORKERS=1", "INPUT_SIZE=81", "Q_FG=0.945", "Q_BG=0.986"]
        + ["%s=%s" % kv for kv in overrides.items()])
    return cfg


@pytest.fixture(scope="session")
def toy_index(toy_tree, tmp_path_factory):
    """(cfg, index) with the dataset index of ``toy_tree`` written."""
    root, _ = toy_tree
    work = str(tmp_path_factory.mktemp("work"))
    cfg = toy_config(root, work)
    return cfg, create_dataset(cfg)


def gt_cue_file(cfg, index, size):
    """A cue file of stand-in cues from the masks (training-loop tests only need valid cues)."""
    out = {e["id"]: cues.mask_cues(read_mask(e["mask"]), size) for e in index["train"]}
    path = os.path.join(cfg.CACHE_PATH, "gt_cues.npz")
    cues.save_cues(path, out, size)
    return path


@pytest.fixture(scope="session")
def sec_snapshot(toy_tree, toy_index, tmp_path_factory):
    """The config of one SEC run shared by the suite (input 41, two epochs of one step, stand-in
    cues): a snapshot to evaluate or read the logs of. Tests may add outputs beside it, never
    change its snapshots."""
    import mxnet as mx
    from cores import methods
    from cores.segmentation import train
    cfg = small_config(toy_tree, toy_index, tmp_path_factory.mktemp("secrun"), MAX_ITER=2,
                       EPOCH_SIZE=1)
    train(cfg, methods.get("sec"), [mx.cpu()], cue_file=gt_cue_file(cfg, toy_index[1], 6))
    return cfg


def small_config(toy_tree, toy_index, work, **extra):
    """The toy config for a tiny training run (input 41, batch 2, 4 iterations) in ``work``."""
    settings = dict(INPUT_SIZE=41, RANDOM_INIT=True, BATCH_SIZE=2, EPOCH_SIZE=2, MAX_ITER=4,
                    DATASET_PATH=toy_index[0].DATASET_PATH)
    settings.update(extra)
    return toy_config(toy_tree[0], str(work), **settings)
