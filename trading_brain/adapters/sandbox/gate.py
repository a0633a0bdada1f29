"""Static gate (sandbox layer L1): AST rules that reject strategy source early with precise messages.

This is a LINTER, not a security boundary (see reference/sandbox.md §1): the OS-locked worker is the
boundary. Its job is to turn common mistakes and obvious escapes into messages an (AI) author can
act on: every ``Finding`` names the rule, line, column and the offending source text.

Rules: size cap (100 kB); Python 3.11 syntax; top level holds only imports, ``class``/``def``,
literal constants and docstrings; an import allowlist (``ALLOWED_IMPORTS``, no relative or star
imports); no ``async``/``global``/``nonlocal``/``except*``; forbidden builtins (``FORBIDDEN_NAMES``)
and dunder names; attributes starting with ``_`` (except ``__init__``/``__post_init__``/``__name__``),
frame/generator/code attributes and the known I/O entry points of numpy/polars/pydantic/zoneinfo
(``FORBIDDEN_ATTRS``/``FORBIDDEN_ATTR_PREFIXES``); string constants containing ``__``; string
annotations (a string in an annotation is evaluated as code by ``typing.get_type_hints``,
pydantic or ``functools.singledispatch``, where this linter cannot see it) and the names that
evaluate annotations (``get_type_hints``, ``ForwardRef``, ``create_model``...). Values inside
``Literal[...]`` and the metadata of ``Annotated[...]`` are not types and stay allowed, and so does
``from __future__ import annotations``: it turns annotations into strings at run time, but their
SOURCE is ordinary code that every rule here checks. For
``kind="strategy"`` the contract of ``domain/strategy.py``: module-level ``STRATEGY_ID`` (str),
``VERSION`` (int >= 1), ``WARMUP_BARS`` (int >= 1: the scan passes that many bars), ``class Params`` and ``def generate(bars, params)``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from trading_brain.errors import StrategyError

MAX_SOURCE_BYTES = 100_000
MAX_REPORTED = 25
ALLOWED_IMPORTS = frozenset(
    "math statistics numpy polars pydantic dataclasses typing collections functools itertools "
    "datetime zoneinfo __future__ trading_brain.engine.indicators".split()
)
FORBIDDEN_NAMES = frozenset(
    "eval exec compile open __import__ getattr setattr delattr globals locals vars type object "
    "breakpoint input memoryview help exit quit dir get_type_hints ForwardRef create_model "
    "get_annotations".split()
)
ALLOWED_DUNDER_ATTRS = frozenset({"__init__", "__post_init__", "__name__"})
FORBIDDEN_ATTRS = frozenset(
    # reaching the interpreter
    "sys os modules builtins ctypes ctypeslib subprocess system popen environ load_module "
    "exec_module mro format format_map "
    # evaluating annotations (strings in them are code)
    "get_type_hints ForwardRef evaluate_forward_ref get_annotations create_model "
    # numpy I/O and native access
    "load save savez savez_compressed savetxt loadtxt genfromtxt fromfile tofile fromregex memmap "
    "open_memmap lib testing f2py distutils DataSource mrecords openfile fromtextfile "
    "recfromtxt recfromcsv ndfromtxt mafromtxt show_config "
    # polars I/O, SQL, plugins, remote catalogs
    "sql SQLContext sql_expr plugins io serialize deserialize register_plugin_function dump dumps "
    "load_from_file save_to_file show_graph Catalog "
    # pydantic (v1 API) and zoneinfo file readers
    "parse_file parse_file_as schema_json_of reset_tzpath from_file".split()
)
FORBIDDEN_ATTR_PREFIXES = (
    "read_",
    "scan_",
    "write_",
    "sink_",
    "f_",
    "gi_",
    "cr_",
    "ag_",
    "tb_",
    "co_",
    "Credential",
)
ANNOTATION_EVALUATORS = frozenset(
    "get_type_hints ForwardRef evaluate_forward_ref get_annotations create_model".split()
)
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


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
        for const in _string_annotations(node):
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


def _is_named(node: ast.expr, name: str) -> bool:
    return (isinstance(node, ast.Name) and node.id == name) or (
        isinstance(node, ast.Attribute) and node.attr == name)


def _string_annotations(node: ast.expr | None) -> list[ast.Constant]:
    """The string constants of an annotation that typing would evaluate as forward references
    (not ``Literal`` values, not ``Annotated`` metadata, not arguments of calls)."""
    if node is None:
        return []
    if isinstance(node, ast.Constant):
        return [node] if isinstance(node.value, str) else []
    if isinstance(node, ast.Subscript):
        if _is_named(node.value, "Literal"):
            return []
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if _is_named(node.value, "Annotated"):
            args = args[:1]
        return [c for a in args for c in _string_annotations(a)]
    if isinstance(node, ast.BinOp):
        return _string_annotations(node.left) + _string_annotations(node.right)
    if isinstance(node, ast.Tuple | ast.List):
        return [c for e in node.elts for c in _string_annotations(e)]
    return []


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
    return None if problems else StrategyInfo(sid, ver, warm)  # type: ignore[arg-type]


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
        raise StrategyError("strategy source rejected by the static gate:\n" + "\n".join(lines))
    return info
