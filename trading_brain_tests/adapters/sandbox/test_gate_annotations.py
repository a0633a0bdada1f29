"""Static gate: string annotations, annotation evaluators and the file openers of allowed libraries.

A string in an annotation is evaluated as code by ``typing.get_type_hints`` (and pydantic), out of
the linter's sight: ``def f(x: "getattr")`` + ``typing.get_type_hints(f)`` yields the real
``getattr`` with no forbidden token in the source (escapes/a21, a22). Every case below passed the
gate before this rule set.
"""

from __future__ import annotations

import pytest

from trading_brain.adapters.sandbox.gate import check_source, import_allowed
from trading_brain_tests.adapters.sandbox.test_gate import HEADER, findings

REJECTED = [
    # string annotations, wherever they are
    ("    def f(x: 'getattr'):\n        pass\n    return bars\n", "annotation"),
    ("    def f(x) -> 'typing.sys':\n        pass\n    return bars\n", "annotation"),
    ("    x: 'getattr' = 1\n    return bars\n", "annotation"),
    ("    def f(x: typing.Optional['getattr']):\n        pass\n    return bars\n", "annotation"),
    ("    def f(x: list['getattr'] | None):\n        pass\n    return bars\n", "annotation"),
    ("    def f(*a: 'getattr', **k: 'vars'):\n        pass\n    return bars\n", "annotation"),
    ("    def f(x: Annotated['getattr', 1]):\n        pass\n    return bars\n", "annotation"),
    # evaluating annotations
    ("    import typing\n    return typing.get_type_hints(generate)\n", "attribute"),
    ("    from typing import get_type_hints\n    return bars\n", "import"),
    ("    return get_type_hints(generate)\n", "name"),
    ("    import typing\n    return typing.ForwardRef('x')\n", "attribute"),
    ("    import pydantic\n    return pydantic.create_model('M')\n", "attribute"),
    # file openers of allowed libraries
    ("    import numpy as np\n    return np.ma.mrecords.openfile('/etc/passwd')\n", "attribute"),
    ("    import numpy as np\n    return np.ma.mrecords.fromtextfile('/x')\n", "attribute"),
    ("    from numpy.ma.mrecords import fromtextfile\n    return bars\n", "import"),
    ("    import numpy.ma.mrecords\n    return bars\n", "import"),
    ("    import numpy as np\n    return np.loadtxt('/x')\n", "attribute"),
    ("    import numpy as np\n    return np.genfromtxt('/x')\n", "attribute"),
    ("    import numpy as np\n    return np.fromfile('/x')\n", "attribute"),
    ("    import numpy as np\n    return np.memmap('/x')\n", "attribute"),
    ("    return pl.scan_parquet('/x')\n", "attribute"),
    ("    return bars.lazy().sink_csv('/x')\n", "attribute"),
    ("    return bars.lazy().show_graph(output_path='/x')\n", "attribute"),
    ("    return pl.CredentialProviderAWS()\n", "attribute"),
    ("    return Params.parse_file('/x')\n", "attribute"),
    ("    import zoneinfo\n    return zoneinfo.reset_tzpath(['/x'])\n", "attribute"),
]


@pytest.mark.parametrize(("body", "rule"), REJECTED)
def test_rejected(body, rule):
    found = findings(body)
    assert any(f.rule == rule for f in found), [str(f) for f in found]


def test_string_annotation_message_is_actionable():
    (f,) = findings("    def f(x: 'getattr'):\n        pass\n    return bars\n")
    assert (f.rule, f.line, f.text) == ("annotation", 14, "'getattr'")
    assert "string annotations are not allowed" in f.message
    assert "write the type itself" in f.message


def test_class_body_string_annotation_rejected():
    src = HEADER.replace("    pass\n", "    fast: 'getattr' = 5\n", 1) + "    return bars\n"
    found, _ = check_source(src)
    assert [(f.rule, f.line) for f in found] == [("annotation", 10)]


@pytest.mark.parametrize("body", [
    # values that are not types: Literal choices, Annotated metadata, call arguments
    "    def f(x: Literal['a', 'b'] = 'a'):\n        pass\n    return bars\n",
    "    def f(x: typing.Literal['a']):\n        pass\n    return bars\n",
    "    def f(x: Annotated[int, Field(description='n')]):\n        pass\n    return bars\n",
    "    def f(x: int = 3) -> pl.DataFrame:\n        pass\n    return bars\n",
])
def test_annotations_that_are_not_forward_references_pass(body):
    assert findings(body) == []


def test_future_annotations_pass_because_their_source_is_checked():
    """``from __future__ import annotations`` stays allowed (every shipped strategy uses it and
    released versions are immutable): its annotations are ordinary code for the gate."""
    src = "from __future__ import annotations\n" + HEADER
    assert check_source(src + "    return bars\n")[0] == []
    bad, _ = check_source(src.replace("pass\n", "x: getattr = 1\n", 1) + "    return bars\n")
    assert [f.rule for f in bad] == ["name"]


def test_mrecords_is_not_importable():
    assert import_allowed("numpy.ma") is True
    assert import_allowed("numpy.ma.mrecords") is False
