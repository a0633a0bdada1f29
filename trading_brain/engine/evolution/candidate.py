"""Tier-1 candidates: a parent's source with new ``Params`` defaults, by a code transform (pure).

``derive_source(source, params, space=…, new_version=…, note=…)`` returns the text of a new
version of the parent's family:

- the module is parsed with ``ast``; the top-level ``class Params`` is found and, for each named
  field, the node of its default (``name: T = Field(DEFAULT, …)``, ``Field(default=DEFAULT, …)``
  or ``name: T = DEFAULT``) is located; the top-level ``VERSION = N`` likewise;
- only those expressions are replaced, spliced by their node positions (UTF-8 byte offsets, as
  ``ast`` reports them); every other byte of the file stays as it was. One comment line naming
  the parent and the changes is put first (``note``), so a reader of the file sees its origin;
- the result is parsed again and must equal the original tree with exactly those constants
  replaced (``ast.dump``), and its defaults must read back as the requested values.

Refused with ``StrategyError`` (nothing is produced): a name that is not a field of ``Params``
or not in the declared search space ``space`` (the version's JSON schema, as the registry stores
it in ``param_space``); a value of the wrong type (an integer field takes an integral number, a
boolean field only a bool) or outside the schema's bounds (``minimum``/``maximum``/exclusive
ones, ``enum``); a field whose default is not a literal (``default_factory``, a name); a source
without ``class Params`` or ``VERSION``; a ``new_version`` not above the parent's. Cross-field
rules (``fast < slow``) are the strategy's own validator: registration runs it (gate 1).
"""

from __future__ import annotations

import ast
import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from trading_brain.errors import StrategyError

Value = bool | int | float


@dataclass(frozen=True)
class Splice:
    """Replace ``source[start:end]`` (byte offsets) by ``text``."""

    start: int
    end: int
    text: str


def _offsets(source: bytes) -> list[int]:
    starts, pos = [0], 0
    for line in source.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def _span(node: ast.expr, starts: list[int]) -> tuple[int, int]:
    if node.end_lineno is None or node.end_col_offset is None:
        raise StrategyError("cannot locate a default in the source")
    return (starts[node.lineno - 1] + node.col_offset,
            starts[node.end_lineno - 1] + node.end_col_offset)


def _is_field_call(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "Field") or (
        isinstance(f, ast.Attribute) and f.attr == "Field")


def _default_node(value: ast.expr, name: str) -> ast.expr:
    if _is_field_call(value):
        assert isinstance(value, ast.Call)
        if value.args:
            return value.args[0]
        for kw in value.keywords:
            if kw.arg == "default":
                return kw.value
        raise StrategyError(f"Params.{name} has no literal default to change")
    return value


def _literal(node: ast.expr, name: str) -> Value:
    try:
        got = ast.literal_eval(node)
    except ValueError:
        raise StrategyError(f"Params.{name}: its default is not a literal") from None
    if isinstance(got, bool | int | float):
        return got
    raise StrategyError(f"Params.{name}: its default is not a number or a boolean")


def _params_class(tree: ast.Module) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Params":
            return node
    raise StrategyError("the source has no top-level class Params")


def field_defaults(tree: ast.Module) -> dict[str, ast.expr]:
    """Default-value node of each annotated field of ``class Params``."""
    out: dict[str, ast.expr] = {}
    for node in _params_class(tree).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.value is not None:
            out[node.target.id] = _default_node(node.value, node.target.id)
    return out


def version_node(tree: ast.Module) -> ast.expr:
    """The value node of the top-level ``VERSION = N``."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "VERSION":
            return node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.target.id == "VERSION" and node.value is not None:
            return node.value
    raise StrategyError("the source has no top-level VERSION = N")


def read_defaults(source: str) -> tuple[int, dict[str, Value]]:
    """(VERSION, literal defaults of ``Params``) read from the source without running it."""
    tree = _parse(source)
    version = _literal(version_node(tree), "VERSION")
    if isinstance(version, bool) or not isinstance(version, int):
        raise StrategyError("VERSION must be an integer")
    return version, {k: _literal(v, k) for k, v in field_defaults(tree).items()}


def _parse(source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as e:
        raise StrategyError(f"the source does not parse: {e.msg} (line {e.lineno})") from None


def check_value(name: str, value: object, spec: Mapping[str, object]) -> Value:
    """``value`` fitted to the field's schema (``12.0`` for an integer field is ``12``)."""
    kind = spec.get("type")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise StrategyError(f"parameter {name!r}: {value!r} is not true/false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise StrategyError(f"parameter {name!r}: {value!r} is not a finite number")
    if kind == "integer":
        if not float(value).is_integer():
            raise StrategyError(f"parameter {name!r}: {value!r} is not an integer")
        value = int(value)
    elif kind != "number":
        raise StrategyError(f"parameter {name!r} has type {kind!r}; only numbers and booleans "
                            "are tuned")
    enum = spec.get("enum")
    if isinstance(enum, list) and value not in enum:
        raise StrategyError(f"parameter {name!r}: {value!r} is not one of {enum}")
    for key, bad in (("minimum", lambda b: value < b), ("maximum", lambda b: value > b),
                     ("exclusiveMinimum", lambda b: value <= b),
                     ("exclusiveMaximum", lambda b: value >= b)):
        bound = spec.get(key)
        if isinstance(bound, int | float) and bad(bound):
            raise StrategyError(f"parameter {name!r}: {value!r} is outside the declared "
                                f"search space ({key} {bound})")
    return value


def _fitted(params: Mapping[str, object], space: Mapping[str, object],
            defaults: Mapping[str, ast.expr]) -> dict[str, Value]:
    props = space.get("properties")
    if not isinstance(props, Mapping):
        raise StrategyError("the parent has no declared search space (param_space)")
    if not params:
        raise StrategyError("a tier-1 candidate needs at least one parameter")
    out: dict[str, Value] = {}
    for name, value in params.items():
        spec = props.get(name)
        if name not in defaults or not isinstance(spec, Mapping):
            known = ", ".join(sorted(set(defaults) & set(props)))
            raise StrategyError(f"unknown parameter {name!r}; the search space has: {known}")
        _literal(defaults[name], name)
        out[name] = check_value(name, value, spec)
    return out


def _text(value: Value) -> str:
    return repr(value)


def derive_source(source: str, params: Mapping[str, object], *, space: Mapping[str, object],
                  new_version: int, note: str = "") -> str:
    """The parent's ``source`` with ``params`` as new ``Params`` defaults and ``VERSION`` bumped."""
    tree = _parse(source)
    defaults = field_defaults(tree)
    values = _fitted(params, space, defaults)
    vnode = version_node(tree)
    old_version = _literal(vnode, "VERSION")
    if isinstance(new_version, bool) or not isinstance(new_version, int) \
            or not isinstance(old_version, int) or new_version <= old_version:
        raise StrategyError(f"new version {new_version!r} must be above the parent's "
                            f"{old_version!r}")
    raw = source.encode("utf-8")
    starts = _offsets(raw)
    splices = [Splice(*_span(vnode, starts), str(new_version))]
    splices += [Splice(*_span(defaults[n], starts), _text(v)) for n, v in values.items()]
    out = raw
    for s in sorted(splices, key=lambda s: s.start, reverse=True):
        out = out[:s.start] + s.text.encode("utf-8") + out[s.end:]
    text = out.decode("utf-8")
    _verify(tree, text, values, new_version)
    if note:
        line = " ".join(note.split())
        text = f"# {line}\n{text}"
    return text


def _verify(original: ast.Module, text: str, values: Mapping[str, Value], version: int) -> None:
    """The new tree equals the old one with exactly the intended constants replaced."""
    new = _parse(text)
    expected = copy.deepcopy(original)
    nodes = field_defaults(expected)
    for name, value in values.items():
        _replace(expected, nodes[name], value)
    _replace(expected, version_node(expected), version)
    if ast.dump(expected) != ast.dump(new):
        raise StrategyError("the transform changed more than the defaults and VERSION")
    got_version, got = read_defaults(text)
    if got_version != version or any(got[n] != v or type(got[n]) is not type(v)
                                     for n, v in values.items()):
        raise StrategyError("the transformed defaults do not read back as requested")


def _replace(tree: ast.Module, target: ast.expr, value: Value) -> None:
    new = ast.parse(_text(value), mode="eval").body
    for parent in ast.walk(tree):
        for field, old in ast.iter_fields(parent):
            if old is target:
                setattr(parent, field, new)
                return
            if isinstance(old, list) and any(item is target for item in old):
                old[old.index(target)] = new
                return
    raise StrategyError("internal: a default node was not found in its tree")


def changes(before: Mapping[str, Value], after: Mapping[str, Value]) -> str:
    """``fast 9 -> 20, slow 21 -> 60`` for the names whose value differs."""
    return ", ".join(f"{k} {before.get(k)!r} -> {v!r}" for k, v in after.items()
                     if before.get(k) != v) or "no change"


FAMILY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def tree_constant(tree: ast.Module, name: str) -> object:
    """The value of the last top-level ``NAME = <literal constant>`` of a parsed module (None:
    no such assignment, or its value is not a plain constant)."""
    found: object = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name \
                and isinstance(node.value, ast.Constant):
            found = node.value.value
    return found


def module_constant(source: str, name: str) -> object:
    """``tree_constant`` of a source (``ast.parse``; nothing runs; SyntaxError propagates)."""
    return tree_constant(ast.parse(source), name)


def read_identity(source: str) -> tuple[str, int]:
    """(STRATEGY_ID, VERSION) of a source, read with ``ast`` (nothing runs); StrategyError when
    either is missing or malformed (a family is ``[a-z][a-z0-9_]*``, a version >= 1)."""
    tree = _parse(source)
    family = tree_constant(tree, "STRATEGY_ID")
    version = _literal(version_node(tree), "VERSION")
    if not isinstance(family, str) or not FAMILY.fullmatch(family):
        raise StrategyError("the source has no STRATEGY_ID = '<family>' ([a-z][a-z0-9_]*)")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StrategyError("VERSION must be an integer >= 1")
    return family, version
