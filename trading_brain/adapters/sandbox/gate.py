"""Static gate (sandbox layer L1): AST rules that reject strategy source early, precisely.

This is a LINTER, not a security boundary (see reference/sandbox.md §1): the OS-locked worker is
the boundary. Its job is to turn common mistakes and obvious escapes into messages an (AI)
author can act on: every ``Finding`` names the rule, line, column and the offending source text.

Rules: size cap (100 kB); Python 3.11 syntax; top level holds only imports, ``class``/``def``,
literal constants and docstrings; an import allowlist (``ALLOWED_IMPORTS``, no relative or star
imports); no ``async``/``global``/``nonlocal``/``except*``; forbidden builtins
(``FORBIDDEN_NAMES``) and dunder names; attributes starting with ``_`` (except ``__init__``/
``__post_init__``/``__name__``), frame/generator/code attributes and the known I/O entry points
of numpy/polars/pydantic/zoneinfo
(``FORBIDDEN_ATTRS``/``FORBIDDEN_ATTR_PREFIXES``); string constants containing ``__``; string
annotations (a string in an annotation is evaluated as code by ``typing.get_type_hints``,
pydantic or ``functools.singledispatch``, where this linter cannot see it) and the names that
evaluate annotations (``get_type_hints``, ``ForwardRef``, ``create_model``...). Values inside
``Literal[...]`` and the metadata of ``Annotated[...]`` are not types and stay allowed, and so does
``from __future__ import annotations``: it turns annotations into strings at run time, but their
SOURCE is ordinary code that every rule here checks. For
``kind="strategy"`` the contract of ``domain/strategy.py``: module-level ``STRATEGY_ID`` (str),
``VERSION`` (int >= 1), ``WARMUP_BARS`` (int >= 1: the scan passes that many bars),
``class Params`` and ``def generate(bars, params)``; for ``kind="analysis"`` the contract of
``analyses/README.md``: ``ANALYSIS_ID`` (str), ``VERSION`` (int >= 1), ``class Params`` and
``def analyze(frames, params)``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from trading_brain.adapters.sandbox.gate_rules import (  # noqa: F401 - re-exported
    _ID_RE,
    ALLOWED_DUNDER_ATTRS,
    ALLOWED_IMPORTS,
    ANNOTATION_EVALUATORS,
    FORBIDDEN_ATTR_PREFIXES,
    FORBIDDEN_ATTRS,
    FORBIDDEN_NAMES,
    MAX_REPORTED,
    MAX_SOURCE_BYTES,
    string_annotations,
)
from trading_brain.errors import StrategyError


@dataclass(frozen=True)
class Finding:
    """One rule violation, precise enough to hand back to the author."""

    rule: str
    line: int
    col: int
    text: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, col {self.col}: [{self.rule}] {self.message}: `{self.text}`"


@dataclass(frozen=True)
class StrategyInfo:
    """The contract constants read statically from the source."""

    strategy_id: str
    version: int
    warmup_bars: int


def import_allowed(module: str) -> bool:
    """Whether ``module`` (dotted) is on the allowlist (submodules included, I/O ones excluded)."""
    parts = module.split(".")
    if parts[0] != "__future__" and parts[0].startswith("_"):
        return False
    if any(attr_forbidden(p) for p in parts[1:]):
        return False
    return any(module == a or module.startswith(a + ".") for a in ALLOWED_IMPORTS)


def attr_forbidden(name: str) -> str | None:
    """The reason attribute ``name`` is rejected, or None."""
    if name.startswith("_") and name not in ALLOWED_DUNDER_ATTRS:
        return "attributes starting with '_' are not allowed"
    if name in ANNOTATION_EVALUATORS:
        return "evaluating annotations runs the code hidden in them; use the types directly"
    if name in FORBIDDEN_ATTRS:
        return "this attribute reaches the interpreter, files, SQL or native code"
    if name.startswith(FORBIDDEN_ATTR_PREFIXES):
        return "I/O, frame and code attributes are not allowed (data comes in as `bars`)"
    return None


class _Visitor(ast.NodeVisitor):
    def __init__(self, source: str) -> None:
        self.source = source
        self.findings: list[Finding] = []

    def add(self, node: ast.AST, rule: str, message: str) -> None:
        text = ast.get_source_segment(self.source, node) or type(node).__name__
        text = " ".join(text.split())
        text = text if len(text) <= 80 else text[:77] + "..."
        line, col = getattr(node, "lineno", 0), getattr(node, "col_offset", 0) + 1
        self.findings.append(Finding(rule, line, col, text, message))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not import_allowed(alias.name):
                self.add(node, "import", f"import of '{alias.name}' is not allowed ({_allowed()})")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if node.level:
            self.add(node, "import", "relative imports are not allowed")
            return
        for alias in node.names:
            full = f"{mod}.{alias.name}"
            if alias.name == "*":
                self.add(node, "import", "'import *' is not allowed")
            elif not import_allowed(full):
                self.add(node, "import", f"import of '{full}' is not allowed ({_allowed()})")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in ANNOTATION_EVALUATORS:
            self.add(node, "name", f"'{node.id}' evaluates annotations, and strings in them are "
                     "code this check cannot see; use the types directly")
        elif node.id in FORBIDDEN_NAMES:
            self.add(node, "name", f"the builtin '{node.id}' is not allowed in strategy code")
        elif node.id.startswith("__"):
            self.add(node, "name", "names starting with '__' are not allowed")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        reason = attr_forbidden(node.attr)
        if reason:
            hint = " (use an f-string)" if node.attr in ("format", "format_map") else ""
            self.add(node, "attribute", f"attribute '{node.attr}': {reason}{hint}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str | bytes) and (
            "__" in node.value if isinstance(node.value, str) else b"__" in node.value
        ):
            self.add(node, "string", "string constants containing '__' are not allowed")

    def _annotation(self, node: ast.expr | None) -> None:
        for const in string_annotations(node):
            self.add(const, "annotation", "string annotations are not allowed: typing/pydantic "
                     "evaluate them as code at run time, out of this check's sight; write the "
                     "type itself (e.g. `x: float`, `-> pl.DataFrame`)")

    def visit_arg(self, node: ast.arg) -> None:
        self._annotation(node.annotation)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._annotation(node.returns)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._annotation(node.annotation)
        self.generic_visit(node)

    def _reject(self, node: ast.AST, what: str) -> None:
        self.add(node, "syntax", f"{what} is not allowed in strategy code")
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AST) -> None:
        self._reject(node, "async code")

    visit_Await = visit_AsyncFor = visit_AsyncWith = visit_AsyncFunctionDef

    def visit_Global(self, node: ast.AST) -> None:
        self._reject(node, "'global'")

    def visit_Nonlocal(self, node: ast.AST) -> None:
        self._reject(node, "'nonlocal'")

    def visit_TryStar(self, node: ast.AST) -> None:
        self._reject(node, "'except*'")


def _allowed() -> str:
    return "allowed: " + ", ".join(sorted(ALLOWED_IMPORTS))


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(_is_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_literal(k) for k in node.keys) and all(
            _is_literal(v) for v in node.values
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _is_literal(node.operand)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        return _is_literal(node.left) and _is_literal(node.right)
    return False


def _check_top_level(tree: ast.Module, v: _Visitor) -> None:
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom | ast.ClassDef | ast.FunctionDef):
            continue
        if (
            isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
        ):
            continue
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if all(isinstance(t, ast.Name) for t in targets) and (
                stmt.value is not None and _is_literal(stmt.value)
            ):
                continue
        v.add(
            stmt,
            "top-level",
            "the module top level may only hold imports, class/def, "
            "literal constants and docstrings",
        )


def _constants(tree: ast.Module) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and _is_literal(stmt.value):
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = ast.literal_eval(stmt.value)
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
            if _is_literal(stmt.value):
                out[stmt.target.id] = ast.literal_eval(stmt.value)
    return out


def _check_contract(tree: ast.Module, v: _Visitor) -> StrategyInfo | None:
    consts = _constants(tree)
    defs = {s.name: s for s in tree.body if isinstance(s, ast.ClassDef | ast.FunctionDef)}
    problems: list[str] = []
    sid, ver, warm = consts.get("STRATEGY_ID"), consts.get("VERSION"), consts.get("WARMUP_BARS")
    if not (isinstance(sid, str) and _ID_RE.match(sid)):
        problems.append("STRATEGY_ID = '<family>' (a literal matching [a-z][a-z0-9_]*)")
    if not (isinstance(ver, int) and not isinstance(ver, bool) and ver >= 1):
        problems.append("VERSION = <int >= 1>")
    if not (isinstance(warm, int) and not isinstance(warm, bool) and warm >= 1):
        problems.append("WARMUP_BARS = <int >= 1> (the live scan passes the last WARMUP_BARS "
                        "bars and decides on the last row)")
    if not isinstance(defs.get("Params"), ast.ClassDef):
        problems.append("class Params (a frozen pydantic model)")
    gen = defs.get("generate")
    if not (isinstance(gen, ast.FunctionDef) and len(gen.args.posonlyargs + gen.args.args) >= 2):
        problems.append("def generate(bars, params) at module level")
    for p in problems:
        v.findings.append(Finding("contract", 1, 1, p, "the strategy module must define"))
    if problems or not (isinstance(sid, str) and isinstance(ver, int) and isinstance(warm, int)):
        return None  # (the types were checked above; this repeats them for the type checker)
    return StrategyInfo(sid, ver, warm)


def _check_analysis(tree: ast.Module, v: _Visitor) -> None:
    consts = _constants(tree)
    defs = {s.name: s for s in tree.body if isinstance(s, ast.ClassDef | ast.FunctionDef)}
    aid, ver, fn = consts.get("ANALYSIS_ID"), consts.get("VERSION"), defs.get("analyze")
    problems = [] if isinstance(aid, str) and _ID_RE.match(aid) else [
        "ANALYSIS_ID = '<analysis id>' (a literal matching [a-z][a-z0-9_]*)"]
    if not (isinstance(ver, int) and not isinstance(ver, bool) and ver >= 1):
        problems.append("VERSION = <int >= 1>")
    if not isinstance(defs.get("Params"), ast.ClassDef):
        problems.append("class Params (a frozen pydantic model, every field with a default)")
    if not (isinstance(fn, ast.FunctionDef) and len(fn.args.posonlyargs + fn.args.args) >= 2):
        problems.append("def analyze(frames, params) at module level")
    for p in problems:
        v.findings.append(Finding("contract", 1, 1, p, "the analysis module must define"))


def check_source(source: str, kind: str = "strategy") -> tuple[list[Finding], StrategyInfo | None]:
    """Run every rule; return the findings (empty = clean) and the contract constants if valid."""
    if len(source.encode("utf-8", "replace")) > MAX_SOURCE_BYTES:
        return [
            Finding(
                "size", 1, 1, f"{len(source)} chars", f"source exceeds {MAX_SOURCE_BYTES} bytes"
            )
        ], None
    try:
        tree = ast.parse(source, feature_version=(3, 11))
    except SyntaxError as e:
        text = (e.text or "").strip()[:80]
        return [
            Finding("syntax", e.lineno or 0, e.offset or 0, text, f"syntax error: {e.msg}")
        ], None
    v = _Visitor(source)
    v.visit(tree)
    _check_top_level(tree, v)
    info = _check_contract(tree, v) if kind == "strategy" else None
    if kind == "analysis":
        _check_analysis(tree, v)
    v.findings.sort(key=lambda f: (f.line, f.col))
    return v.findings, (info if not v.findings else None)


def require_clean(source: str, kind: str = "strategy") -> StrategyInfo | None:
    """Raise StrategyError listing the findings unless ``source`` passes the gate."""
    findings, info = check_source(source, kind)
    if findings:
        lines = [str(f) for f in findings[:MAX_REPORTED]]
        more = len(findings) - MAX_REPORTED
        if more > 0:
            lines.append(f"... and {more} more")
        raise StrategyError(f"{kind} source rejected by the static gate:\n" + "\n".join(lines))
    return info
