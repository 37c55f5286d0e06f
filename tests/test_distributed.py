"""MXNet's distributed kvstore on loopback: 1 scheduler, 1 server, 2 workers."""
import json
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest
import yaml

from cores import checkpoint, cues, stages
from cores.classifier import train_cue_network
from cores.localization import run_cue_stage
from cores import methods
from cores.segmentation import train
from tests.conftest import REPO, load_script, toy_config
from tests.conftest import gt_cue_file as _gt_cues

launch_local = load_script("tools/launch.py").launch_local

pytestmark = pytest.mark.slow          # multi-process jobs: make test runs them, test-fast not

DRIVER = """
import json, sys
sys.path.insert(0, %(repo)r)
import mxnet as mx
from cores.config import load_config
from cores.data import iterators
from cores.distributed import cluster
cfg = load_config(%(cfg)r)
c = cluster("dist_sync")
seen, modules = [], []
plain_next, plain_update = iterators.TrainIter.next, mx.mod.Module.update
def next_(self):
    batch = plain_next(self)
    seen.append(list(self.last_ids))
    return batch
def update(self):
    modules[:] = [self]
    return plain_update(self)
iterators.TrainIter.next, mx.mod.Module.update = next_, update
if %(stage)r == "sec":
    from cores import methods
    from cores.segmentation import train
    train(cfg, methods.get("sec"), [mx.cpu()], cue_file=%(cues)r, cluster=c)
    arg, aux = modules[0].get_params()
    mx.nd.save("%(out)s/rank%%d.params" %% c.rank, {**arg, **aux})
    del modules[:]     # no Module may hold the kvstore at exit (cores/train.py)
    import gc
    gc.collect()
else:
    from cores import stages
    from cores.localization import run_cue_stage
    run_cue_stage(cfg, stages.CAM, [mx.cpu()], skip_train=True, cluster=c)
json.dump({"rank": c.rank, "batches": seen}, open("%(out)s/rank%%d.json" %% c.rank, "w"))
"""


def _settings(toy_tree, toy_index, work, **extra):
    # untrained networks: the classifier check would rightly stop the cue stage
    base = dict(INPUT_SIZE=41, RANDOM_INIT=True, DROPOUT=False, BATCH_SIZE=2, EPOCH_SIZE=3,
                MAX_ITER=6, DATASET_PATH=toy_index[0].DATASET_PATH, MIN_CLASSIFIER_MAP=0)
    base.update(extra)
    return toy_config(toy_tree[0], str(work), **base)


def _launch(cfg, work, stage, cue_file=None):
    cfg_file = os.path.join(str(work), "cfg.yaml")
    with open(cfg_file, "w") as f:
        yaml.safe_dump(dict(cfg), f)
    driver = os.path.join(str(work), "driver.py")
    with open(driver, "w") as f:
        f.write(DRIVER % dict(repo=REPO, cfg=cfg_file, stage=stage, cues=cue_file,
                              out=str(work)))
    status = launch_local([sys.executable, driver], num_workers=2, num_servers=1,
                          timeout=300, log=lambda m: None)
    assert status == 0
    return [json.load(open(os.path.join(str(work), "rank%d.json" % r))) for r in (0, 1)]


@pytest.fixture(scope="module")
def dist_run(toy_tree, toy_index, tmp_path_factory):
    work = tmp_path_factory.mktemp("dist")
    cfg = _settings(toy_tree, toy_index, work)
    cue_file = _gt_cues(cfg, toy_index[1], 6)
    ranks = _launch(cfg, work, "sec", cue_file)
    return cfg, work, cue_file, ranks


def test_workers_end_identical_and_equal_to_the_snapshot(dist_run):
    cfg, work, _, _ = dist_run
    a = mx.nd.load(os.path.join(str(work), "rank0.params"))
    b = mx.nd.load(os.path.join(str(work), "rank1.params"))
    arg, aux = checkpoint.load_params_file(checkpoint.snapshot_path(stages.prefix(cfg, methods.get("sec")), 2))
    snapshot = {**arg, **aux}
    assert sorted(a) == sorted(b) == sorted(snapshot)
    for k in a:
        np.testing.assert_array_equal(a[k].asnumpy(), b[k].asnumpy(), err_msg=k)
        np.testing.assert_array_equal(a[k].asnumpy(), snapshot[k].asnumpy(), err_msg=k)
    assert sorted(f for f in os.listdir(cfg.SNAPSHOT_PATH) if f.endswith(".params")) == [
        "sec_vgg16-0001.optimizer.params", "sec_vgg16-0001.params",
        "sec_vgg16-0002.optimizer.params", "sec_vgg16-0002.params"]


def test_shards_are_disjoint_and_complete(dist_run, toy_index):
    _, _, _, ranks = dist_run
    by_rank = {r["rank"]: r["batches"] for r in ranks}
    assert len(by_rank[0]) == len(by_rank[1]) == 6
    one_pass = [i for batch in range(6) for r in (0, 1) for i in by_rank[r][batch]]
    assert len(one_pass) == len(set(one_pass)) == 24           # 6 batches x 2 workers x 2
    assert set(one_pass) == {e["id"] for e in toy_index[1]["train"]}


def test_dist_sync_equals_one_process_with_the_total_batch(dist_run, toy_tree, toy_index,
                                                            tmp_path):
    cfg, work, cue_file, ranks = dist_run
    single = _settings(toy_tree, toy_index, tmp_path, BATCH_SIZE=4)
    seen = []
    from cores.data import iterators
    plain_next = iterators.TrainIter.next

    def next_(self):
        batch = plain_next(self)
        seen.append(sorted(self.last_ids))
        return batch

    iterators.TrainIter.next = next_
    try:
        train(single, methods.get("sec"), [mx.cpu()], cue_file=cue_file)
    finally:
        iterators.TrainIter.next = plain_next
    by_rank = {r["rank"]: r["batches"] for r in ranks}
    assert seen == [sorted(by_rank[0][b] + by_rank[1][b]) for b in range(6)]
    one = checkpoint.load_params_file(checkpoint.snapshot_path(stages.prefix(single, methods.get("sec")), 2))[0]
    two = checkpoint.load_params_file(checkpoint.snapshot_path(stages.prefix(cfg, methods.get("sec")), 2))[0]
    moved = checkpoint.load_params_file(checkpoint.snapshot_path(stages.prefix(cfg, methods.get("sec")), 1))[0]
    assert max(np.abs(two[k].asnumpy() - moved[k].asnumpy()).max() for k in two) > 0
    for k in one:
        np.testing.assert_allclose(one[k].asnumpy(), two[k].asnumpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=k)


def test_distributed_cue_generation_equals_the_single_process(toy_tree, toy_index, tmp_path):
    cfg = _settings(toy_tree, toy_index, tmp_path / "single", MAX_ITER_FG=2, EPOCH_SIZE_FG=2,
                    BATCH_SIZE_FG=2)
    train_cue_network(cfg, stages.CAM, [mx.cpu()], toy_index[1]["train"])
    run_cue_stage(cfg, stages.CAM, [mx.cpu()], skip_train=True)
    dist = type(cfg)(cfg, CACHE_PATH=str(tmp_path / "distcache"))
    _launch(dist, tmp_path, "fg")
    single, size = cues.load_cues(stages.cue_path(cfg, "fg"))
    merged, dsize = cues.load_cues(stages.cue_path(dist, "fg"))
    assert size == dsize and sorted(single) == sorted(merged) == sorted(
        e["id"] for e in toy_index[1]["train"])
    for k in single:
        np.testing.assert_array_equal(single[k], merged[k])
    assert sorted(os.listdir(dist.CACHE_PATH)) == ["fg_classification.json", "fg_cues.npz",
                                                  "fg_cues_config.json", "fg_cues_report.json"]


def test_a_killed_worker_fails_the_job_quickly(toy_tree, toy_index, tmp_path):
    cfg = _settings(toy_tree, toy_index, tmp_path, MAX_ITER=100000, EPOCH_SIZE=100000)
    cue_file = _gt_cues(cfg, toy_index[1], 6)
    cfg_file = str(tmp_path / "cfg.yaml")
    with open(cfg_file, "w") as f:
        yaml.safe_dump(dict(cfg), f)
    launcher = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tools", "launch.py"), "-n", "2", "--timeout",
         "300", "--", sys.executable, os.path.join(REPO, "train_SEC.py"), "--kvstore",
         "dist_sync", "--cfg", cfg_file, "--cues", cue_file],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = launcher.stdout.readline()
    pids = [int(p) for p in first.split("worker pids ")[1].split()]
    deadline = time.time() + 120                 # wait until the workers train
    while time.time() < deadline and not os.path.exists(cfg.LOG_PATH):
        time.sleep(0.5)
    time.sleep(3)
    os.kill(pids[1], signal.SIGKILL)
    killed = time.time()
    out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode != 0
    assert time.time() - killed < 30
    assert "worker 1 (pid %d) exited with status" % pids[1] in out
    logs = [f for f in os.listdir(cfg.LOG_PATH) if f.endswith(".log")]
    assert len(logs) == 1 and logs[0].startswith("train_SEC-")     # rank 0's log only
    runs = os.listdir(os.path.join(cfg.LOG_PATH, "tensorboard"))
    assert len(runs) == 1 and runs[0].startswith("sec_vgg16-")     # and its events only
    time.sleep(1)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
