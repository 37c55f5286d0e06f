"""docs/method.md stays true: its fidelity table names every switchable default with the
value in cores/config.py, and every test it cites exists. README's quality table shows what
the committed benchmark output (bench/results_quality.json) holds."""
import json
import os
import re

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


def test_readme_quality_table_is_the_committed_benchmark():
    with open(os.path.join(REPO, "bench", "results_quality.json")) as f:
        rows = {r["variant"]: r for r in json.load(f)["rows"]}
    with open(os.path.join(REPO, "README.md")) as f:
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
