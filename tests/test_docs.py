"""The docs stay true: docs/method.md's fidelity table names every switchable default with the
value in cores/config.py and cites tests that exist; every relative link resolves; every script,
make target and flag that the README's commands name exists; the tables of README.md,
docs/benchmarks.md and bench/README.md equal the committed results, each with its provenance."""
import glob
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from cores.config import DEFAULTS
from tests.conftest import REPO


def _rows():
    with open(os.path.join(REPO, "docs", "method.md")) as f:
        text = f.read()
    table = text[text.index("## 8. Fidelity table"):]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    header, body = rows[0], rows[1:]
    assert header == ["item", "authors", "port", "here (default)", "key", "test"]
    return body


def test_fidelity_table_matches_the_defaults():
    keyed = 0
    for item, _, _, here, key, _ in _rows():
        match = re.match(r"`([A-Z_0-9]+)`", key)
        if not match:
            continue
        keyed += 1
        assert match.group(1) in DEFAULTS, item
        assert here == str(DEFAULTS[match.group(1)]), (
            "%s: the table says %s, cores/config.py %r" % (item, here, DEFAULTS[match.group(1)]))
    assert keyed >= 25


def test_fidelity_table_cites_existing_tests():
    for item, _, _, _, _, test in _rows():
        path, _, name = test.partition("::")
        with open(os.path.join(REPO, "tests", path)) as f:
            source = f.read()
        if name:
            assert "def %s(" % name in source, "%s cites %s" % (item, test)


def test_benchmarks_quality_table_is_the_committed_benchmark():
    with open(os.path.join(REPO, "bench", "results", "quality", "recipe", "result.json")) as f:
        rows = {r["variant"]: r for r in json.load(f)["rows"]}
    with open(os.path.join(REPO, "bench", "notes", "quality-records.md")) as f:
        text = f.read()
    section = text[text.index("### The benchmark of the committed recipe"):]
    table = section[section.index("| variant"):].split("\n\n")[0].splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    lines = table[2:]
    assert len(lines) == len(rows) >= 4
    columns = {"cues alone": "cues", "SEC": "sec", "SEC --crf --flip": "sec_crf_flip",
               "bound --crf --flip": "supervised_crf_flip", "ratio": "ratio"}
    for line in lines:
        cells = dict(zip(header, (c.strip() for c in line.strip().strip("|").split("|"))))
        row = rows[cells["variant"].strip("`")]
        for title, key in columns.items():
            digits = len(cells[title].split(".")[1])
            assert float(cells[title]) == round(row[key], digits), (cells["variant"], title)
        assert cells["meets"] == ("yes" if row["meets"] else "**no**")
        assert float(cells["minutes"]) == row["minutes"], cells["variant"]
        assert (cells["held out"] == "yes") == row["held_out"]


DOCS = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", "bench/README.md"] + sorted(
    os.path.relpath(p, REPO) for pattern in ("docs/*.md", "bench/notes/*.md")
    for p in glob.glob(os.path.join(REPO, pattern)))


def _anchors(path):
    """GitHub's anchors of a Markdown file's headings."""
    with open(path) as f:
        heads = [l.lstrip("#").strip() for l in f if l.startswith("#")]
    return {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in heads}


def broken_links(doc):
    """Relative links of ``doc`` whose file (or #anchor) does not exist."""
    with open(os.path.join(REPO, doc)) as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(REPO, os.path.dirname(doc), path)) if path else \
            os.path.join(REPO, doc)
        if not os.path.exists(full) or (anchor and full.endswith(".md")
                                        and anchor not in _anchors(full)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_resolves(doc):
    assert broken_links(doc) == []


def test_a_broken_link_is_found(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A title\n[ok](a.md#a-title) [no](b.md) "
                                            "[anchor](a.md#nowhere)\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", str(tmp_path))
    assert broken_links("docs/a.md") == ["b.md", "a.md#nowhere"]


# a path of the repository as the docs write it: a top-level folder, then a path; {a,b} is a
# set of names, * any; NAME, NNNN, <...> and the like are placeholders (not checked)
PATH = re.compile(r"(?<![\w./-])((?:cores|bench|tools|demo|docs|tests|configs|datagen)/"
                  r"[A-Za-z0-9_./*{},-]*[A-Za-z0-9_/*}])")
PLACEHOLDERS = re.compile(r"NAME|NNNN|<|VARIANT|KIND|%|\.\.\.")


def missing_paths(text):
    """The paths ``text`` names (PATH) that match no file or folder of the repository."""
    missing = []
    for path in sorted(set(PATH.findall(text))):
        if PLACEHOLDERS.search(path) or path.count("{") != path.count("}"):
            continue                                 # a placeholder, or a set cut by a line
        expanded = [path]
        while any("{" in p for p in expanded):
            nxt = []
            for p in expanded:
                m = re.search(r"\{([^{}]*)\}", p)
                nxt += [p[:m.start()] + part + p[m.end():] for part in m.group(1).split(",")] \
                    if m else [p]
            expanded = nxt
        if not all(glob.glob(os.path.join(REPO, p)) for p in expanded):
            missing.append(path)
    return missing


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_a_doc_names_exists(doc):
    with open(os.path.join(REPO, doc)) as f:
        assert missing_paths(f.read()) == []


def test_a_path_that_is_gone_is_found():
    assert missing_paths("see `cores/objectives.py`, cores/methods/dsrg.py and "
                         "bench/results/{speed,quality}/ and bench/results_quality.json") == [
        "bench/results_quality.json", "cores/objectives.py"]


def readme_commands(text):
    """(script, [flags]) and make targets named in the README's code blocks."""
    scripts, targets = [], []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0]
            for m in re.finditer(r"(?:python3? |bin/python )(\S+\.py)((?:\s+[^|;&]*)?)", line):
                flags = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", m.group(2))
                scripts.append((m.group(1), flags))
            for m in re.finditer(r"\bmake (?:-\S+ )*([a-z][a-z-]*)", line):
                targets.append(m.group(1))
    return scripts, targets


def _help(script):
    done = subprocess.run([sys.executable, os.path.join(REPO, script), "--help"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    return done.returncode, done.stdout


def missing_commands(text):
    scripts, targets = readme_commands(text)
    with open(os.path.join(REPO, "Makefile")) as f:
        make = set(re.findall(r"^([a-z][a-z-]*):", f.read(), flags=re.M))
    problems = ["make " + t for t in targets if t not in make]
    names = sorted({s for s, _ in scripts})
    problems += [s for s in names if not os.path.isfile(os.path.join(REPO, s))]
    with ThreadPoolExecutor(4) as pool:
        helps = dict(zip(names, pool.map(_help, [n for n in names
                                                 if os.path.isfile(os.path.join(REPO, n))])))
    for script, flags in scripts:
        if script in helps:
            code, out = helps[script]
            problems += ["%s %s" % (script, f) for f in flags
                         if code != 0 or not re.search(r"(?<![\w-])%s\b" % re.escape(f), out)]
    return problems


@pytest.mark.slow
def test_every_script_target_and_flag_in_the_readme_exists():
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    scripts, targets = readme_commands(text)
    assert len(scripts) >= 10 and {"demo", "test", "setup"} <= set(targets)
    assert missing_commands(text) == []


@pytest.mark.slow
def test_a_wrong_flag_or_target_is_found():
    text = "```\npython eval.py --crf --no-such-flag\nmake no-such-target\n" \
           "python tools/nope.py\n```\n"
    assert missing_commands(text) == ["make no-such-target", "tools/nope.py",
                                      "eval.py --no-such-flag"]


def test_readme_is_a_guide_of_at_most_200_lines():
    with open(os.path.join(REPO, "README.md")) as f:
        assert len(f.read().splitlines()) <= 200


def test_no_issue_numbers_in_docs_or_code_comments():
    """Docs and comments give reasons; numbers of issues outside the repository mean nothing
    to a reader (dated history is CHANGELOG.md's)."""
    files = DOCS + [os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "**", "*.py"),
                                                                 recursive=True)
                    if "/.venv/" not in p]
    hits = []
    for name in files:
        with open(os.path.join(REPO, name)) as f:
            for number, line in enumerate(f, 1):
                if re.search(r"\bissues? ?\d+", line, flags=re.I) and "test_docs.py" not in name:
                    hits.append("%s:%d" % (name, number))
    assert hits == []


def _results():
    return sorted(glob.glob(os.path.join(REPO, "bench", "results", "*", "*", "result.json")))


def test_every_committed_result_has_its_provenance_and_a_short_table():
    assert len(_results()) >= 10
    for path in _results():
        with open(path) as f:
            data = json.load(f)
        prov = data.get("provenance") or {}
        for key in ("command", "commit", "date", "cpu", "cores", "packages"):
            assert prov.get(key), (path, key)
        assert prov["packages"].get("mxnet") and prov["packages"].get("numpy"), path
        with open(os.path.join(os.path.dirname(path), "result.md")) as f:
            header = [l for l in f if l.startswith("|")][0]
        assert header.count("|") - 1 <= 10, path
    flat = [p for p in os.listdir(os.path.join(REPO, "bench")) if p.startswith("results_")]
    assert flat == []


def test_bench_readme_tables_are_the_committed_results():
    sys.path.insert(0, os.path.join(REPO, "bench"))
    from tests.conftest import load_script
    from bench.provenance import markdown_table
    quality = load_script("bench/quality.py")
    with open(os.path.join(REPO, "bench", "README.md")) as f:
        text = f.read()
    with open(os.path.join(REPO, "bench", "results", "quality", "recipe", "result.json")) as f:
        rows = [quality.flat_row(r) for r in json.load(f)["rows"]]
    assert markdown_table(rows, quality.SHORT) in text
    with open(os.path.join(REPO, "bench", "results", "speed", "stages", "result.json")) as f:
        speed = json.load(f)["results"]
    for row in speed:
        assert "| %s | %s | %.2f |" % (row["stage"], row["backbone"],
                                       row["images_per_s_median"]) in text


def test_readme_demo_table_is_the_committed_spread():
    """README's demo table: each machine's column and the range are the recorded runs'."""
    with open(os.path.join(REPO, "bench", "results", "quality", "demo", "result.json")) as f:
        demo = json.load(f)
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    table = text[text.index("| toy val mIoU |"):].split("\n\n")[0].splitlines()[2:]
    rows = {r["row"]: r for r in demo["rows"]}
    runs = ["avx512", "avx2", "intel_xeon"]
    assert sorted(demo["runs"]) == sorted(runs)
    assert len(table) == 5
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        row = rows[cells[0]]
        assert [float(c) for c in cells[1:4]] == [round(row[n], 3) for n in runs], cells[0]
        low, high = cells[4].split("-")
        assert (float(low), float(high)) == (round(row["min"], 3), round(row["max"], 3))
        assert row["min"] == min(row[n] for n in runs) and row["max"] == max(row[n] for n in runs)


def test_benchmarks_write_only_to_ignored_folders():
    """make bench / make quality leave git status clean: their default outputs are ignored."""
    outs = [os.path.join(REPO, "bench_run", "speed.json"), os.path.join(REPO, "quality_run",
                                                                         "quality.json"),
            os.path.join(REPO, "bench_run", "demo.json")]
    for path in outs:
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert done.returncode == 0, path
    with open(os.path.join(REPO, "bench", "run_bench.py")) as f:
        assert 'os.path.join(ROOT, "bench_run", "speed")' in f.read()
    with open(os.path.join(REPO, "bench", "quality.py")) as f:
        assert 'default="quality_run"' in f.read()


def test_every_methods_run_is_named_in_the_records():
    """Every committed methods run (bench/results/quality/*_methods*, *_seeds*) is named in the
    quality records, where its tables were written (its own result.md holds them too)."""
    folder = os.path.join(REPO, "bench", "results", "quality")
    names = sorted(n for n in os.listdir(folder) if "_methods" in n or "_seeds" in n)
    assert "photo_methods" in names and "flat_methods" in names
    with open(os.path.join(REPO, "bench", "notes", "quality-records.md")) as f:
        text = f.read()
    for name in names:
        assert re.search(r"\b%s\b" % re.escape(name), text), name


def test_benchmarks_methods_summary_is_the_committed_benchmarks():
    """docs/benchmarks.md's 'which method helps where' table and its variants line are what
    bench/methods_summary.py makes of the committed methods results."""
    from tests.conftest import load_script
    from bench.provenance import markdown_table
    summary = load_script("bench/methods_summary.py")
    rows = summary.variant_rows()
    with open(os.path.join(REPO, "docs", "benchmarks.md")) as f:
        text = f.read()
    assert markdown_table(summary.summary(rows), summary.COLUMNS) in text
    assert markdown_table(summary.ratios(rows), summary.RATIO_COLUMNS) in text
    assert summary.variants_line(rows) in " ".join(text.split())
