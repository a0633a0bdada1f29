"""Helpers shared by CLI commands: the home, JSON output, progress bars."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import click

from trading_brain.errors import ConfigError
from trading_brain.settings import Home

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


def home_of(ctx: click.Context) -> Home:
    return Home(ctx.obj.get("home") if ctx.obj else None)


def require_initialised(home: Home) -> None:
    if not home.is_initialised():
        raise ConfigError(f"{home.root} is not a Trading Brain home; "
                          "run `trading-brain init` first")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_default, sort_keys=False))


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _show(item: str | None) -> str | None:
    return item


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int, str], None]]:
    """A click progress bar fed by ``(done, total, item)`` callbacks; silent when disabled."""
    state: dict[str, Any] = {"bar": None, "done": 0}

    def update(done: int, total: int, item: str) -> None:
        if not enabled:
            return
        if state["bar"] is None:
            stderr = click.get_text_stream("stderr")  # pyright: ignore[reportCallIssue] # click types it as object
            state["bar"] = click.progressbar(length=total, label=label, file=stderr,
                                             item_show_func=_show, show_pos=True)
            state["bar"].__enter__()
        state["bar"].update(done - state["done"], item)
        state["done"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
