"""Render charts for asset metadata and reports: PNG bytes from an equity curve (matplotlib, Agg).

``equity_png`` draws equity and the drawdown beneath it; ``markdown_image`` embeds PNG bytes in
Markdown as a data URI (the Dagster UI renders it in the materialisation's metadata);
``compact_png`` re-encodes a chart with a small palette (a line chart has few colours: about a
quarter of the bytes, same pixels size) for metadata stored with every event.
"""

from __future__ import annotations

import base64
import io

import polars as pl


def equity_png(equity: pl.DataFrame, title: str, *, width: float = 8.0, height: float = 4.0
               ) -> bytes:
    """PNG of ``equity`` (columns ts, equity) with its drawdown; empty curves give a blank chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, dd_ax) = plt.subplots(2, 1, figsize=(width, height), sharex=True,
                                    gridspec_kw={"height_ratios": [3, 1]})
    try:
        if equity.height:
            ts = equity["ts"].to_list()
            eq = equity["equity"].to_numpy()
            peak = pl.Series(eq).cum_max().to_numpy()
            ax.plot(ts, eq, color="#1f77b4", linewidth=1.0)
            dd_ax.fill_between(ts, (eq / peak - 1) * 100, 0, color="#d62728", alpha=0.5)
        ax.set_title(title)
        ax.set_ylabel("equity")
        dd_ax.set_ylabel("drawdown %")
        ax.grid(alpha=0.3)
        dd_ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        return buf.getvalue()
    finally:
        plt.close(fig)


def compact_png(png: bytes, colors: int = 32) -> bytes:
    """``png`` quantized to ``colors`` palette entries (transparency kept), optimised."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        small = im.quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
        buf = io.BytesIO()
        small.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def markdown_table(rows: list[dict], columns: list[str], limit: int = 50) -> str:
    """A Markdown table of the first ``limit`` rows (floats to 6 significant digits)."""
    def cell(v: object) -> str:
        if v is None:
            return "—"
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(cell(r.get(c)) for c in columns) + " |\n"
                   for r in rows[:limit])
    more = f"\n… {len(rows) - limit} more rows\n" if len(rows) > limit else ""
    return head + body + more


def compare_png(curves: dict[str, pl.DataFrame], title: str, *, width: float = 8.0,
                height: float = 4.0) -> bytes:
    """PNG of several equity curves (columns ts, equity) on one axis, labelled by their keys."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    try:
        for label, eq in curves.items():
            if eq.height:
                ax.plot(eq["ts"].to_list(), eq["equity"].to_numpy(), linewidth=1.0, label=label)
        ax.set_title(title)
        ax.set_ylabel("equity")
        ax.grid(alpha=0.3)
        if curves:
            ax.legend(loc="best")
        fig.autofmt_xdate()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        return buf.getvalue()
    finally:
        plt.close(fig)
