"""The generated scenes against real data: the statistics of the SEC authors' localization cues
for the 10,582 VOC train_aug images (../shared/sec_original) beside those of this project's cue
stages on generated variants, per image: the share of the score grid that is foreground cue,
background cue and unlabelled, the foreground cue cells of each present class (as a share of the
grid: VOC's grid is 41x41, the toy recipe's 16x16) and the classes in the image. For scenes
(datagen/scenes.py) also where the foreground cues fall: on a class's own part, on the body it
shares with other classes, or off the object.

    python bench/calibration.py --variants scenes5,scenes8 [--record calibration]
    python bench/calibration.py --variants scenes5 --set WIDTH_MULT=0.25 --tag w25

Each variant runs the pipeline as bench/quality.py does, in the same folders (ROOT/VARIANT, or
ROOT/VARIANT_TAG with --tag), up to the foreground cues: a later quality run continues from
there. Writes ROOT/calibration[_TAG].json, .md (medians, relative differences to VOC's) and
.png (histograms).
"""
import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import quality  # noqa: E402
from cores import pipeline, stages  # noqa: E402
from datagen import toy, variants  # noqa: E402

ORIGINAL = os.path.join(ROOT, "..", "shared", "sec_original")
# per-image quantities, and what the medians of tuned variants must match (relative)
QUANTITIES = [("fg", "foreground cue share of the grid"),
              ("bg", "background cue share of the grid"),
              ("unlabelled", "unlabelled share of the grid"),
              ("fg_per_class", "foreground cue cells per present class, share of the grid"),
              ("classes", "classes per image")]
TOLERANCE = 0.2
CUE_STEPS = ("create_dataset", "pretrain", "bg_cues", "fg_cues")


def cue_statistics(cue_set, size, labels):
    """{quantity: array} of merged cues ({id: (3, M)} rows class, y, x, one label per cell) on
    a size x size grid; ``labels`` {id: foreground classes of the image}. ``fg_per_class`` has
    one value per (image, present class), the others one per image."""
    cells = float(size * size)
    out = {name: [] for name, _ in QUANTITIES}
    for image_id, classes in labels.items():
        cue = np.asarray(cue_set[image_id])
        fg, bg = int((cue[0] > 0).sum()), int((cue[0] == 0).sum())
        out["fg"].append(fg / cells)
        out["bg"].append(bg / cells)
        out["unlabelled"].append(1 - (fg + bg) / cells)
        out["classes"].append(len(classes))
        out["fg_per_class"] += [int((cue[0] == c).sum()) / cells for c in classes]
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def medians(stats):
    return {k: float(np.median(v)) for k, v in stats.items()}


def voc_statistics(folder=ORIGINAL):
    """The statistics of the authors' cues (SEC_SPEC section 3), or None without them."""
    from cores.original_cues import read_input_list, restricted_load
    pickle_path = os.path.join(folder, "localization_cues.pickle.gz")
    if not os.path.isfile(pickle_path):
        return None
    table = restricted_load(pickle_path)
    names = read_input_list(os.path.join(folder, "input_list.txt"))
    cue_set = {n: np.asarray(table["%d_cues" % i]).reshape(3, -1) for i, n in names.items()}
    labels = {n: [int(c) for c in np.asarray(table["%d_labels" % i]).ravel()]
              for i, n in names.items()}
    return cue_statistics(cue_set, 41, labels)


def part_statistics(cue_set, size, entries, data_root):
    """Where the foreground cues of scenes fall, pooled over the training images: the share of
    the objects' own-part cells and of their shared-body cells that their class's cue covers,
    and the share of foreground cue cells off every object (on the background, e.g. its
    context), and the foreground cues' precision. None for variants without part maps."""
    from cores.data.dataset import read_mask
    from cores.grid import grid_mask
    folder = os.path.join(data_root, "parts")
    if not os.path.isdir(folder):
        return None
    counts = np.zeros(6, np.int64)   # own cells, own covered, shared, shared covered, fg, off
    right = 0
    for entry in entries:
        path = os.path.join(folder, entry["id"] + ".png")
        if not entry.get("mask") or not os.path.isfile(path):
            continue
        parts = grid_mask(read_mask(path), size)
        mask = grid_mask(read_mask(entry["mask"]), size)
        cue = np.full((size, size), -1)
        sparse = np.asarray(cue_set[entry["id"]])
        cue[sparse[1], sparse[2]] = sparse[0]
        for c in entry["labels"]:
            own, shared = (mask == c) & (parts == 1), (mask == c) & (parts == 2)
            counts[:4] += [own.sum(), (own & (cue == c)).sum(), shared.sum(),
                           (shared & (cue == c)).sum()]
        fg = cue > 0
        counts[4:] += [fg.sum(), (fg & (mask == 0)).sum()]
        right += int((fg & (cue == mask)).sum())

    def share(a, b):
        return float(a / b) if b else None
    return {"own_part_covered": share(counts[1], counts[0]),
            "shared_part_covered": share(counts[3], counts[2]),
            "fg_cues_off_objects": share(counts[5], counts[4]),
            "fg_precision": share(right, counts[4])}


def variant_statistics(name, root, cfg_files, extra_sets, tag=""):
    """Run ``name``'s pipeline up to its foreground cues in ROOT/name[_tag] (bench/quality.py's
    folders and markers) and return (stats, part statistics, grid size)."""
    from cores import cues
    from cores.config import load_config
    from cores.data.dataset import load_index
    from cores.methods.base import training_cues
    spec = variants.variant(name)
    work = quality.variant_folder(root, name, tag)
    data = os.path.join(work, "data")
    if not os.path.isfile(os.path.join(data, "variant.json")):
        toy.make_dataset(data, spec)
    sets = quality.variant_config(work, spec) + list(extra_sets)
    cfg_files = cfg_files or quality.recipe(name)
    cfg = load_config(cfg_files, sets)
    steps = [s for s in pipeline.training_steps(cfg, quality.dataset_args(work, spec))
             if s.key in CUE_STEPS]
    log = os.path.join(work, "run.log")
    pipeline.run_steps(steps, [a for f in cfg_files for a in ("--cfg", f)] + ["--set"] + sets,
                       lambda step, args: quality._run(args, log), markers=work)
    _, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    cue_set, size = training_cues(cfg)
    cues.check_classes(cue_set, cfg.CLASS_NUM, stages.cue_path(cfg, stages.MERGED))
    labels = {e["id"]: [int(c) for c in e["labels"]] for e in train}
    return cue_statistics(cue_set, size, labels), part_statistics(cue_set, size, train, data), \
        size


def relative(value, reference):
    return (value - reference) / reference if reference else None


def rows_of(voc, results):
    """One row per quantity: VOC's median and each variant's with its relative difference."""
    rows = []
    for key, title in QUANTITIES:
        row = {"quantity": key, "title": title, "voc": float(np.median(voc[key]))}
        for name, (stats, _, _) in results.items():
            value = float(np.median(stats[key]))
            row[name] = value
            row[name + " rel"] = relative(value, row["voc"])
        rows.append(row)
    return rows


def figure(path, voc, results):
    """Histograms of each quantity: VOC's cues beside every variant's (density)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [k for k, _ in QUANTITIES]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4))
    for ax, (key, title) in zip(axes, QUANTITIES):
        series = [("VOC (authors' cues)", voc[key])] + [(n, s[key])
                                                        for n, (s, _, _) in results.items()]
        if key == "classes":
            width = 0.8 / len(series)
            for k, (label, values) in enumerate(series):
                counts = np.bincount(values.astype(int), minlength=6)[1:6]
                ax.bar(np.arange(1, 6) + (k - (len(series) - 1) / 2) * width,
                       counts / max(1, counts.sum()), width, label=label)
            ax.set_xticks(range(1, 6))
        else:
            bins = np.linspace(0, 1 if key != "fg_per_class" else 0.5, 26)
            for label, values in series:
                ax.hist(values, bins=bins, histtype="step", density=True, linewidth=1.5,
                        label=label)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(rows, results, parts):
    names = list(results)
    lines = ["| quantity (median per image) | VOC | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for row in rows:
        cells = ["%.3f (%+.0f %%)" % (row[n], 100 * row[n + " rel"])
                 if row[n + " rel"] is not None else "%.3f" % row[n] for n in names]
        lines.append("| %s | %.3f | %s |" % (row["title"], row["voc"], " | ".join(cells)))
    held = [n for n in names if n in variants.HELD_OUT]
    lines += ["", "held out (reported, never tuned on): %s" % (", ".join(held) or "none"),
              "tuned on: %s" % (", ".join(n for n in names if n not in held) or "none")]
    shown = [n for n in names if parts.get(n)]
    if shown:
        lines += ["", "| where the foreground cues fall (all training images) | "
                  + " | ".join(shown) + " |", "|---|" + "---:|" * len(shown)]
        for key, title in (("own_part_covered", "own part covered by its class's cue"),
                           ("shared_part_covered", "shared body covered by its class's cue"),
                           ("fg_cues_off_objects", "foreground cue cells off every object"),
                           ("fg_precision", "foreground cue precision")):
            lines.append("| %s | %s |" % (title, " | ".join(
                "-" if parts[n][key] is None else "%.3f" % parts[n][key] for n in shown)))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="scenes5,scenes8")
    parser.add_argument("--cfg", action="append", default=None, metavar="FILE.yaml",
                        help="the recipe (default: bench/quality.py's for the variant)")
    parser.add_argument("--set", nargs="+", default=[], action="extend")
    parser.add_argument("--root", default="quality_run")
    parser.add_argument("--tag", default="",
                        help="suffix of the variants' folders, as bench/quality.py's --tag")
    parser.add_argument("--original", default=ORIGINAL,
                        help="folder of localization_cues.pickle.gz and input_list.txt")
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="also copy the result to bench/results/quality/NAME/")
    args = parser.parse_args()
    voc = voc_statistics(args.original)
    if voc is None:
        parser.exit(1, "error: no authors' cues in %s\n" % args.original)
    results, parts = {}, {}
    for name in [n for n in args.variants.split(",") if n]:
        print("=== %s" % name, flush=True)
        stats, part, size = variant_statistics(name, args.root, args.cfg, args.set, args.tag)
        results[name] = (stats, part, size)
        parts[name] = part
    rows = rows_of(voc, results)
    from bench.provenance import provenance, record
    out = os.path.join(args.root, quality.tagged("calibration", args.tag))
    os.makedirs(args.root, exist_ok=True)
    tuned = [n for n in results if n not in variants.HELD_OUT]
    payload = {"rows": rows, "parts": parts, "grids": {n: r[2] for n, r in results.items()},
               "tolerance": TOLERANCE, "tuned": tuned,
               "held_out": [n for n in results if n in variants.HELD_OUT],
               "within_tolerance": {n: all(abs(r[n + " rel"]) <= TOLERANCE for r in rows
                                           if r[n + " rel"] is not None) for n in results},
               "voc_images": int(len(voc["fg"])), "cfg": args.cfg or "recipe(variant)",
               "set": args.set, "tag": args.tag,
               "provenance": provenance()}
    with open(out + ".json", "w") as f:
        json.dump(payload, f, indent=1)
    text = markdown(rows, results, parts)
    with open(out + ".md", "w") as f:
        f.write(text)
    figure(out + ".png", voc, results)
    print(text)
    if args.record:
        print("recorded in %s" % record("quality", args.record, out))


if __name__ == "__main__":
    main()
