"""Which method helps where: the committed methods benchmarks (bench/results/quality/
scenes_methods*, photo_methods*, flat_methods*, each a `quality.py --methods all` run) summed
up per family of variants (scenes with VOC's failure modes, photographic, flat colours),
against SEC and its seed-to-seed scatter. The rows are the benchmark's (bench/quality.py: the
registry of cores/methods/).

For each method and family: the median over the family's variants of its val mIoU --crf --flip,
that median less SEC's, and on how many variants the method is above SEC, within the scatter
on that variant or below it. The scatter is SEC's |SEC - SEC seed 1|, or the method's own
|M - M seed 1| where a second seed of it was trained and that is larger. Then SEC's share of
the bound per family, also against each variant's best bound over the schedules measured
('bound Nx'; one trained with two seeds counts as their mean). Reads committed results
only, so the tables in docs/benchmarks.md are the ones this prints (tests/test_docs.py checks
them).

  python bench/methods_summary.py"""
import glob
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from datagen import variants  # noqa: E402
from bench.provenance import markdown_table  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "quality")
RUNS = ("scenes_methods", "photo_methods", "flat_methods")
STYLES = {"scenes": "scenes", "photo": "photographic", "flat": "flat"}
FAMILIES = ["scenes", "photographic", "flat"]
COLUMNS = [("method", "method", "%s")] + [
    col for fam in FAMILIES for col in (
        ("%s median" % fam, fam + "_median", "%.3f"), ("vs SEC", fam + "_delta", "%+.3f"),
        ("above / within / below", fam + "_counts", "%s"))]


def family(variant):
    """The family of a variant of datagen/variants.py: its generator style."""
    return STYLES[variants.variant(variant).get("style", "flat")]


def entries():
    """(title, flat key) of the summary's rows: every row of the benchmark (SEC's second seed
    after SEC), then each one multi-scale."""
    quality = _quality()
    names = list(quality.ROW_NAMES)
    names.insert(names.index(quality.SEC_ROW) + 1, quality.SEC_ROW + quality.SEED_SUFFIX)
    return [(n, n) for n in names] + [(n + " ms", n + " ms") for n in quality.ROW_NAMES]


def variant_rows(folder=RESULTS):
    """{variant: flat row} of the methods runs (one per variant: a variant measured by two
    runs is an error, not a silent choice)."""
    quality = _quality()
    rows = {}
    for path in sorted(glob.glob(os.path.join(folder, "*", "result.json"))):
        name = os.path.basename(os.path.dirname(path))
        if not name.startswith(RUNS):
            continue
        with open(path) as f:
            for row in map(quality.flat_row, json.load(f)["rows"]):
                if row["variant"] in rows:
                    raise ValueError("%s: variant %s is in two methods runs"
                                     % (path, row["variant"]))
                rows[row["variant"]] = row
    return rows


def summary(rows):
    """One row per method: per family its median --crf --flip mIoU, the median less SEC's, and
    'above / within / below' SEC counted over the variants against each variant's scatter."""
    out = []
    sec = _quality().SEC_ROW
    for title, key in entries():
        entry = {"method": title}
        for fam in FAMILIES:
            members = [r for v, r in sorted(rows.items()) if family(v) == fam
                       and r.get(key) is not None]
            if not members:
                continue
            median = statistics.median(r[key] for r in members)
            counts = [0, 0, 0]
            for r in members:
                diff = r[key] - r[sec]
                scatter = scatter_of(r, key)
                counts[0 if diff > scatter else 2 if diff < -scatter else 1] += 1
            entry.update({fam + "_median": median, fam + "_delta": median - statistics.median(
                r[sec] for r in members), fam + "_counts": "%d / %d / %d" % tuple(counts)})
        if len(entry) > 1:
            out.append(entry)
    return out


RATIO_COLUMNS = [("family", "family", "%s"), ("variants", "variants", "%d"),
                 ("SEC median", "sec", "%.3f"), ("bound median", "bound", "%.3f"),
                 ("SEC / bound, median", "ratio", "%.2f"), ("range", "range", "%s"),
                 ("best bound median (at)", "best", "%s"),
                 ("SEC / best bound, median", "ratio_best", "%.2f"),
                 ("its range", "range_best", "%s"), ("converged", "converged", "%s")]


def ratios(rows):
    """SEC --crf --flip as a share of the bound --crf --flip, per family: the medians and the
    range over its variants (the paper: 50.7 against DeepLab-LargeFOV's 62-68 on VOC val,
    0.75-0.81); then the same against each variant's best bound over the schedules measured
    ('bound Nx': N x its iterations, two seeds' mean where both were trained; picked on val,
    so the share is if anything too low), and on how many variants the longest schedule is
    converged by the 0.01 measure."""
    quality = _quality()
    out = []
    for fam in FAMILIES:
        members = [r for v, r in sorted(rows.items()) if family(v) == fam]
        if not members:
            continue
        shares = [r[quality.SEC_ROW] / r[quality.BOUND_ROW] for r in members]
        schedules = [quality.bound_schedules(r) for r in members]
        best = [max(s, key=lambda nb: nb[1]) for s in schedules]
        best_shares = [r[quality.SEC_ROW] / b for r, (_, b) in zip(members, best)]
        at = sorted({n for n, _ in best})
        out.append({"family": fam, "variants": len(members),
                    "sec": statistics.median(r[quality.SEC_ROW] for r in members),
                    "bound": statistics.median(r[quality.BOUND_ROW] for r in members),
                    "ratio": statistics.median(shares),
                    "range": "%.2f-%.2f" % (min(shares), max(shares)),
                    "best": "%.3f (%s)" % (statistics.median(b for _, b in best), "-".join(
                        "%gx" % n for n in sorted({at[0], at[-1]}))),
                    "ratio_best": statistics.median(best_shares),
                    "range_best": "%.2f-%.2f" % (min(best_shares), max(best_shares)),
                    "converged": "%d / %d" % (sum(bool(quality.converged(s))
                                                  for s in schedules), len(members))})
    return out


def scatter_of(row, key):
    """The seed-to-seed scatter a difference to SEC must exceed on one variant: SEC's, or the
    row's own second seed's where one was trained and it is larger."""
    quality = _quality()
    scatter = abs(row[quality.SEC_ROW] - row[quality.SEC_ROW + quality.SEED_SUFFIX])
    own = row.get(key.replace(" ms", "") + quality.SEED_SUFFIX) if not key.endswith(
        quality.SEED_SUFFIX) else None
    base = row.get(key.replace(" ms", ""))
    return max(scatter, abs(base - own)) if own is not None and base is not None else scatter


def variants_line(rows):
    """The variants of each family with SEC's scatter on each: the sentence under the table."""
    quality = _quality()
    sec, seed = quality.SEC_ROW, quality.SEC_ROW + quality.SEED_SUFFIX
    parts = []
    for fam in FAMILIES:
        names = ["%s%s %.3f" % (v, " (held out)" if r.get("held_out") else "",
                                 abs(r[sec] - r[seed]))
                 for v, r in sorted(rows.items()) if family(v) == fam]
        if names:
            parts.append("%s: %s" % (fam, ", ".join(names)))
    return "Variants and SEC's seed-to-seed scatter on each: " + "; ".join(parts) + "."


def _quality():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import quality
    return quality


def main():
    rows = variant_rows()
    print(markdown_table(summary(rows), COLUMNS))
    print("\n" + variants_line(rows))
    print("\n" + markdown_table(ratios(rows), RATIO_COLUMNS))


if __name__ == "__main__":
    main()
