"""Which method helps where: the committed methods benchmarks (bench/results/quality/
photo_methods*, flat_methods*, each a `quality.py --methods all` run) summed up per family of
variants (photographic, flat colours), against SEC and its seed-to-seed scatter.

For each method and family: the median over the family's variants of its val mIoU --crf --flip,
that median less SEC's, and on how many variants the method is above SEC, within the scatter
on that variant or below it. The scatter is SEC's |SEC - SEC seed 1|, or the method's own
|M - M seed 1| where a second seed of it was trained and that is larger. Reads committed
results only, so the table in docs/benchmarks.md is the one this prints (tests/test_docs.py
checks it).

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
FAMILIES = ["photographic", "flat"]
# (row title, key in quality.method_rows' flat rows)
ENTRIES = [("SEC", "sec_crf_flip"), ("SEC seed 1", "SEC seed 1"), ("S", "S"), ("SE", "SE"),
           ("SC", "SC"), ("DSRG", "DSRG"), ("DSRG, SEC's lr", "DSRG-SEC-lr"),
           ("SEC+RT", "SEC+RT"), ("DSRG+RT", "DSRG+RT"), ("SEC ms", "sec_crf_flip_ms"),
           ("DSRG ms", "DSRG ms"), ("SEC+RT ms", "SEC+RT ms"), ("DSRG+RT ms", "DSRG+RT ms"),
           ("bound", "supervised_crf_flip")]
# a method's own second seed, where quality.py trains one
OWN_SEED = {"DSRG": "DSRG seed 1", "DSRG-SEC-lr": "DSRG-SEC-lr seed 1",
            "SEC+RT": "SEC+RT seed 1", "supervised_crf_flip": "bound seed 1"}
COLUMNS = [("method", "method", "%s")] + [
    col for fam in FAMILIES for col in (
        ("%s median" % fam, fam + "_median", "%.3f"), ("vs SEC", fam + "_delta", "%+.3f"),
        ("above / within / below", fam + "_counts", "%s"))]


def family(variant):
    """'photographic' or 'flat': the generator style of a variant of datagen/variants.py."""
    return "photographic" if variants.variant(variant).get("style") == "photo" else "flat"


def variant_rows(folder=RESULTS):
    """{variant: flat row} of the methods runs (one per variant: a variant measured by two
    runs is an error, not a silent choice)."""
    quality = _quality()
    rows = {}
    for path in sorted(glob.glob(os.path.join(folder, "*", "result.json"))):
        name = os.path.basename(os.path.dirname(path))
        if not name.startswith(("photo_methods", "flat_methods")):
            continue
        with open(path) as f:
            for row in quality.method_rows(json.load(f)["rows"]):
                if row["variant"] in rows:
                    raise ValueError("%s: variant %s is in two methods runs"
                                     % (path, row["variant"]))
                rows[row["variant"]] = row
    return rows


def summary(rows):
    """One row per method: per family its median --crf --flip mIoU, the median less SEC's, and
    'above / within / below' SEC counted over the variants against each variant's scatter."""
    out = []
    for title, key in ENTRIES:
        entry = {"method": title}
        for fam in FAMILIES:
            members = [r for v, r in sorted(rows.items()) if family(v) == fam
                       and r.get(key) is not None]
            if not members:
                continue
            median = statistics.median(r[key] for r in members)
            sec = statistics.median(r["sec_crf_flip"] for r in members)
            counts = [0, 0, 0]
            for r in members:
                diff = r[key] - r["sec_crf_flip"]
                scatter = scatter_of(r, key)
                counts[0 if diff > scatter else 2 if diff < -scatter else 1] += 1
            entry.update({fam + "_median": median, fam + "_delta": median - sec,
                          fam + "_counts": "%d / %d / %d" % tuple(counts)})
        out.append(entry)
    return out


def scatter_of(row, key):
    """The seed-to-seed scatter a difference to SEC must exceed on one variant."""
    scatter = abs(row["sec_crf_flip"] - row["SEC seed 1"])
    own = row.get(OWN_SEED.get(key))
    return max(scatter, abs(row[key] - own)) if own is not None else scatter


def variants_line(rows):
    """The variants of each family with SEC's scatter on each: the sentence under the table."""
    parts = []
    for fam in FAMILIES:
        names = ["%s%s %.3f" % (v, " (held out)" if r.get("held_out") else "",
                                 abs(r["sec_crf_flip"] - r["SEC seed 1"]))
                 for v, r in sorted(rows.items()) if family(v) == fam]
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


if __name__ == "__main__":
    main()
