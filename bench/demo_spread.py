"""The demo's table over several runs (machines, or oneDNN restricted to older instruction sets
with DNNL_MAX_CPU_ISA, which picks other kernels as another CPU would): reads each run's
OUTPUT_PATH/demo_summary.json and writes the spread with its provenance.

  python bench/demo_spread.py --run this_machine=demo_run --run avx=/tmp/avx ... \\
      [--earlier NAME=ROW:VALUE,...] --out bench_run/demo [--record demo]"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.provenance import markdown_table, provenance, record  # noqa: E402

ROWS = ["cues alone", "SEC", "SEC --crf --flip", "supervised", "supervised --crf --flip"]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", default=[], metavar="NAME=ROOT",
                        help="a finished demo (demo/run_demo.py --root ROOT)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=ENV",
                        help="how a run was made (e.g. avx=DNNL_MAX_CPU_ISA=AVX), or where an "
                             "earlier one was")
    parser.add_argument("--earlier", action="append", default=[], metavar="NAME=V,V,V,V,V",
                        help="a run recorded elsewhere: its five mIoUs in the rows' order")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench_run", "demo"))
    parser.add_argument("--record", default=None, metavar="NAME")
    args = parser.parse_args()
    envs = dict(e.split("=", 1) for e in args.env)
    runs = {}
    for item in args.run:
        name, root = item.split("=", 1)
        with open(os.path.join(root, "outputs", "demo_summary.json")) as f:
            summary = json.load(f)
        runs[name] = {"mIoU": {r: summary[r]["mIoU"] for r in ROWS},
                      "seconds": summary.get("seconds"), "how": envs.get(name, "")}
    for item in args.earlier:
        name, values = item.split("=", 1)
        runs[name] = {"mIoU": dict(zip(ROWS, map(float, values.split(",")))),
                      "how": "recorded by an earlier run of the same code"}
    table = []
    for row in ROWS:                      # the range over every run, earlier ones included
        values = [runs[n]["mIoU"][row] for n in runs]
        entry = {"row": row, "min": min(values), "max": max(values)}
        entry.update({n: runs[n]["mIoU"][row] for n in runs})
        table.append(entry)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"runs": runs, "rows": table, "provenance": provenance()}, f, indent=1)
    columns = [("toy val mIoU", "row", "%s")] + [(n, n, "%.4f") for n in runs][:7] + [
        ("min", "min", "%.4f"), ("max", "max", "%.4f")]
    with open(args.out + ".md", "w") as f:
        f.write(markdown_table(table, columns[:10]) + "\n")
    print(open(args.out + ".md").read())
    if args.record:
        print("recorded in %s" % record("quality", args.record, args.out))


if __name__ == "__main__":
    main()
