"""The quality benchmark: the whole pipeline, as a user runs it, on variants of the generated
dataset family (datagen/), and every method measured the same way beside it.

For each variant: generate the data, create_dataset.py, backbone pretraining, both cue stages
and the baselines (all-background, the cues alone); then each row asked for (--methods): a
method of cores/methods/ with the overrides its module gives it (``Row``), trained in its own
folders on the same cues, data and backbone, and evaluated plain, --crf --flip and multi-scale
--crf --flip. A row that trains on pseudo-masks (a retraining round) first labels the training
images with its source row's snapshot. The rows are the registry's: a new method module adds
its own; "<row> Nx" is a row whose method scales its iterations at N times them (the bound:
is it converged?), "<row> seed 1" any row, a scaled one too, with SEED=1 (its seed scatter).
Writes ROOT/quality.json and ROOT/quality.md (cue statistics, SEC and the bound, every row's
mIoU).

    python bench/quality.py --variants scenes5 --methods all
    python bench/quality.py --variants scenes5 --methods "bound 4x,bound 8x" --fit
    python bench/quality.py --variants stripes5 --set BASE_NET=resnet50 --tag resnet50
    python bench/quality.py --variants stripes5 --set SALIENCY_DROPOUT=False --tag portcues \\
        --reuse-from ""                             # only the cue stages and SEC again
"""
import argparse
import collections
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cores import methods, pipeline, stages  # noqa: E402
from datagen import toy, variants  # noqa: E402

DEFAULT_VARIANTS = ["stripes5", "single_fields", "fields5", "single_clutter", "mixed8", "many10"]
MS = "0.75,1,1.25"
# SEC as a share of the bound: the benchmark's headline
SEC_ROW, BOUND_ROW = "SEC", "bound"
SEED_SUFFIX = " seed 1"
# "<row> Nx": a row of a method that scales its iterations (the bound) at N times them
SCALED = re.compile(r"^(?P<base>.+) (?P<times>[1-9][0-9]*)x$")

# a row of the benchmark: its name, its method, its --set overrides, the row whose snapshot
# labels its pseudo-masks (or None) and whether it is its method's first (its files in the
# variant's own folders)
BenchRow = collections.namedtuple("BenchRow", "name method sets source primary seed")


def _rows():
    rows = []
    for method in methods.all_methods().values():
        for i, row in enumerate(method.bench_rows()):
            rows.append(BenchRow(row.name, method, tuple(row.sets), row.source, i == 0, False))
    return rows


ROWS = _rows()
ROW_NAMES = [r.name for r in ROWS]


def row(name):
    """The row called ``name``: a registry row, '<row> Nx' (a row whose method scales its
    iterations, at N times them: is the bound converged?), or either + ' seed 1'."""
    for r in ROWS:
        if r.name == name:
            return r
    base_name = name[:-len(SEED_SUFFIX)]
    if name.endswith(SEED_SUFFIX) and (base_name in ROW_NAMES or SCALED.match(base_name)):
        base = row(base_name)
        return base._replace(name=name, sets=base.sets + ("SEED=1",), primary=False, seed=True)
    scaled = SCALED.match(name)
    if scaled and scaled.group("base") in ROW_NAMES:
        base = row(scaled.group("base"))
        if base.method.scale and _scale_of(base) is None:
            return base._replace(name=name, primary=False, sets=base.sets + (
                "%s=%s" % (base.method.scale, scaled.group("times")),))
    raise SystemExit("error: --methods: no row %r (%s, any of them + %r, or + ' Nx' where "
                     "its method scales its iterations)"
                     % (name, ", ".join(ROW_NAMES), SEED_SUFFIX))


def _scale_of(r):
    """N where row ``r`` sets its method's iteration scale to N, else None."""
    for s in r.sets:
        if r.method.scale and s.startswith(r.method.scale + "="):
            return float(s.split("=", 1)[1])
    return None


def row_times(name):
    """N of a row trained at N times its method's iterations ('bound 2x', 'bound 8x'), else 1."""
    scale = _scale_of(row(name))
    return 1.0 if scale is None else scale


# the 0.01 measure: a bound is converged when twice its iterations raise it by less
CONVERGED = 0.01


def bound_schedules(result):
    """[(N, val mIoU --crf --flip)] of the bound at every schedule a variant's result has (N x
    its iterations), shortest first; a schedule trained with a second seed too counts as the
    mean of its two (the bound's own seed-to-seed scatter is larger than the 0.01 measure on
    the scenes)."""
    seeds = collections.defaultdict(list)
    for name, m in results_of(result).items():
        if m.get("crf_flip") is None:
            continue
        r = row(name)
        if r.method is row(BOUND_ROW).method:
            seeds[row_times(name)].append(m["crf_flip"])
    return sorted((n, statistics.mean(v)) for n, v in seeds.items())


def converged(schedules):
    """Whether the longest schedule of ``bound_schedules`` raised the bound by less than the
    0.01 measure over half its iterations (a fall counts: more iterations do not help; None:
    no such pair measured)."""
    if len(schedules) < 2 or schedules[-1][0] != 2 * schedules[-2][0]:
        return None
    return schedules[-1][1] - schedules[-2][1] < CONVERGED


def method_list(text):
    """--methods: comma-separated row names, 'all' standing for every row of the registry
    (second seeds are asked for by name)."""
    names = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        for n in (ROW_NAMES if name == "all" else [row(name).name]):
            if n not in names:
                names.append(n)
    return names


def _run(args, log):
    """Run a script of the repository; its output goes to ``log``; a failure ends the
    variant with the script's last lines."""
    with open(log, "a") as f:
        f.write("\n=== %s\n" % " ".join(args))
        f.flush()
        done = subprocess.run([sys.executable] + args, cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT)
    if done.returncode:
        with open(log) as f:
            tail = f.read()[-1500:]
        raise RuntimeError("%s failed:\n%s" % (" ".join(args), tail))


def _json(path):
    with open(path) as f:
        return json.load(f)


def variant_config(work, spec):
    """--set overrides that point every stage of a variant at its own folders."""
    paths = dict(DATASET_PATH="dataset", MODEL_PATH="models", SNAPSHOT_PATH="snapshots",
                 CACHE_PATH="cache", OUTPUT_PATH="outputs", LOG_PATH="log")
    sets = ["%s=%s" % (k, os.path.join(work, v)) for k, v in paths.items()]
    sets.append("CLASS_NUM=%d" % (spec["classes"] + 1))
    if spec["layout"] == "voc":
        data = os.path.join(work, "data")
        sets += ["VOCDEVKIT_PATH=%s" % os.path.join(data, "VOCdevkit", "VOC2012"),
                 "SBD_PATH=%s" % os.path.join(data, "benchmark_RELEASE", "dataset")]
    return sets


def dataset_args(work, spec):
    if spec["layout"] == "voc":
        return []
    data = os.path.join(work, "data")
    return ["--images", os.path.join(data, "images"), "--labels",
            os.path.join(data, "labels.csv"), "--classes", os.path.join(data, "classes.txt"),
            "--masks", os.path.join(data, "masks"), "--val-images",
            os.path.join(data, "val_images"), "--val-masks", os.path.join(data, "val_masks")]


def tagged(name, tag=""):
    """NAME, or NAME_TAG for a tagged run (another width, another recipe): its folders and
    result files."""
    return name + ("_" + tag if tag else "")


def variant_folder(root, name, tag=""):
    """ROOT/VARIANT, or ROOT/VARIANT_TAG for a tagged run."""
    return os.path.abspath(os.path.join(root, tagged(name, tag)))


def _tag(name):
    return name.lower().replace("+", "_").replace(" ", "")


def row_folders(work, r):
    """{key: folder} of a row: its method's first row keeps the variant's own folders (SEC's,
    the bound's), every other one its own."""
    if r.primary:
        return {"SNAPSHOT_PATH": os.path.join(work, "snapshots"),
                "OUTPUT_PATH": os.path.join(work, "outputs"),
                "PSEUDO_MASK_PATH": os.path.join(work, "pseudo_masks")}
    tag = _tag(r.name)
    return {"SNAPSHOT_PATH": os.path.join(work, "snapshots_" + tag),
            "OUTPUT_PATH": os.path.join(work, "outputs_" + tag),
            "PSEUDO_MASK_PATH": os.path.join(work, "pseudo_masks_" + tag)}


def row_sets(work, r, cfg):
    """The overrides of a row: its module's (``{KEY}``: the recipe's value of KEY), then its
    folders."""
    sets = [s.format(**{k: json.dumps(v) if isinstance(v, (list, bool)) else v
                        for k, v in cfg.items()}) for s in r.sets]
    return sets + ["%s=%s" % kv for kv in row_folders(work, r).items()]


EVALS = {"plain": [], "crf_flip": ["--crf", "--flip"],
         "crf_flip_ms": ["--crf", "--flip", "--scales", MS]}


def _stage(r):
    return ["--stage", r.method.name]


def row_steps(work, r, cfg, fit=False):
    """[(steps, overrides)] of a row: a row on pseudo-masks first labels the training images
    with its source row's snapshot --crf --flip into its own pseudo-mask folder; then it
    trains and is evaluated (EVALS); ``fit``: it also labels its own training images, plain
    (how well it fits them: a network that capped a bound would fit them no better than val)."""
    sets = row_sets(work, r, cfg)
    groups = []
    if r.source:
        source = row(r.source + (SEED_SUFFIX if r.seed else ""))
        label = [v for v in row_sets(work, source, cfg) if not v.startswith(
            ("OUTPUT_PATH=", "PSEUDO_MASK_PATH="))]
        label += [v for v in sets if v.startswith("PSEUDO_MASK_PATH=")]
        groups.append(([pipeline.Step("%s label" % r.name, "pseudo-masks",
                                      ["eval.py", "--label", "--crf", "--flip"] + _stage(source))],
                       label))
    steps = [pipeline.Step("%s train" % r.name, r.name,
                           ["train_SEC.py", "--resume"] + _stage(r))]
    for key, flags in EVALS.items():
        steps.append(pipeline.Step("%s eval %s" % (r.name, key), r.name,
                                   ["eval.py"] + _stage(r) + flags))
    groups.append((steps, sets))
    if fit:
        groups.append(([pipeline.Step("%s fit" % r.name, r.name, ["eval.py", "--label"]
                                      + _stage(r))],
                       sets + ["PSEUDO_MASK_PATH=" + fit_folder(work, r)]))
    return groups


def fit_folder(work, r):
    """The folder of a row's labels of its own training images (``row_steps`` fit)."""
    return os.path.join(work, "train_fit_" + _tag(r.name))


# the test time this project used before (BGR CRF image, OpenCV's half-pixel upsampling grid)
# and INT8 (--extras, for SEC and the bound)
EXTRAS = {"crf_flip_former_test_time": (["--crf", "--flip"], ["CRF_TEST_CHANNEL_ORDER=BGR",
                                                              "TEST_INTERPOLATION=half_pixel"]),
          "int8": (["--int8"], []), "crf_flip_int8": (["--int8", "--crf", "--flip"], [])}


def extra_steps(work, r, cfg):
    sets = row_sets(work, r, cfg)
    out = []
    for key, (flags, more) in EXTRAS.items():
        folder = ["OUTPUT_PATH=" + os.path.join(work, "outputs_" + key)] if more else []
        out.append(([pipeline.Step("%s eval %s" % (r.name, key), r.name,
                                   ["eval.py"] + _stage(r) + flags)], sets + more + folder))
    return out


# the recipe of every variant; the scenes train their cue networks longer (bench/scenes.yaml)
TOY_RECIPE = "demo/toy.yaml"
SCENES_RECIPE = "bench/scenes.yaml"


def recipe(name):
    """The recipe files of a variant when --cfg gives none."""
    style = variants.variant(name).get("style")
    return [TOY_RECIPE] + ([SCENES_RECIPE] if style == "scenes" else [])


def run_variant(name, work, cfg_file, extra_sets, rows=(SEC_ROW, BOUND_ROW), fit=False,
                extras=False, collect_only=False):
    """Every stage of one variant and every row of ``rows``; returns its results. ``fit``: the
    rows of the bound's method also label their training images; ``extras``: SEC and the
    bound also at the former test time and quantized to INT8."""
    from cores.config import load_config
    spec = variants.variant(name)
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, "run.log")
    data = os.path.join(work, "data")
    if not os.path.isfile(os.path.join(data, "variant.json")):
        toy.make_dataset(data, spec)
    sets = variant_config(work, spec) + list(extra_sets)
    files = [cfg_file] if isinstance(cfg_file, str) else list(cfg_file)
    common = [a for f in files for a in ("--cfg", f)] + ["--set"] + sets
    cfg = load_config(files, sets)
    times, ran = {}, []

    def run_group(steps, later_sets=()):
        """The steps (cores/pipeline.py) that an earlier run of the benchmark did not finish
        (a marker each): an interrupted benchmark continues where it stopped.
        ``collect_only``: none, the results of those that finished are collected."""
        if collect_only:
            steps = [s for s in steps if os.path.isfile(pipeline.marker(work, s.key))]
        done, now = pipeline.run_steps(steps, common, lambda step, args: _run(args, log),
                                       markers=work, later=later_sets)
        times.update(done)
        ran.extend(now)

    run_group(pipeline.training_steps(cfg, dataset_args(work, spec), segmentation=False)
              + [pipeline.Step("baselines", "baselines",
                               ["tools/baselines.py", "--out",
                                os.path.join(work, "baselines.json")])])
    chosen = [row(n) for n in rows]
    for r in chosen:
        for steps, later in row_steps(work, r, cfg, fit and r.method.name == "supervised"):
            run_group(steps, later)
        if extras and r.name in (SEC_ROW, BOUND_ROW):
            for steps, later in extra_steps(work, r, cfg):
                run_group(steps, later)
    return dict(collect(work, cfg, spec, times, chosen), stages_run=ran)


# what a cue recipe does not change: the data, the pretrained backbone and the bound (SEC's
# MIRROR, not MIRROR_CUES, governs it)
SHARED = ["data", "dataset", "models", "snapshots/pretrain_*", "snapshots/supervised_*",
          "outputs/supervised_*", "outputs_crf_flip_former_test_time/supervised_*",
          ".done_create_dataset", ".done_pretrain", ".done_bound_*"]


def reuse(source, work):
    """Hard-link into a fresh ``work`` what a cue-recipe comparison shares with ``source``,
    so that only the cue stages, SEC and their evaluations run again."""
    if os.path.isfile(os.path.join(work, ".done_create_dataset")):
        return
    if not os.path.isfile(pipeline.marker(source, "%s train" % BOUND_ROW)):
        raise RuntimeError("%s: no finished bound to reuse" % source)
    for pattern in SHARED:
        for path in glob.glob(os.path.join(source, pattern)):
            target = os.path.join(work, os.path.relpath(path, source))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.isdir(path):
                shutil.copytree(path, target, copy_function=os.link)
            else:
                os.link(path, target)


def _metrics(cfg, method, flip, crf, int8=False):
    from cores.metrics import stage_metrics
    return (stage_metrics(cfg, method, flip, crf, int8) or {}).get("mIoU")


def row_results(work, cfg, r):
    """A row's mIoU: plain, --crf --flip, multi-scale --crf --flip; its pseudo-masks' mIoU on
    the training images (a row on pseudo-masks); its fit of its own training images; its
    extras where they ran."""
    folders = row_folders(work, r)
    rcfg = type(cfg)(cfg, SNAPSHOT_PATH=folders["SNAPSHOT_PATH"],
                     OUTPUT_PATH=folders["OUTPUT_PATH"])
    ms = type(rcfg)(rcfg, TEST_SCALES=[float(v) for v in MS.split(",")])
    out = {"plain": _metrics(rcfg, r.method, False, False),
           "crf_flip": _metrics(rcfg, r.method, True, True),
           "crf_flip_ms": _metrics(ms, r.method, True, True)}
    for key, path in (("pseudo_masks_train", folders["PSEUDO_MASK_PATH"]),
                      ("train_fit", fit_folder(work, r))):
        if key == "train_fit" or r.source:
            found = stages.metrics_path(path)
            out[key] = _json(found)["mIoU"] if os.path.isfile(found) else None
    if r.name in (SEC_ROW, BOUND_ROW):
        former = type(rcfg)(rcfg, OUTPUT_PATH=os.path.join(work, "outputs_crf_flip_former_"
                                                                  "test_time"))
        out["crf_flip_former_test_time"] = _metrics(former, r.method, True, True)
        out["int8"] = _metrics(rcfg, r.method, False, False, True)
        out["crf_flip_int8"] = _metrics(rcfg, r.method, True, True, True)
    return out


def collect(work, cfg, spec, times, rows=()):
    base = _json(os.path.join(work, "baselines.json"))
    fg = _json(stages.cue_report_path(cfg, "fg"))
    bg = _json(stages.cue_report_path(cfg, "bg"))

    def fg_coverage(report):
        found = [r for n, r in report["classes"].items() if n != "background"
                 and r["coverage"] is not None]
        return sum(r["coverage"] for r in found) / len(found) if found else None

    pre = stages.classification_path(cfg, stages.PRETRAIN)
    out = {
        "variant": spec["name"], "classes": spec["classes"], "base_net": cfg.BASE_NET,
        "style": spec.get("style", "flat"), "held_out": spec["name"] in variants.HELD_OUT,
        "backbone_mAP": _json(pre)["mAP"] if os.path.isfile(pre) else None,
        "saliency_mAP": _json(stages.classification_path(cfg, stages.SALIENCY))["mAP"],
        "cam_mAP": _json(stages.classification_path(cfg, stages.CAM))["mAP"],
        "fg_precision": fg["fg_precision"], "fg_coverage": fg_coverage(fg),
        "bg_precision": bg["bg_precision"],
        "bg_coverage": bg["classes"]["background"]["coverage"],
        "all_background": base["all_background"]["mIoU"], "cues": base["cues"]["mIoU"],
        "rows": {r.name: row_results(work, cfg, r) for r in rows}, "seconds": times,
    }
    flat = flat_row(out)
    if flat.get(SEC_ROW) is not None and flat.get(BOUND_ROW):
        out["ratio"] = flat[SEC_ROW] / flat[BOUND_ROW]
        out["gain_over_cues"] = flat[SEC_ROW] - out["cues"]
        out["meets"] = bool(flat[SEC_ROW] >= ACCEPT["miou"] and out["ratio"] >= ACCEPT["ratio"]
                            and out["gain_over_cues"] >= ACCEPT["gain"])
    return out


# the acceptance of the quality benchmark: SEC --crf --flip >= 0.60 mIoU, >= 75 % of the
# bound, >= 0.05 above the cues alone
ACCEPT = dict(miou=0.60, ratio=0.75, gain=0.05)

# results recorded before the rows were the registry's: their keys for SEC's and the bound's
LEGACY = {SEC_ROW: {"plain": "sec", "crf_flip": "sec_crf_flip", "crf_flip_ms": "sec_crf_flip_ms"},
          BOUND_ROW: {"plain": "supervised", "crf_flip": "supervised_crf_flip",
                      "crf_flip_ms": "supervised_crf_flip_ms", "train_fit": "supervised_train"},
          "bound 2x": {"plain": "supervised_2x_iterations",
                       "crf_flip": "supervised_crf_flip_2x_iterations",
                       "train_fit": "supervised_train_2x_iterations"}}


def results_of(result):
    """{row name: {measure: mIoU}} of a variant's result, in either layout: ``rows`` (this
    benchmark) or the earlier one (SEC's and the bound's keys, ``methods``)."""
    if "rows" in result:
        return result["rows"]
    out = {name: {m: result.get(key) for m, key in keys.items()}
           for name, keys in LEGACY.items() if result.get(keys["crf_flip"]) is not None}
    for name, m in result.get("methods", {}).items():
        out[name] = {"plain": m.get("plain"), "crf_flip": m.get("crf_flip"),
                     "crf_flip_ms": m.get("crf_flip_ms"),
                     "pseudo_masks_train": m.get("pseudo_masks_train")}
    return out


def flat_row(result):
    """A variant's result with each row's measures as keys: NAME (--crf --flip), NAME plain,
    NAME ms, NAME masks (pseudo-masks on train), NAME fit (its fit of train)."""
    flat = dict(result)
    for name, m in results_of(result).items():
        flat[name] = m.get("crf_flip")
        flat[name + " plain"] = m.get("plain")
        flat[name + " ms"] = m.get("crf_flip_ms")
        flat[name + " masks"] = m.get("pseudo_masks_train")
        flat[name + " fit"] = m.get("train_fit")
    return flat


BARS = [("all-bg", "all_background"), ("cues", "cues"), ("SEC", "SEC plain"),
        ("SEC --crf --flip", SEC_ROW), ("bound", "bound plain"),
        ("bound --crf --flip", BOUND_ROW)]


def chart(path, rows):
    """The main table as grouped bars: val mIoU per variant."""
    from cores.figures import grouped_bars
    flat = [flat_row(r) for r in rows]
    grouped_bars(path, ["%s%s\n(%s)" % (r["variant"], " *" if r["held_out"] else "",
                                        r["base_net"]) for r in flat],
                 [name for name, _ in BARS], [[r.get(key) for _, key in BARS] for r in flat],
                 "val mIoU", "quality benchmark (* held out of tuning)")


# the result.md of a run: the main table, then every row's mIoU in tables of at most ten columns
SHORT = [("variant", "variant", "%s"), ("net", "base_net", "%s"), ("held out", "held_out", "%s"),
         ("cues alone", "cues", "%.3f"), ("SEC", "SEC plain", "%.3f"),
         ("SEC --crf --flip", SEC_ROW, "%.3f"), ("bound --crf --flip", BOUND_ROW, "%.3f"),
         ("ratio", "ratio", "%.2f"), ("meets", "meets", "%s"), ("minutes", "minutes", "%s")]
CUES = [("variant", "variant", "%s"), ("backbone mAP", "backbone_mAP", "%.3f"),
        ("CAM mAP", "cam_mAP", "%.3f"), ("saliency mAP", "saliency_mAP", "%.3f"),
        ("fg precision", "fg_precision", "%.3f"), ("fg coverage", "fg_coverage", "%.3f"),
        ("bg precision", "bg_precision", "%.3f"), ("all background", "all_background", "%.3f"),
        ("cues alone", "cues", "%.3f")]
SUFFIXES = [("", "val mIoU --crf --flip"), (" ms", "multi-scale (%s) --crf --flip" % MS),
            (" plain", "plain"), (" masks", "the pseudo-masks' mIoU on the training images"),
            (" fit", "plain mIoU on its own training images")]


def row_tables(results):
    """[(title, columns)] of the rows' tables: per measure (SUFFIXES) the rows that have it,
    nine to a table beside the variant."""
    flat = [flat_row(r) for r in results]
    names = []
    for r in results:
        names += [n for n in results_of(r) if n not in names]
    order = {n: i for i, n in enumerate(ROW_NAMES)}
    names.sort(key=lambda n: (order.get(n.replace(SEED_SUFFIX, ""), len(order)),
                              n.endswith(SEED_SUFFIX)))
    tables = []
    for suffix, title in SUFFIXES:
        have = [n for n in names if any(f.get(n + suffix) is not None for f in flat)]
        for start in range(0, len(have), 9):
            tables.append((title, [("variant", "variant", "%s")] + [
                (n, n + suffix, "%.3f") for n in have[start:start + 9]]))
    return tables


def markdown(results):
    from bench.provenance import markdown_table
    flat = [flat_row(r) for r in results]
    text = markdown_table(flat, SHORT) + "\n\ncue networks and cues\n\n" + markdown_table(
        flat, CUES) + "\n"
    for title, columns in row_tables(results):
        text += "\n%s\n\n%s\n" % (title, markdown_table(flat, columns))
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help="comma-separated names from datagen/variants.py VARIANTS")
    parser.add_argument("--cfg", action="append", default=None, metavar="FILE.yaml",
                        help="the recipe (YAML; repeatable, later files win; default "
                             "demo/toy.yaml, the scenes' demo/toy.yaml and bench/scenes.yaml)")
    parser.add_argument("--set", nargs="+", default=[], action="extend",
                        help="extra KEY=VALUE overrides for every stage")
    parser.add_argument("--root", default="quality_run",
                        help="folder of every output (ignored by git)")
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="also copy the result to bench/results/quality/NAME/ (committed "
                             "results: see bench/README.md)")
    parser.add_argument("--tag", default="", help="suffix of the variants' folders")
    parser.add_argument("--methods", default="%s,%s" % (SEC_ROW, BOUND_ROW),
                        help="comma-separated rows (%s) or 'all'; any row + %r is its second "
                             "seed, the bound + ' Nx' the bound at N times its iterations"
                             % (", ".join(ROW_NAMES), SEED_SUFFIX))
    parser.add_argument("--fit", action="store_true",
                        help="the bound's rows also label their own training images")
    parser.add_argument("--extras", action="store_true",
                        help="SEC and the bound also at the former test time and in INT8")
    parser.add_argument("--collect-only", action="store_true",
                        help="run nothing: collect the results of the steps that finished "
                             "(another run may still be adding to them)")
    parser.add_argument("--reuse-from", default=None, metavar="SUFFIX",
                        help="start each variant from the folder VARIANT+SUFFIX of ROOT "
                             "('' for the untagged one): its data, backbone and bound are "
                             "reused, the cue stages and SEC run (a cue recipe's comparison)")
    args = parser.parse_args()
    rows = method_list(args.methods)
    results, failed = [], {}
    for name in args.variants.split(","):
        cfg_files = args.cfg or recipe(name)
        work = variant_folder(args.root, name, args.tag)
        tic = time.time()
        print("=== %s (%s)" % (name, work), flush=True)
        try:
            if args.reuse_from is not None:
                reuse(os.path.abspath(os.path.join(args.root, name + args.reuse_from)), work)
            result = run_variant(name, work, cfg_files, args.set, rows, args.fit,
                                 args.extras, args.collect_only)
        except RuntimeError as e:
            failed[name] = str(e)
            print("FAILED %s\n%s" % (name, e), flush=True)
            continue
        # every step's own time, read back from its marker when an earlier run made it
        result["minutes"] = round(sum(result["seconds"].values()) / 60, 1)
        result["wall_minutes"] = round((time.time() - tic) / 60, 1)
        results.append(result)
        print(markdown([result]), flush=True)
        with open(os.path.join(work, "quality.json"), "w") as f:
            json.dump(result, f, indent=1)
    os.makedirs(args.root, exist_ok=True)
    out = os.path.join(args.root, tagged("quality", args.tag))
    from bench.provenance import provenance, record
    with open(out + ".json", "w") as f:
        json.dump({"rows": results, "failed": failed, "cfg": args.cfg or "recipe(variant)",
                   "set": args.set,
                   "methods": rows, "provenance": provenance()}, f, indent=1)
    with open(out + ".md", "w") as f:
        f.write(markdown(results))
    if results:
        chart(out + ".png", results)
    if args.record:
        print("recorded in %s" % record("quality", args.record, out))
    if failed:
        print("failed: %s" % ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
