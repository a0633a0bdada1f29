"""Static gate (L1): rule coverage, precise messages, contract checks, corpus verdicts."""

from __future__ import annotations

import pytest

from trading_brain.adapters.sandbox.gate import (
    MAX_SOURCE_BYTES,
    check_source,
    import_allowed,
    require_clean,
)
from trading_brain.errors import StrategyError
from trading_brain_tests.adapters.sandbox.helpers import ESCAPES, LEGIT, REPO

# Escape-corpus entries that need no interpreter escape, so the gate cannot see them.
GATE_PASSES = {"a13_memory_bomb", "a14_cpu_bomb"}

HEADER = """import polars as pl
from pydantic import BaseModel

STRATEGY_ID = "t"
VERSION = 1
WARMUP_BARS = 1


class Params(BaseModel):
    pass


def generate(bars, params):
"""


def findings(body: str) -> list:
    found, _ = check_source(HEADER + body)
    return found


@pytest.mark.parametrize("path", sorted(ESCAPES.glob("*.py")), ids=lambda p: p.stem)
def test_escape_corpus_verdicts(path):
    found, _ = check_source(path.read_text())
    assert bool(found) == (path.stem not in GATE_PASSES), [str(f) for f in found]


@pytest.mark.parametrize(
    "path",
    sorted(LEGIT.glob("*.py")) + sorted((REPO / "strategies").glob("*/v*.py")),
    ids=lambda p: p.stem if p.parent == LEGIT else p.parent.name,
)
def test_legit_and_shipped_strategies_pass(path):
    found, info = check_source(path.read_text())
    assert found == []
    assert info is not None and info.version >= 1 and info.warmup_bars >= 1


def test_finding_names_rule_line_col_and_text():
    (f,) = findings("    import os\n    return bars\n")
    assert (f.rule, f.line, f.col, f.text) == ("import", 14, 5, "import os")
    assert "line 14, col 5: [import] import of 'os' is not allowed" in str(f)


@pytest.mark.parametrize(
    ("body", "rule", "fragment"),
    [
        ("    return eval('1')\n", "name", "builtin 'eval'"),
        ("    return open('/etc/passwd')\n", "name", "builtin 'open'"),
        ("    return __builtins__\n", "name", "'__'"),
        ("    return bars.__class__\n", "attribute", "'__class__'"),
        ("    return bars._df\n", "attribute", "'_df'"),
        ("    return '{0}'.format(bars)\n", "attribute", "f-string"),
        ("    return pl.read_csv('x')\n", "attribute", "'read_csv'"),
        ("    return bars.write_parquet('x')\n", "attribute", "'write_parquet'"),
        ("    return pl.sql('select 1')\n", "attribute", "'sql'"),
        ("    import numpy as np\n    return np.load('x')\n", "attribute", "'load'"),
        ("    import numpy as np\n    return np.lib\n", "attribute", "'lib'"),
        ("    import numpy as np\n    return bars.to_numpy().ctypes\n", "attribute", "'ctypes'"),
        ("    import typing\n    return typing.sys\n", "attribute", "'sys'"),
        ("    x = (i for i in bars)\n    return x.gi_frame\n", "attribute", "'gi_frame'"),
        ("    return 'a__b'\n", "string", "'__'"),
        ("    from numpy import ctypeslib\n", "import", "numpy.ctypeslib"),
        ("    from polars import read_csv\n", "import", "polars.read_csv"),
        ("    from . import x\n", "import", "relative"),
        ("    from math import *\n", "import", "import *"),
        ("    global X\n", "syntax", "'global'"),
    ],
)
def test_rules(body, rule, fragment):
    found = findings(body)
    assert any(f.rule == rule and fragment in f.message for f in found), [str(f) for f in found]


def test_top_level_only_imports_defs_constants_docstrings():
    src = (
        HEADER
        + "    return bars\n\nprint('side effect')\nN = len('abc')\nOK = (1, -2.5, {'a': [1]})\n"
    )
    found, _ = check_source(src)
    assert [(f.rule, f.text) for f in found] == [
        ("top-level", "print('side effect')"),
        ("top-level", "N = len('abc')"),
    ]


def test_async_and_except_star_rejected():
    src = HEADER + "    return bars\n\nasync def f():\n    pass\n"
    assert any(f.rule == "syntax" and "async" in f.message for f in check_source(src)[0])
    src = HEADER + "    try:\n        pass\n    except* ValueError:\n        pass\n"
    assert any("except*" in f.message for f in check_source(src)[0])


def test_size_cap_and_syntax_errors():
    found, _ = check_source("x = 1\n" * (MAX_SOURCE_BYTES // 6 + 10))
    assert [f.rule for f in found] == ["size"]
    (f,), _ = check_source("def generate(:\n")
    assert f.rule == "syntax" and f.line == 1


def test_contract_requires_module_level_names():
    found, info = check_source(
        "class Strategy:\n    def generate(self, bars):\n        return bars\n"
    )
    assert info is None
    texts = " | ".join(f.text for f in found if f.rule == "contract")
    for name in ("STRATEGY_ID", "VERSION", "WARMUP_BARS", "class Params", "def generate"):
        assert name in texts


def test_contract_checks_constant_values():
    bad = HEADER.replace('"t"', '"Bad-Id"').replace("VERSION = 1", "VERSION = 0")
    found, _ = check_source(bad + "    return bars\n")
    texts = [f.text for f in found]
    assert any("STRATEGY_ID" in t for t in texts) and any("VERSION" in t for t in texts)


def test_require_clean_raises_with_every_finding():
    with pytest.raises(StrategyError) as e:
        require_clean(HEADER + "    import os\n    return eval('1')\n")
    msg = str(e.value)
    assert "rejected by the static gate" in msg and "import of 'os'" in msg and "'eval'" in msg
    assert require_clean(HEADER + "    return bars\n").strategy_id == "t"


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("numpy", True),
        ("numpy.linalg", True),
        ("numpy.ctypeslib", False),
        ("numpy.lib", False),
        ("polars", True),
        ("polars.io", False),
        ("os", False),
        ("sys", False),
        ("ctypes", False),
        ("trading_brain.engine.indicators", True),
        ("trading_brain.engine", False),
        ("trading_brain", False),
        ("__future__", True),
        ("importlib", False),
        ("zoneinfo", True),
    ],
)
def test_import_allowlist(module, allowed):
    assert import_allowed(module) is allowed
