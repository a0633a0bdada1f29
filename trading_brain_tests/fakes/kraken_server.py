"""A local fake Kraken (REST + WebSocket v2) built from the real payloads in ``shared/data``.

Contract:
- ``with FakeKraken() as fk:`` starts an HTTP server (stdlib ``ThreadingHTTPServer`` in a thread)
  and a WS v2 server (``websockets`` asyncio server in a thread, see ``kraken_ws.py``), both bound
  to 127.0.0.1 on ephemeral ports: ``fk.rest_url`` / ``fk.ws_url``. Leaving the block stops both.
- Routing is a table ``ROUTES[(http_method, path)] -> handler(state, params) -> result``; a
  handler raises ``KrakenReject([...])`` for an API error (HTTP 200 + ``{"error": [...]}``, no
  ``result``, as Kraken does). Unknown paths answer ``EGeneral:Unknown method``. A later issue
  adds ``POST /0/private/...`` handlers (AddOrder, QueryOrders, Balance…) over the same shared
  ``KrakenState`` (add order books/balances there) and registers them in ``ROUTES``.
- Private routes (``kraken_private.py``, installed into ``ROUTES`` at import): every
  ``POST /0/private/*`` is authenticated first (key, signature over the raw body, nonce) against
  ``state.private``; see that module for balances, orders, fills and test controls.
- Public routes: Time, SystemStatus, AssetPairs (``pair`` filter, key/altname/wsname/v2 names),
  Ticker, OHLC like the venue: the window is the newest ``ohlc_max_rows`` rows of the series
  (721 as captured: 720 committed + the forming one) whatever ``since`` says — older rows are
  never served — and ``since`` only filters that window to rows opening after it; the final,
  forming row is always present; ``last`` = the newest committed row; bad ``interval`` →
  ``EGeneral:Invalid arguments:interval``. ``set_ohlc`` installs a longer series (see
  ``kraken_data.synthetic_ohlc``) so the 720-row limit bites.
- Faults, scripted per endpoint name (``"OHLC"``, ``"Ticker"``…, or ``"*"``) and consumed in
  order: ``fk.state.add_fault("OHLC", status=502)``, ``errors=["EService:Unavailable"]``,
  ``body=b"{not json"``, ``delay_s=2.0`` (a timeout for a short client timeout); ``times`` = how
  many requests it hits (None = until ``clear_faults``). ``after_handler=True`` runs the handler
  first (e.g. AddOrder is *accepted and recorded*), then delays/answers with the fault: "timeout
  after the order was accepted". Every request is logged in
  ``state.requests`` as ``(endpoint, params, monotonic_time)``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from trading_brain_tests.fakes import kraken_data, kraken_private

INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
XBT_DOGE = {"BTC": "XBT", "DOGE": "XDG"}


class KrakenReject(Exception):
    """Raised by a handler: answer HTTP 200 with ``{"error": errors}``."""

    def __init__(self, *errors: str) -> None:
        super().__init__(", ".join(errors))
        self.errors = list(errors)


@dataclass
class Fault:
    status: int | None = None
    errors: list[str] | None = None
    body: bytes | None = None
    delay_s: float = 0.0
    times: int | None = 1
    after_handler: bool = False


@dataclass
class KrakenState:
    """Everything the fake serves; shared by the REST and WS servers (guarded by ``lock``)."""

    pairs: dict[str, Any]
    tickers: dict[str, Any]
    ohlc_1m: dict[str, list[list[Any]]]
    server_time: int
    status: str
    ws_ticker: dict[str, Any]
    ws_ohlc: dict[str, Any]
    ws_ack: dict[str, Any]
    ohlc: dict[tuple[str, int], list[list[Any]]] = field(default_factory=dict)
    ohlc_max_rows: int = 721  # the real capture: 720 committed rows + the forming one
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    private: kraken_private.PrivateState = field(default_factory=kraken_private.PrivateState)

    @classmethod
    def from_real_payloads(cls) -> KrakenState:
        private = kraken_private.PrivateState.from_balances(
            kraken_data.load_rest("http_spot_balance"))
        return cls(**kraken_data.default_market(), private=private)

    # ---- scripting --------------------------------------------------------------------------

    def add_fault(self, endpoint: str, **kw: Any) -> None:
        with self.lock:
            self.faults.setdefault(endpoint, []).append(Fault(**kw))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, endpoint: str) -> Fault | None:
        with self.lock:
            for name in (endpoint, "*"):
                queue = self.faults.get(name) or []
                if queue:
                    f = queue[0]
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            queue.pop(0)
                    return f
        return None

    def calls(self, endpoint: str) -> list[tuple[str, dict[str, str], float]]:
        with self.lock:
            return [r for r in self.requests if r[0] == endpoint]

    def resolve_pair(self, name: str) -> str:
        """Pair key for a key, altname, wsname (``XBT/USD``) or v2 symbol (``BTC/USD``)."""
        n = name.strip().upper()
        for key, row in self.pairs.items():
            ws = str(row.get("wsname", ""))
            v2 = "/".join(_v2(p) for p in ws.split("/")) if ws else ""
            if n in (key.upper(), str(row.get("altname", "")).upper(), ws.upper(), v2.upper()):
                return key
        raise KrakenReject("EQuery:Unknown asset pair")

    def ohlc_series(self, key: str, interval: int) -> list[list[Any]]:
        with self.lock:
            if (key, interval) not in self.ohlc:
                if key not in self.ohlc_1m:
                    raise KrakenReject("EQuery:Unknown asset pair")
                self.ohlc[(key, interval)] = kraken_data.aggregate(self.ohlc_1m[key], interval)
            return self.ohlc[(key, interval)]

    def set_ohlc(self, key: str, interval: int, rows: list[list[Any]]) -> None:
        """Serve ``rows`` (oldest first, the last one forming) for ``key`` at ``interval``."""
        with self.lock:
            if key not in self.pairs:
                raise KeyError(f"no AssetPairs row for {key!r}")
            self.ohlc[(key, interval)] = rows

    def advance_ohlc(self, key: str, interval: int, row: list[Any] | None = None) -> list[Any]:
        """Commit the forming candle and start a new one (``row`` or a flat copy one step later)."""
        with self.lock:
            series = self.ohlc_series(key, interval)
            last = series[-1]
            new = row or [last[0] + interval * 60, last[4], last[4], last[4], last[4], "0.0",
                          "0.00000000", 0]
            series.append(new)
            self.server_time = max(self.server_time, new[0] + 1)
            return new


def _v2(code: str) -> str:
    return {v: k for k, v in XBT_DOGE.items()}.get(code, code)


# ---- public handlers ------------------------------------------------------------------------

def h_time(state: KrakenState, params: dict[str, str]) -> Any:
    t = state.server_time
    return {"unixtime": t, "rfc1123": time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(t))}


def h_system_status(state: KrakenState, params: dict[str, str]) -> Any:
    return {"status": state.status, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _pair_keys(state: KrakenState, params: dict[str, str], all_keys: list[str]) -> list[str]:
    if not params.get("pair"):
        return all_keys
    return [state.resolve_pair(p) for p in params["pair"].split(",")]


def h_asset_pairs(state: KrakenState, params: dict[str, str]) -> Any:
    return {k: state.pairs[k] for k in _pair_keys(state, params, list(state.pairs))}


def h_ticker(state: KrakenState, params: dict[str, str]) -> Any:
    keys = _pair_keys(state, params, list(state.tickers))
    if any(k not in state.tickers for k in keys):
        raise KrakenReject("EQuery:Unknown asset pair")
    return {k: state.tickers[k] for k in keys}


def h_ohlc(state: KrakenState, params: dict[str, str]) -> Any:
    if not params.get("pair"):
        raise KrakenReject("EGeneral:Invalid arguments:pair")
    key = state.resolve_pair(params["pair"])
    try:
        interval = int(params.get("interval", "1"))
        since = int(params["since"]) if params.get("since") else None
    except ValueError:
        raise KrakenReject("EGeneral:Invalid arguments") from None
    if interval not in INTERVALS:
        raise KrakenReject("EGeneral:Invalid arguments:interval")
    series = state.ohlc_series(key, interval)
    window = series[max(0, len(series) - state.ohlc_max_rows):]  # older rows: never served
    committed, forming = window[:-1], window[-1]
    rows = [r for r in committed if since is None or r[0] > since]
    last = committed[-1][0] if committed else forming[0] - interval * 60
    return {key: [*rows, forming], "last": last}


Handler = Callable[[KrakenState, dict[str, str]], Any]
ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/0/public/Time"): h_time,
    ("GET", "/0/public/SystemStatus"): h_system_status,
    ("GET", "/0/public/AssetPairs"): h_asset_pairs,
    ("GET", "/0/public/Ticker"): h_ticker,
    ("GET", "/0/public/OHLC"): h_ohlc,
}
kraken_private.install(ROUTES)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query))
        raw = b""
        if method == "POST":
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            params.update(parse_qsl(raw.decode()))
        state = self.server.state
        endpoint = url.path.rsplit("/", 1)[-1]
        with state.lock:
            state.requests.append((endpoint, params, time.monotonic()))
        fault = state.take_fault(endpoint)
        if fault and not fault.after_handler and self._fault(fault):
            return
        handler = ROUTES.get((method, url.path))
        try:
            if handler is None:
                raise KrakenReject("EGeneral:Unknown method")
            if url.path.startswith("/0/private/"):
                kraken_private.authenticate(state, url.path, self.headers, raw, params)
            payload: dict[str, Any] = {"error": [], "result": handler(state, params)}
        except KrakenReject as e:
            payload = {"error": e.errors}
        if fault and fault.after_handler and self._fault(fault):
            return
        self._send(200, json.dumps(payload).encode())

    def _fault(self, fault: Fault) -> bool:
        """Apply a fault; True when it answered (or dropped) instead of the handler's result."""
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.status or fault.body is not None or fault.errors:
            body = fault.body if fault.body is not None else json.dumps(
                {"error": fault.errors or [f"HTTP {fault.status}"]}).encode()
            self._send(fault.status or 200, body)
            return True
        return False

    def _send(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: KrakenState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class FakeKraken:
    """The fake venue: ``rest_url``, ``ws_url``, ``state`` and ``ws`` controls."""

    def __init__(self, state: KrakenState | None = None, *, heartbeat_s: float = 1.0) -> None:
        from trading_brain_tests.fakes.kraken_ws import FakeKrakenWS

        self.state = state or KrakenState.from_real_payloads()
        self._http = _Server(self.state)
        self._thread = threading.Thread(target=self._http.serve_forever, name="fake-kraken-http",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self.ws = FakeKrakenWS(self.state, heartbeat_s=heartbeat_s)

    @property
    def rest_url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def ws_url(self) -> str:
        return self.ws.url

    def start(self) -> FakeKraken:
        self._thread.start()
        self.ws.start()
        return self

    def stop(self) -> None:
        self.ws.stop()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeKraken:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
