"""Where a benchmark's result came from, stored with it: the command line, the commit, the date,
the machine (CPU model, cores) and the package versions. Benchmarks write to ignored folders;
``record`` copies a finished result into bench/results/<kind>/<name>/ (result.json, result.md,
result.png) when asked (--record NAME), so that running a benchmark never changes the tree."""
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
PACKAGES = ("mxnet", "numpy", "scipy", "opencv-python-headless", "pydensecrf2", "pillow",
            "scikit-image")
KINDS = ("speed", "quality")


def _git(*args):
    try:
        return subprocess.run(["git"] + list(args), cwd=REPO, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions():
    import importlib.metadata
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(argv=None):
    """The facts that make a result repeatable (or explain why it moved)."""
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {"command": " ".join(argv if argv is not None else sys.argv),
            "commit": commit + ("+uncommitted changes" if dirty and commit else ""),
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "packages": package_versions()}


def record(kind, name, out_base):
    """Copy ``out_base``.json/.md/.png (a finished run) to bench/results/<kind>/<name>/ as
    result.*; returns that folder."""
    if kind not in KINDS:
        raise ValueError("kind %r: one of %s" % (kind, ", ".join(KINDS)))
    if not name or os.sep in name or name.startswith("."):
        raise ValueError("--record %r: a plain folder name" % name)
    folder = os.path.join(RESULTS, kind, name)
    os.makedirs(folder, exist_ok=True)
    for ext in (".json", ".md", ".png"):
        if os.path.isfile(out_base + ext):
            shutil.copyfile(out_base + ext, os.path.join(folder, "result" + ext))
    with open(os.path.join(folder, "result.json")) as f:
        if "provenance" not in json.load(f):
            raise ValueError("%s.json has no provenance" % out_base)
    return folder


def markdown_table(rows, columns):
    """A table of ``rows`` (dicts) with ``columns`` [(title, key, format)], at most 10: the
    result.md beside a result.json that holds every column."""
    if len(columns) > 10:
        raise ValueError("a result table has at most 10 columns (the JSON holds the rest)")
    lines = ["| " + " | ".join(t for t, _, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for _, key, fmt in columns:
            value = row.get(key)
            cells.append("-" if value is None else (fmt % value if fmt else str(value)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
