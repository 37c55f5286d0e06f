"""bench/quality.py's reuse of a finished variant: what a cue recipe does not change is linked,
what it changes (cue networks, cues, SEC and their evaluations) is not."""
import json
import os

import pytest

from tests.conftest import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quality():
    return load_script("bench/quality.py")


def _touch(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_reuse_links_the_bound_and_backbone_but_not_the_cues_or_sec(tmp_path):
    quality = _quality()
    source, work = str(tmp_path / "stripes5"), str(tmp_path / "stripes5_portcues")
    shared = ["data/variant.json", "dataset/train.txt", "models/vgg16.params",
              "snapshots/pretrain_vgg16-0005.params", "snapshots/supervised_vgg16-0003.params",
              "outputs/supervised_vgg16-0003_flip_crf/metrics.json",
              "outputs_former_test_time/supervised_vgg16-0003_flip_crf/metrics.json",
              ".done_create_dataset", ".done_pretrain", ".done_supervised",
              ".done_eval_supervised_crf_flip"]
    own = ["snapshots/sec_vgg16-0003.params", "snapshots/saliency_vgg16-0002.params",
           "snapshots/cam_vgg16-0002.params", "cache/fg_cues.npz",
           "outputs/sec_vgg16-0003_flip_crf/metrics.json",
           "outputs_former_test_time/sec_vgg16-0003_flip_crf/metrics.json",
           ".done_sec", ".done_bg_cues", ".done_fg_cues", ".done_eval_crf_flip",
           ".done_baselines", "baselines.json", "quality.json"]
    for rel in shared + own:
        _touch(os.path.join(source, rel))
    quality.reuse(source, work)
    for rel in shared:
        assert os.path.samefile(os.path.join(source, rel), os.path.join(work, rel)), rel
    for rel in own:
        assert not os.path.exists(os.path.join(work, rel)), rel
    # a second call on a started folder changes nothing (the run resumes)
    _touch(os.path.join(work, ".done_sec"))
    quality.reuse(source, work)
    assert os.path.isfile(os.path.join(work, ".done_sec"))


def test_reuse_refuses_a_source_without_a_finished_bound(tmp_path):
    quality = _quality()
    _touch(str(tmp_path / "fields5" / ".done_create_dataset"))
    with pytest.raises(RuntimeError, match="no finished bound"):
        quality.reuse(str(tmp_path / "fields5"), str(tmp_path / "fields5_portcues"))


def _effective(args):
    """The config a script would see from these arguments (later --set values win)."""
    from cores.config import load_config
    sets = args[args.index("--set") + 1:] if "--set" in args else []
    return load_config(None, sets)


def test_each_method_runs_in_its_own_folders_and_a_retraining_labels_with_its_source(tmp_path):
    """DSRG+RT labels with the DSRG method's snapshots (ASPP) into its own pseudo-mask folder,
    then trains and evaluates in its own folders; SEC+RT labels with SEC's; every --set the
    runner appends (the variant's, then the method's) reaches the script in that order."""
    from cores import pipeline
    quality = _quality()
    work = str(tmp_path / "photo5")
    common = ["--cfg", "demo/toy.yaml", "--set", "SNAPSHOT_PATH=" + os.path.join(work, "snapshots"),
              "OUTPUT_PATH=" + os.path.join(work, "outputs")]
    seen = {}

    def run_one(step, args):
        seen[step.key] = args

    for method in quality.METHOD_ORDER:
        for steps, sets in quality.method_steps(work, method):
            pipeline.run_steps(steps, common, run_one, later=sets)
    label = _effective(seen["DSRG+RT label"])
    assert label.SNAPSHOT_PATH == os.path.join(work, "snapshots_dsrg") and label.HEAD == "aspp"
    assert label.PSEUDO_MASK_PATH == os.path.join(work, "pseudo_masks_dsrg_rt")
    assert seen["DSRG+RT label"][:6] == ["eval.py", "--label", "--crf", "--flip", "--stage",
                                         "dsrg"]
    train = _effective(seen["DSRG+RT train"])
    assert train.SNAPSHOT_PATH == os.path.join(work, "snapshots_dsrg_rt")
    assert train.PSEUDO_MASK_PATH == label.PSEUDO_MASK_PATH
    sec_label = _effective(seen["SEC+RT label"])
    assert sec_label.SNAPSHOT_PATH == os.path.join(work, "snapshots")     # SEC's own
    assert sec_label.PSEUDO_MASK_PATH == os.path.join(work, "pseudo_masks_sec_rt")
    assert _effective(seen["S train"]).SEC_LOSSES == ["seed"]
    assert _effective(seen["SEC seed 1 train"]).SEED == 1
    folders = {_effective(seen[m + " train"]).SNAPSHOT_PATH for m in quality.METHOD_ORDER}
    assert len(folders) == len(quality.METHOD_ORDER)                    # nothing shared
    assert "--scales" in seen["DSRG eval --crf --flip --scales %s" % quality.MS]


def test_a_second_seed_differs_from_its_method_only_by_the_seed_and_all_leaves_it_out(tmp_path):
    """'DSRG seed 1' trains DSRG's config with SEED=1 in its own folders; 'bound 2x seed 1' the
    bound at twice its iterations; --methods all is the issue's methods, without the seeds; an
    unknown name is an error naming the known ones."""
    from cores import pipeline
    quality = _quality()
    work = str(tmp_path / "stripes5")
    seen = {}
    for method in quality.METHOD_ORDER:
        for steps, sets in quality.method_steps(work, method):
            pipeline.run_steps(steps, ["--cfg", "demo/toy.yaml", "--set", "SEED=0"],
                               lambda step, args: seen.__setitem__(step.key, args), later=sets)
    first, second = _effective(seen["DSRG train"]), _effective(seen["DSRG seed 1 train"])
    differ = {k for k in first if first[k] != second[k]}
    assert differ == {"SEED", "SNAPSHOT_PATH", "OUTPUT_PATH", "PSEUDO_MASK_PATH"}
    assert (first.SEED, second.SEED) == (0, 1)
    bound = _effective(seen["bound 2x seed 1 train"])
    assert seen["bound 2x seed 1 train"][:3] == ["train_SEC.py", "--stage", "supervised"]
    assert (bound.SUPERVISED_ITER_SCALE, bound.SEED) == (2.0, 1)
    assert seen["SEC+RT seed 1 label"][4:6] == ["--stage", "sec"]
    assert quality.method_list("all") == [m for m in quality.METHOD_ORDER
                                          if "seed 1" not in m or m == "SEC seed 1"]
    assert quality.method_list("all,DSRG seed 1,S") == quality.method_list("all") + ["DSRG seed 1"]
    with pytest.raises(SystemExit, match="no method 'DSRG seed 2'.*DSRG seed 1"):
        quality.method_list("DSRG seed 2")


def test_the_seeds_table_holds_only_the_runs_with_a_second_seed():
    """result.md's seeds table: one line per variant that trained a second seed, each seed
    beside its first (SEC's pair is in the methods' table), the bound's in a table of its own."""
    from bench.provenance import markdown_table
    quality = _quality()
    row = {"variant": "v", "sec_crf_flip": 0.5, "supervised_crf_flip": 0.7,
           "supervised_crf_flip_2x_iterations": 0.71}
    seeded = dict(row, variant="w", methods={"bound seed 1": {"crf_flip": 0.69, "crf_flip_ms": 0.6}})
    plain = dict(row, methods={"S": {"crf_flip": 0.4, "crf_flip_ms": 0.3}})
    got = quality.seed_rows([plain, seeded], quality.BOUND_SEEDS)
    assert [r["variant"] for r in got] == ["w"]
    assert quality.seed_rows([plain, seeded], quality.METHOD_SEEDS) == []
    text = markdown_table(got, quality.BOUND_SEEDS)
    assert "| w | 0.700 | 0.690 | 0.710 | - |" in text


def test_converged_labels_the_training_images_with_the_bound_at_both_lengths(tmp_path,
                                                                              monkeypatch):
    """--converged: besides the bound at 2x, both bounds label their own training images
    (plain) into their own folders, and the row reads their mIoU back: the capacity check
    (a network that capped the bound would fit train no better than val)."""
    from cores import stages
    quality = _quality()
    work = str(tmp_path / "photo5b")
    ran = []
    monkeypatch.setattr(quality.toy, "make_dataset", lambda data, spec: None)
    monkeypatch.setattr(quality, "_run", lambda args, log: ran.append(args))
    monkeypatch.setattr(quality, "collect", lambda work, cfg, spec, times, methods=(): {})
    quality.run_variant("photo5b", work, "demo/toy.yaml", ["WIDTH_MULT=0.25"], extras=False,
                        converged=True)
    labels = [_effective(a) for a in ran if a[:3] == ["eval.py", "--label", "--supervised"]]
    assert [c.PSEUDO_MASK_PATH for c in labels] == [quality.train_fit(work),
                                                   quality.train_fit(work, longer=True)]
    assert [c.SUPERVISED_ITER_SCALE for c in labels] == [1.0, 2.0]
    assert labels[1].SNAPSHOT_PATH == quality.longer_bound(work)["SNAPSHOT_PATH"]
    assert labels[0].WIDTH_MULT == 0.25 and labels[0].CLASS_NUM == 6
    for longer, miou in ((False, 0.81), (True, 0.85)):
        os.makedirs(quality.train_fit(work, longer))
        with open(stages.metrics_path(quality.train_fit(work, longer)), "w") as f:
            f.write('{"mIoU": %s}' % miou)
    assert (quality._train_fit(work, False), quality._train_fit(work, True)) == (0.81, 0.85)
    assert quality._train_fit(str(tmp_path / "none"), False) is None


def _method_result(folder, name, rows):
    os.makedirs(os.path.join(folder, name))
    with open(os.path.join(folder, name, "result.json"), "w") as f:
        json.dump({"rows": rows}, f)


def _row(variant, sec, sec1, **methods):
    crf = dict(methods, **{"SEC seed 1": sec1})
    return {"variant": variant, "held_out": variant == "photo5b", "sec_crf_flip": sec,
            "sec_crf_flip_ms": None, "supervised_crf_flip": sec + 0.1,
            "methods": {m: {"crf_flip": v, "crf_flip_ms": None} for m, v in crf.items()}}


def test_methods_summary_counts_each_variant_against_its_scatter(tmp_path):
    """Medians per family, the median less SEC's, and above / within / below counted against
    each variant's scatter: SEC's, or the method's own second seed's where larger."""
    summary = load_script("bench/methods_summary.py")
    folder = str(tmp_path)
    _method_result(folder, "photo_methods", [
        _row("photo5", 0.60, 0.62, DSRG=0.615),            # +0.015 within SEC's 0.02
        _row("photo5b", 0.50, 0.51, DSRG=0.55)])           # +0.05 above 0.01
    _method_result(folder, "flat_methods", [
        _row("many10", 0.80, 0.80, DSRG=0.79, **{"DSRG seed 1": 0.77})])  # -0.01 within 0.02
    _method_result(folder, "photo_bound_seeds", [_row("photo1", 0.9, 0.9, DSRG=0.1)])  # ignored
    rows = summary.variant_rows(folder)
    assert sorted(rows) == ["many10", "photo5", "photo5b"]
    table = {r["method"]: r for r in summary.summary(rows)}
    dsrg = table["DSRG"]
    assert dsrg["photographic_median"] == pytest.approx((0.615 + 0.55) / 2)
    assert dsrg["photographic_delta"] == pytest.approx((0.615 + 0.55) / 2 - 0.55)
    assert dsrg["photographic_counts"] == "1 / 1 / 0"
    assert dsrg["flat_median"] == pytest.approx(0.79)
    assert dsrg["flat_counts"] == "0 / 1 / 0"
    assert table["bound"]["photographic_counts"] == "2 / 0 / 0"
    assert "S" in table and "photographic_median" not in table["S"]
    assert "photo5b (held out) 0.010" in summary.variants_line(rows)
    _method_result(folder, "flat_methods_again", [_row("many10", 0.8, 0.8)])
    with pytest.raises(ValueError, match="many10 is in two methods runs"):
        summary.variant_rows(folder)
