"""docs/method.md stays true: its fidelity table names every switchable default with the
value in cores/config.py, and every test it cites exists."""
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
