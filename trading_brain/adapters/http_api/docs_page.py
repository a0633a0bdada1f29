"""``/docs``: the API's reference as one self-contained HTML page, rendered from its OpenAPI schema.

FastAPI's default ``/docs`` is Swagger UI, whose JavaScript and CSS come from a CDN: on the
machines this API is meant for (a trading box, often offline or behind a proxy) it showed a
blank page. This page needs nothing but the schema: per operation the method, path, summary,
description, query parameters (name, type, required or default, constraints, description) and
whether the bearer token is needed; no script, no external resource. Every string from the
schema is HTML-escaped. ``/openapi.json`` stays the machine-readable form (import it into any
OpenAPI client to try requests).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222}code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
h3{font-family:monospace;font-size:1.05rem}.m{color:#fff;background:#2b6cb0;padding:.1rem .4rem;
border-radius:3px;margin-right:.4rem}table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
.lock{color:#a00;font-size:.9rem}"""


def _type(schema: Mapping[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    kind = str(schema.get("type", "any"))
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else kind


def _limits(schema: Mapping[str, Any]) -> str:
    marks = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
             "exclusiveMaximum": "<", "minLength": "length >=", "maxLength": "length <="}
    parts = [f"{sign} {schema[key]}" for key, sign in marks.items() if key in schema]
    for alt in schema.get("anyOf", []):
        parts += [f"{sign} {alt[key]}" for key, sign in marks.items() if key in alt]
    return ", ".join(parts)


def _parameters(params: list[Mapping[str, Any]]) -> str:
    if not params:
        return "<p>No parameters.</p>"
    rows = []
    for p in params:
        schema = p.get("schema", {})
        need = "required" if p.get("required") else \
            f"default {escape(repr(schema['default']))}" if "default" in schema else "optional"
        desc = p.get("description") or schema.get("description") or ""
        rows.append(f"<tr><td><code>{escape(str(p.get('name')))}</code></td>"
                    f"<td>{escape(str(p.get('in', '')))}</td><td>{escape(_type(schema))}</td>"
                    f"<td>{need}</td><td>{escape(_limits(schema))}</td>"
                    f"<td>{escape(str(desc))}</td></tr>")
    return ("<table><tr><th>name</th><th>in</th><th>type</th><th>required</th>"
            "<th>limits</th><th>description</th></tr>" + "".join(rows) + "</table>")


def render_docs(schema: Mapping[str, Any]) -> str:
    """The HTML page of ``schema`` (an OpenAPI 3 document, as ``FastAPI.openapi()`` returns)."""
    info = schema.get("info", {})
    title = escape(str(info.get("title", "API")))
    by_tag: dict[str, list[str]] = {}
    for path, ops in sorted(schema.get("paths", {}).items()):
        for method, op in ops.items():
            secured = bool(op.get("security"))
            lock = '<span class="lock">bearer token required</span>' if secured else \
                '<span>public</span>'
            body = (f'<h3><span class="m">{escape(method.upper())}</span>{escape(path)}</h3>'
                    f"<p><b>{escape(str(op.get('summary', '')))}</b> {lock}</p>"
                    f"<p>{escape(str(op.get('description', '')))}</p>"
                    + _parameters(list(op.get("parameters", []))))
            by_tag.setdefault(str((op.get("tags") or ["other"])[0]), []).append(body)
    sections = "".join(f"<h2>{escape(tag)}</h2>{''.join(ops)}"
                       for tag, ops in sorted(by_tag.items()))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style></head><body><h1>{title} "
            f"<small>v{escape(str(info.get('version', '')))}</small></h1>"
            f"<p>{escape(str(info.get('description', '')))}</p>"
            '<p>Machine-readable schema: <a href="/openapi.json">/openapi.json</a>.</p>'
            f"{sections}</body></html>")
