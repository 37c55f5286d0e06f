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
              "outputs_crf_flip_former_test_time/supervised_vgg16-0003_flip_crf/metrics.json",
              ".done_create_dataset", ".done_pretrain", ".done_bound_train",
              ".done_bound_eval_crf_flip"]
    own = ["snapshots/sec_vgg16-0003.params", "snapshots/saliency_vgg16-0002.params",
           "snapshots/cam_vgg16-0002.params", "cache/fg_cues.npz",
           "outputs/sec_vgg16-0003_flip_crf/metrics.json",
           "outputs_crf_flip_former_test_time/sec_vgg16-0003_flip_crf/metrics.json",
           ".done_SEC_train", ".done_bg_cues", ".done_fg_cues", ".done_SEC_eval_crf_flip",
           ".done_baselines", "baselines.json", "quality.json"]
    for rel in shared + own:
        _touch(os.path.join(source, rel))
    quality.reuse(source, work)
    for rel in shared:
        assert os.path.samefile(os.path.join(source, rel), os.path.join(work, rel)), rel
    for rel in own:
        assert not os.path.exists(os.path.join(work, rel)), rel
    # a second call on a started folder changes nothing (the run resumes)
    _touch(os.path.join(work, ".done_SEC_train"))
    quality.reuse(source, work)
    assert os.path.isfile(os.path.join(work, ".done_SEC_train"))


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


def _steps_of(quality, work, names, fit=False):
    """{step key: the arguments its script gets} of every row in ``names``."""
    from cores import pipeline
    from cores.config import load_config
    cfg = load_config("demo/toy.yaml")
    common = ["--cfg", "demo/toy.yaml", "--set", "SNAPSHOT_PATH=" + os.path.join(
        work, "snapshots"), "OUTPUT_PATH=" + os.path.join(work, "outputs"), "SEED=0"]
    seen = {}
    for name in names:
        for steps, sets in quality.row_steps(work, quality.row(name), cfg, fit):
            pipeline.run_steps(steps, common, lambda step, args: seen.__setitem__(step.key, args),
                               later=sets)
    return seen


def test_the_rows_are_the_registrys_each_in_its_own_folders(tmp_path):
    """Every row comes from a method module (SEC and the bound are rows as any other); each
    trains with its method's --stage in its own folders (a method's first row in the
    variant's); DSRG on SEC's schedule takes the recipe's values; DSRG+RT labels with the
    DSRG row's snapshots (ASPP) into its own pseudo-mask folder, SEC+RT with SEC's; every
    --set the runner appends (the variant's, then the row's) reaches the script in order."""
    from cores import methods
    quality = _quality()
    assert quality.ROW_NAMES == [r.name for m in methods.all_methods().values()
                                 for r in m.bench_rows()]
    assert quality.ROW_NAMES[:4] == ["SEC", "S", "SE", "SC"] and "bound" in quality.ROW_NAMES
    work = str(tmp_path / "photo5")
    seen = _steps_of(quality, work, quality.ROW_NAMES)
    label = _effective(seen["DSRG+RT label"])
    assert label.SNAPSHOT_PATH == os.path.join(work, "snapshots") and label.HEAD == "aspp"
    assert label.PSEUDO_MASK_PATH == os.path.join(work, "pseudo_masks_dsrg_rt")
    assert seen["DSRG+RT label"][:6] == ["eval.py", "--label", "--crf", "--flip", "--stage",
                                         "dsrg"]
    train = _effective(seen["DSRG+RT train"])
    assert train.SNAPSHOT_PATH == os.path.join(work, "snapshots_dsrg_rt")
    assert train.PSEUDO_MASK_PATH == label.PSEUDO_MASK_PATH
    sec_label = _effective(seen["SEC+RT label"])
    assert sec_label.SNAPSHOT_PATH == os.path.join(work, "snapshots")     # SEC's own
    assert sec_label.PSEUDO_MASK_PATH == os.path.join(work, "pseudo_masks")
    assert seen["S train"][:4] == ["train_SEC.py", "--resume", "--stage", "seed"]
    assert seen["bound train"][2:4] == ["--stage", "supervised"]
    lr = _effective(seen["DSRG-SEC-lr train"])
    assert (lr.LR_DSRG, lr.LR_STEP_DSRG, lr.LR_FACTOR_DSRG, lr.BATCH_SIZE_DSRG) == (
        1e-3, 1200, 0.1, 8)                               # the recipe's SEC schedule
    assert _effective(seen["bound 2x train"]).SUPERVISED_ITER_SCALE == 2.0
    folders = {(_effective(seen[n + " train"]).SNAPSHOT_PATH, quality.row(n).method.name)
               for n in quality.ROW_NAMES}
    assert len(folders) == len(quality.ROW_NAMES)                     # nothing shared
    assert "--scales" in seen["DSRG eval crf_flip_ms"]


def test_a_second_seed_differs_from_its_row_only_by_the_seed_and_all_leaves_it_out(tmp_path):
    """'DSRG seed 1' trains DSRG's config with SEED=1 in its own folders, and any row has
    one; a retraining's second seed labels with its source's second seed; --methods all is
    every row of the registry, without the seeds; an unknown name is an error."""
    quality = _quality()
    work = str(tmp_path / "stripes5")
    seen = _steps_of(quality, work, ["DSRG", "DSRG seed 1", "bound 2x seed 1",
                                     "bound 4x seed 1", "SEC+RT seed 1"])
    first, second = _effective(seen["DSRG train"]), _effective(seen["DSRG seed 1 train"])
    differ = {k for k in first if first[k] != second[k]}
    assert differ == {"SEED", "SNAPSHOT_PATH", "OUTPUT_PATH", "PSEUDO_MASK_PATH"}
    assert (first.SEED, second.SEED) == (0, 1)
    bound = _effective(seen["bound 2x seed 1 train"])
    assert (bound.SUPERVISED_ITER_SCALE, bound.SEED) == (2.0, 1)
    scaled = _effective(seen["bound 4x seed 1 train"])                # a scaled row's too
    assert (scaled.SUPERVISED_ITER_SCALE, scaled.SEED) == (4.0, 1)
    assert scaled.SNAPSHOT_PATH == os.path.join(work, "snapshots_bound4xseed1")
    assert _effective(seen["SEC+RT seed 1 label"]).SNAPSHOT_PATH == os.path.join(
        work, "snapshots_secseed1")
    assert quality.method_list("all") == quality.ROW_NAMES
    assert quality.method_list("all,DSRG seed 1,S") == quality.ROW_NAMES + ["DSRG seed 1"]
    for asked, named in (("DSRG seed 2", "DSRG seed 2"), ("SEC 4x seed 1", "SEC 4x"),
                         ("bound seed 1 seed 1", "bound seed 1 seed 1")):
        with pytest.raises(SystemExit, match="no row %r" % named):
            quality.method_list(asked)


def test_a_row_at_n_times_its_iterations_is_its_method_scaled_in_its_own_folders(tmp_path):
    """'bound 8x' is the bound with SUPERVISED_ITER_SCALE=8 in its own folders, fitting its own
    training images (is the bound converged? the 0.01 measure, doubling until it moves less);
    a method that scales no iterations (SEC) or a row already scaled has none."""
    quality = _quality()
    work = str(tmp_path / "scenes5")
    seen = _steps_of(quality, work, ["bound", "bound 4x", "bound 8x"], fit=True)
    scales = [_effective(seen[n + " train"]).SUPERVISED_ITER_SCALE
              for n in ("bound", "bound 4x", "bound 8x")]
    assert scales == [1.0, 4.0, 8.0]
    assert _effective(seen["bound 8x train"]).SNAPSHOT_PATH == os.path.join(
        work, "snapshots_bound8x")
    assert _effective(seen["bound 8x fit"]).PSEUDO_MASK_PATH == quality.fit_folder(
        work, quality.row("bound 8x")) == os.path.join(work, "train_fit_bound8x")
    for name in ("SEC 4x", "bound 2x 4x", "bound 0x"):
        with pytest.raises(SystemExit, match="no row %r" % name):
            quality.row(name)


def test_fit_labels_the_training_images_with_the_bound(tmp_path, monkeypatch):
    """--fit: the bound's rows label their own training images (plain) into their own folders,
    and the row reads their mIoU back: the capacity check (a network that capped the bound
    would fit train no better than val)."""
    from cores import stages
    quality = _quality()
    work = str(tmp_path / "photo5b")
    ran = []
    monkeypatch.setattr(quality.toy, "make_dataset", lambda data, spec: None)
    monkeypatch.setattr(quality, "_run", lambda args, log: ran.append(args))
    monkeypatch.setattr(quality, "collect", lambda work, cfg, spec, times, rows=(): {})
    quality.run_variant("photo5b", work, "demo/toy.yaml", ["WIDTH_MULT=0.25"],
                        rows=["SEC", "bound", "bound 2x"], fit=True)
    labels = [_effective(a) for a in ran if a[:2] == ["eval.py", "--label"]]
    assert [c.PSEUDO_MASK_PATH for c in labels] == [
        quality.fit_folder(work, quality.row(n)) for n in ("bound", "bound 2x")]
    assert [c.SUPERVISED_ITER_SCALE for c in labels] == [1.0, 2.0]
    assert labels[0].WIDTH_MULT == 0.25 and labels[0].CLASS_NUM == 6
    for name, miou in (("bound", 0.81), ("bound 2x", 0.85)):
        folder = quality.fit_folder(work, quality.row(name))
        os.makedirs(folder)
        with open(stages.metrics_path(folder), "w") as f:
            f.write('{"mIoU": %s}' % miou)
    from cores.config import load_config
    cfg = load_config("demo/toy.yaml", quality.variant_config(work, {"classes": 5,
                                                                     "layout": "voc"}))
    assert quality.row_results(work, cfg, quality.row("bound 2x"))["train_fit"] == 0.85


def test_a_result_of_either_layout_flattens_alike():
    """Results recorded before the rows were the registry's (SEC's and the bound's keys, a
    'methods' dict) read as the new ones do."""
    quality = _quality()
    old = {"variant": "v", "sec_crf_flip": 0.5, "sec": 0.4, "supervised_crf_flip": 0.7,
           "supervised_crf_flip_2x_iterations": 0.71, "supervised_train": 0.8,
           "methods": {"DSRG": {"plain": 0.3, "crf_flip": 0.55, "crf_flip_ms": 0.56}}}
    new = {"variant": "v", "rows": {"SEC": {"plain": 0.4, "crf_flip": 0.5},
                                    "bound": {"crf_flip": 0.7, "train_fit": 0.8},
                                    "bound 2x": {"crf_flip": 0.71},
                                    "DSRG": {"plain": 0.3, "crf_flip": 0.55,
                                             "crf_flip_ms": 0.56}}}
    for result in (old, new):
        flat = quality.flat_row(result)
        assert (flat["SEC"], flat["SEC plain"], flat["bound"], flat["bound 2x"],
                flat["bound fit"], flat["DSRG ms"]) == (0.5, 0.4, 0.7, 0.71, 0.8, 0.56)
    from bench.provenance import markdown_table
    tables = quality.row_tables([new])
    assert tables[0][1][1:] == [("SEC", "SEC", "%.3f"), ("DSRG", "DSRG", "%.3f"),
                                ("bound", "bound", "%.3f"), ("bound 2x", "bound 2x", "%.3f")]
    assert "| v | 0.500 | 0.550 | 0.700 | 0.710 |" in markdown_table([quality.flat_row(new)],
                                                                       tables[0][1])


def _method_result(folder, name, rows):
    os.makedirs(os.path.join(folder, name))
    with open(os.path.join(folder, name, "result.json"), "w") as f:
        json.dump({"rows": rows}, f)


def _row(variant, sec, sec1, **methods):
    crf = dict(methods, **{"SEC seed 1": sec1, "SEC": sec, "bound": sec + 0.1})
    return {"variant": variant, "held_out": variant == "photo5b",
            "rows": {m: {"crf_flip": v, "crf_flip_ms": None} for m, v in crf.items()}}


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
    assert "S" not in table                  # a row measured nowhere is left out
    assert "photo5b (held out) 0.010" in summary.variants_line(rows)
    _method_result(folder, "flat_methods_again", [_row("many10", 0.8, 0.8)])
    with pytest.raises(ValueError, match="many10 is in two methods runs"):
        summary.variant_rows(folder)


def test_sec_against_the_best_bound_over_its_schedules_and_whether_the_longest_converged(
        tmp_path):
    """The ratio table also sets SEC against each variant's best bound over the schedules
    measured (bound, 2x, any Nx), and counts it converged where doubling the longest schedule's
    iterations raised it by less than 0.01 (a fall counts; a schedule with a second seed counts
    as the mean of its two)."""
    summary = load_script("bench/methods_summary.py")
    quality = _quality()
    folder = str(tmp_path)
    _method_result(folder, "scenes_methods", [
        _row("scenes5", 0.30, 0.30, **{"bound 2x": 0.33, "bound 4x": 0.335,  # 2x -> 4x: +0.015
                                       "bound 4x seed 1": 0.355}),      # with its second seed
        _row("scenes6", 0.25, 0.25, **{"bound 2x": 0.29, "bound 4x": 0.36}),   # +0.07
        _row("scenes4", 0.20, 0.25, **{"bound 2x": 0.32, "bound 4x": 0.28})])  # a fall
    rows = summary.variant_rows(folder)
    schedules = quality.bound_schedules(rows["scenes5"])
    assert [n for n, _ in schedules] == [1, 2, 4]
    assert [b for _, b in schedules] == pytest.approx([0.4, 0.33, 0.345])
    assert [quality.converged(quality.bound_schedules(rows[v])) for v in sorted(rows)] == [
        True, False, False]                                     # scenes4, scenes5, scenes6
    assert quality.converged([(1, 0.4), (4, 0.4)]) is None      # not a doubling
    assert quality.converged([(1, 0.4)]) is None
    (scenes,) = summary.ratios(rows)
    assert scenes["ratio"] == pytest.approx(0.25 / 0.35)      # bounds 0.4, 0.35, 0.3 at 1x
    assert scenes["best"] == "0.360 (1x-4x)"                   # 0.4 @1x, 0.36 @4x, 0.32 @2x
    assert scenes["ratio_best"] == pytest.approx(0.25 / 0.36)
    assert scenes["range_best"] == "%.2f-%.2f" % (0.20 / 0.32, 0.30 / 0.40)
    assert scenes["converged"] == "1 / 3"
