"""Render a commented ``trading_brain.toml`` from validated Settings (written by `init`).

Contract:
- ``render(settings)`` walks ``Settings.model_fields`` recursively; nothing is listed by hand.
  Every field becomes ``key = value`` (values formatted by ``tomli_w``) under a comment made
  from its ``Field(description=…)``, its allowed values (``Literal``: "one of …"; a strict bool:
  "true or false") and its bounds (``ge``/``gt``/``le``/``lt``, lengths). A nested model is a
  ``[section]`` (its class docstring's first line is the section comment), a dict of values a
  ``[section.key]`` table; a field that is unset (``None``) is written commented out.
- Loading the text back (``settings.parse_settings(tomllib.loads(text))``) gives settings equal
  to the ones rendered, for every section (tested with non-default values everywhere).
- Secrets are never written: the settings models hold none, and a ``SecretStr`` field would be
  refused here (``ValueError``). The header names the secrets' environment variables
  (``Secrets.model_fields``) instead.
"""

from __future__ import annotations

import textwrap
import types
from typing import Literal, Union, get_args, get_origin

import annotated_types as at
import tomli_w
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from trading_brain.settings import Secrets, Settings

WIDTH = 100


def _v(value: object) -> str:
    """``value`` as a TOML value (tomli_w's formatting)."""
    return tomli_w.dumps({"x": value}).split("=", 1)[1].strip()


def _line(name: str, value: object) -> str:
    """``key = value``; a list of scalars on one line when that fits in ``WIDTH``."""
    if isinstance(value, list) and all(isinstance(x, str | int | float) for x in value):
        line = f"{_k(name)} = [" + ", ".join(_v(x) for x in value) + "]"
        if len(line) <= WIDTH:
            return line
    return f"{_k(name)} = {_v(value)}"


def _k(name: str) -> str:
    """``name`` as a TOML key (quoted when it needs to be)."""
    return tomli_w.dumps({name: 0}).split("=", 1)[0].strip()


def _comment(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH - len(indent) - 2, initial_indent=f"{indent}# ",
                         subsequent_indent=f"{indent}# ", break_on_hyphens=False)


def _strip_none(annotation: object) -> tuple[object, bool]:
    """``X | None`` → (X, True); anything else → (annotation, False)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(annotation)):
            return args[0], True
    return annotation, False


def _literal(annotation: object) -> tuple[object, ...] | None:
    return get_args(annotation) if get_origin(annotation) is Literal else None


def _allowed(annotation: object) -> str:
    """What the type allows, in words ("" when a plain number or string says it all)."""
    inner, _ = _strip_none(annotation)
    values = _literal(inner)
    if values is not None:
        return "one of " + ", ".join(_v(v) for v in values)
    if inner is bool:
        return "true or false"
    if get_origin(inner) is list:
        (item,) = get_args(inner) or (object,)
        values = _literal(item)
        if values is not None:
            return "a list of " + ", ".join(_v(v) for v in values)
    return ""


_BOUNDS: tuple[tuple[type, str, str], ...] = (
    (at.Gt, "gt", ">"), (at.Ge, "ge", "≥"), (at.Lt, "lt", "<"), (at.Le, "le", "≤"),
    (at.MinLen, "min_length", "at least"), (at.MaxLen, "max_length", "at most"))


def _bounds(info: FieldInfo) -> str:
    out: list[str] = []
    for meta in info.metadata:
        for kind, attr, word in _BOUNDS:
            if isinstance(meta, kind):
                value = getattr(meta, attr)
                out.append(f"{word} {value} item{'s' if value != 1 else ''}"
                           if attr.endswith("length") else f"{word} {_v(value)}")
    return ", ".join(out)


def _field_comment(info: FieldInfo) -> str:
    parts = [info.description or ""]
    allowed, bounds = _allowed(info.annotation), _bounds(info)
    rule = "; ".join(p for p in (allowed, bounds) if p)
    if rule:
        parts.append(f"({rule})")
    return " ".join(p for p in parts if p)


def _example(annotation: object) -> str:
    """A placeholder for an unset field's commented-out line."""
    inner, _ = _strip_none(annotation)
    values = _literal(inner)
    if values:
        return _v(values[0])
    placeholders: dict[object, str] = {int: "0", float: "0.0", str: '""', bool: "false"}
    return placeholders.get(inner, "[]")


def _section(model: BaseModel, path: str) -> list[str]:
    """The lines of ``model``'s own keys, then its sub-tables (TOML needs keys first)."""
    fields = type(model).model_fields
    lines: list[str] = []
    tables: list[tuple[str, BaseModel | dict[object, object]]] = []
    for name, info in fields.items():
        value = getattr(model, name)
        if isinstance(value, SecretStr) or _strip_none(info.annotation)[0] is SecretStr:
            raise ValueError(f"{path}{name} is a secret: secrets never go into the TOML file")
        if isinstance(value, BaseModel | dict):
            tables.append((name, value))
            continue
        lines += _comment(_field_comment(info))
        if value is None:
            if info.get_default(call_default_factory=True) is not None:
                raise ValueError(f"{path}{name} = None cannot be written (its default is not)")
            lines.append(f"# {_k(name)} = {_example(info.annotation)}  (unset)")
        else:
            lines.append(_line(name, value))
    for name, value in tables:
        header = f"{path}{_k(name)}"
        lines += ["", f"[{header}]"]
        if isinstance(value, BaseModel):
            doc = (type(value).__doc__ or "").strip().splitlines()
            described = fields[name].description
            lines += _comment(described or (doc[0] if doc else ""))
            lines += _section(value, f"{header}.")
        else:
            described = fields[name].description or ""
            lines += _comment(f"{described} ({_allowed_dict(fields[name])})".strip())
            lines += [_line(str(k), v) for k, v in value.items()]
    return lines


def _allowed_dict(info: FieldInfo) -> str:
    args = get_args(info.annotation)
    keys = _literal(args[0]) if len(args) == 2 else None
    vals = _allowed(args[1]) if len(args) == 2 else ""
    out = [f"keys: one of {', '.join(_v(k) for k in keys)}" if keys else "",
           f"values: {vals}" if vals else ""]
    return "; ".join(p for p in out if p)


def render(s: Settings) -> str:
    """Return the commented TOML text; loading it back gives ``s`` (tested)."""
    secrets = ", ".join(name.upper() for name in Secrets.model_fields)
    lines = [
        "# Trading Brain configuration (validated at every start; unknown keys are rejected).",
        *_comment(f"Secrets never go here: set {secrets} in the environment or in .env beside "
                  "this file."),
        "",
        *_section(s, ""),
        "",
    ]
    return "\n".join(lines)
