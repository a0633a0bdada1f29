"""`trading-brain api`: serve the read-only data API of a home on 127.0.0.1 (off by default).

Contract:
- the bearer token comes from the environment variable ``TRADING_BRAIN_API_TOKEN`` only (not
  from the settings file, so it is never written into a home); missing or blank refuses to
  start (``ConfigError``, one line);
- the home must be initialised. At start the warehouse's schema is brought up to date once
  (``Store.open``: the pending numbered migrations, in one short read-write connection; a
  warehouse written by newer code is refused, one line) so every query finds its tables and
  columns even when the code was upgraded and ``api`` starts before ``up``; from then on the
  warehouse is only opened read-only, in short connections (``adapters.http_api.warehouse``);
- the app binds 127.0.0.1 only: reach it from elsewhere through an SSH tunnel or a TLS proxy;
  a port already in use is a ``ConfigError`` before anything is served;
- ``serve`` blocks until SIGINT/SIGTERM (uvicorn's graceful shutdown).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb.connection import DEFAULT_LOCK_BUDGET_S
from trading_brain.adapters.http_api.app import create_app
from trading_brain.adapters.http_api.warehouse import ReadOnlyWarehouse
from trading_brain.errors import ConfigError
from trading_brain.settings import Home, load_settings

TOKEN_ENV = "TRADING_BRAIN_API_TOKEN"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class ApiOptions:
    port: int = 8765
    lock_budget_s: float = 2.0  # how long a read waits for the writer's lock before a 503
    cache_ttl_s: float = 1.0  # identical reads within this window share one warehouse read
    poll_s: float = 1.0  # event stream: how often it looks for new rows
    heartbeat_s: float = 15.0  # event stream: a comment line after this long without events
    access_log: bool = False


def api_token(environ: Mapping[str, str] = os.environ) -> str:
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"{TOKEN_ENV} is not set: the API refuses to start without a bearer "
                          "token (export it, then run `trading-brain api` again)")
    return token


def build_app(home: Home, token: str, opts: ApiOptions) -> FastAPI:
    if not home.is_initialised():
        raise ConfigError(f"{home.root} is not a Trading Brain home; "
                          "run `trading-brain init` first")
    s = load_settings(home)
    Store.open(home.warehouse, lock_budget_s=max(opts.lock_budget_s, DEFAULT_LOCK_BUDGET_S))
    info = {"market": s.market, "execution": s.execution,
            "live_orders": bool(s.allow_live_orders), "symbols": list(s.symbols)}
    wh = ReadOnlyWarehouse(home.warehouse, lock_budget_s=opts.lock_budget_s,
                           cache_ttl_s=opts.cache_ttl_s)
    return create_app(wh, token, info, poll_s=opts.poll_s, heartbeat_s=opts.heartbeat_s)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {HOST}:{port}: {e.strerror or e}") from None
    return sock


def serve(home: Home, opts: ApiOptions, environ: Mapping[str, str] = os.environ,
          announce: Callable[[str], None] = print) -> None:
    """Check the token and the home, bind the port, then serve until stopped."""
    import uvicorn

    app = build_app(home, api_token(environ), opts)
    sock = _bind(opts.port)
    config = uvicorn.Config(app, log_level="warning", access_log=opts.access_log,
                            timeout_graceful_shutdown=3, lifespan="off")
    announce(f"api: serving http://{HOST}:{sock.getsockname()[1]} "
             f"(docs at /docs; Ctrl-C stops)")
    uvicorn.Server(config).run(sockets=[sock])
