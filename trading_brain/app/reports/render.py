"""A report as a list of blocks, rendered as Markdown or as one self-contained HTML page.

Contract:
- blocks: ``Heading``, ``Para``, ``Bullets``, ``Table``, ``Chart`` (a chart is named; the
  renderer is given ``name -> (file name, PNG bytes)``);
- ``markdown(blocks, charts, inline=False)``: charts as ``![title](file.png)`` beside the
  Markdown file, or as ``data:image/png;base64`` URIs when ``inline`` (what the Dagster UI
  renders from asset metadata);
- ``html(title, blocks, charts)``: one HTML document, every chart embedded base64, styles
  inline; it references nothing outside itself (no scripts, fonts, links or remote images).
"""

from __future__ import annotations

import base64
import html as _html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Charts = Mapping[str, tuple[str, bytes]]  # name -> (file name, PNG)


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Chart:
    name: str
    title: str


Block = Heading | Para | Bullets | Table | Chart


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(blocks: Sequence[Block], charts: Charts, *, inline: bool = False) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {i}" for i in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_cell(h) for h in b.header) + " |",
                     "|" + "|".join("---" for _ in b.header) + "|"]
            lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in b.rows]
            out.append("\n".join(lines))
        elif b.name in charts:
            file, png = charts[b.name]
            out.append(f"![{b.title}]({_uri(png) if inline else file})")
    return "\n\n".join(out) + "\n"


_STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;
max-width:880px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:1px solid #ddd;padding-bottom:.3em}
h2{font-size:1.25em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f5f5f5}
img{max-width:100%;height:auto;display:block;margin:.6em 0}"""


def html(title: str, blocks: Sequence[Block], charts: Charts) -> str:
    e = _html.escape
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            body.append(f"<p>{e(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{e(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                           for r in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.name in charts:
            body.append(f'<img alt="{e(b.title)}" src="{_uri(charts[b.name][1])}">')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
