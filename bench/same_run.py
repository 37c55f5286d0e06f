"""Behaviour unchanged? Two finished demos (demo/run_demo.py --root DIR), typically of two
commits on one machine with the same --set, compared file by file: the demo's table (every
row's mIoU and per-class IoU, equal to the bit), every array of every snapshot, optimizer
state and pretrained backbone (the embedded config aside, which records the run's own paths)
and every cue file. Writes OUT.json/.md with the provenance; exits 1 when anything differs.

    python bench/same_run.py --old /tmp/demo_old --new /tmp/demo_new \\
        --label old=a5c090a --label new=HEAD [--record restructuring_demo]"""
import argparse
import glob
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.provenance import markdown_table, provenance, record  # noqa: E402

META = "meta:"            # snapshot entries that describe the run rather than the network


def _arrays(path):
    """{name: numpy array} of a .params (MXNet) or .npz file."""
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    import mxnet as mx
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items() if not k.startswith(META)}


def compare_files(old_root, new_root):
    """[(relative path, verdict)] of the snapshots and cue files of both runs: 'equal', 'only
    old', 'only new', or the names of the arrays that differ."""
    found = set()
    for root in (old_root, new_root):
        for pattern in ("snapshots/*.params", "cache/*.npz", "models/*.params"):
            found.update(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, pattern)))
    out = []
    for rel in sorted(found):
        old, new = os.path.join(old_root, rel), os.path.join(new_root, rel)
        if not os.path.isfile(new):
            out.append((rel, "only old"))
            continue
        if not os.path.isfile(old):
            out.append((rel, "only new"))
            continue
        a, b = _arrays(old), _arrays(new)
        differ = sorted(k for k in set(a) | set(b)
                        if k not in a or k not in b or a[k].shape != b[k].shape
                        or not np.array_equal(a[k], b[k]))
        out.append((rel, "equal" if not differ else "differs: " + ", ".join(differ[:5])))
    return out


def compare_tables(old_root, new_root):
    """[{row, old, new, equal}] of the demo's table (OUTPUT_PATH/demo_summary.json): equal
    when the mIoU and every class's IoU are the same numbers."""
    tables = []
    for root in (old_root, new_root):
        with open(os.path.join(root, "outputs", "demo_summary.json")) as f:
            tables.append({k: v for k, v in json.load(f).items() if k != "seconds"})
    old, new = tables
    rows = list(old) + [k for k in new if k not in old]
    return [{"row": row, "old": old.get(row, {}).get("mIoU"), "new": new.get(row, {}).get("mIoU"),
             "equal": old.get(row) == new.get(row)} for row in rows]


def _label(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError("%r: give NAME=TEXT, e.g. old=a5c090a" % text)
    return tuple(text.split("=", 1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, help="the earlier commit's demo root")
    parser.add_argument("--new", required=True, help="this commit's demo root")
    parser.add_argument("--label", action="append", default=[], type=_label,
                        metavar="old=COMMIT",
                        help="what each run is (recorded beside the result)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench_run", "same_run"))
    parser.add_argument("--record", default=None, metavar="NAME")
    args = parser.parse_args(argv)
    table = compare_tables(args.old, args.new)
    files = compare_files(args.old, args.new)
    same = all(r["equal"] for r in table) and all(v == "equal" for _, v in files)
    payload = {"same": same, "labels": dict(args.label),
               "table": table, "files": [{"file": f, "verdict": v} for f, v in files],
               "provenance": provenance(argv if argv is not None else sys.argv)}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(payload, f, indent=1)
    text = markdown_table(table, [("demo row", "row", "%s"), ("old mIoU", "old", "%.4f"),
                                  ("new mIoU", "new", "%.4f"), ("equal (every IoU)", "equal",
                                                                "%s")])
    text += "\n\n%d files compared (snapshots' arrays, optimizer states, cues): %d equal%s\n" % (
        len(files), sum(v == "equal" for _, v in files),
        "".join("\n- %s: %s" % (f, v) for f, v in files if v != "equal"))
    with open(args.out + ".md", "w") as f:
        f.write(text)
    print(text)
    if args.record:
        print("recorded in %s" % record("quality", args.record, args.out))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
