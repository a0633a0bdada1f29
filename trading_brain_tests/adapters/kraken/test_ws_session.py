"""The WebSocket session base: one back-off policy over websockets' reconnecting iterator.

A loopback server (websockets' sync server on 127.0.0.1) plays the venue; a small subclass
records what the base does. No wall-clock assertions: every wait returns as soon as its
condition holds.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.sync.server import Server, ServerConnection, serve

from trading_brain.adapters.backoff import Backoff, backoff_delay
from trading_brain.adapters.kraken.ws_session import SessionRefused, WsSession
from trading_brain.errors import DataError

WAIT = 5.0


class Venue:
    """Accepts connections; each one answers ``script[n]`` (or the last entry) then closes."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.accepted = 0
        self._server: Server = serve(self._handle, "127.0.0.1", 0, close_timeout=0.2)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handle(self, ws: ServerConnection) -> None:
        n, self.accepted = self.accepted, self.accepted + 1
        reply = self.script[min(n, len(self.script) - 1)]
        ws.recv()  # the client's subscribe
        if reply != "drop":
            ws.send(reply)
        if reply == "ack-and-hold":
            ws.recv()  # until the client goes away

    def close(self) -> None:
        self._server.shutdown()


class Probe(WsSession):
    """Sends one message per session; ``ack``/``ack-and-hold`` reset the back-off; ``refuse`` ends
    the session as refused; ``bug`` raises something no session may raise."""

    thread_name = "probe-ws"

    def __init__(self, url: str, **kw: object) -> None:
        opts: dict = {"silence_s": 2.0, "backoff_base_s": 0.01, "backoff_max_s": 0.04,
                      "open_timeout_s": 1.0, "rng": random.Random(7)}
        opts.update(kw)
        super().__init__(url, **opts)
        self.cond = threading.Condition()
        self.attempts_seen: list[int] = []  # the back-off count at each new connection
        self.ends: list[str] = []

    def _connected(self) -> None:
        with self.cond:
            super()._connected()
            self.attempts_seen.append(self.backoff.attempt)
            self.cond.notify_all()

    async def _session(self, ws: ClientConnection) -> None:
        await ws.send("subscribe")
        reply = await ws.recv()
        if reply in ("ack", "ack-and-hold"):
            self.backoff.reset()
        if reply == "refuse":
            raise SessionRefused("refused")
        if reply == "bug":
            raise KeyError("a bug")
        if reply == "ack-and-hold":
            await ws.recv()  # held until the test stops the stream
        await ws.recv()  # the server closes: ConnectionClosed ends the session

    def _ended(self, exc: Exception) -> None:
        with self.cond:
            self.ends.append(type(exc).__name__)
            self.cond.notify_all()

    def wait(self, pred, timeout: float = WAIT) -> bool:  # noqa: ANN001 - a predicate
        """Re-checked on every connection and ended session, and every 10 ms (connect
        failures notify nobody)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self):
                if time.monotonic() >= deadline:
                    return False
                self.cond.wait(0.01)
            return True


@pytest.fixture
def venue() -> Iterator[Venue]:
    v = Venue(["drop"])
    yield v
    v.close()


def test_failed_sessions_back_off_longer_and_an_ack_resets(venue: Venue) -> None:
    venue.script = ["refuse", "drop", "refuse", "ack", "drop"]
    with Probe(venue.url) as p:
        assert p.wait(lambda x: x.connects >= 6)
    # every ended session counted one attempt; the ack (4th session) reset the count
    assert p.attempts_seen[:6] == [0, 1, 2, 3, 1, 2]
    assert p.ends[:2] == ["SessionRefused", "ConnectionClosedOK"]


def test_connect_failures_use_the_same_back_off() -> None:
    v = Venue(["drop"])
    url = v.url
    v.close()  # nothing listens there now: every connect is refused
    p = Probe(url, open_timeout_s=0.5).start()
    try:
        assert p.wait(lambda x: x.backoff.attempt >= 3)  # websockets' iterator took our delays
        assert p.connects == 0
    finally:
        p.stop()
    assert p._thread is not None and not p._thread.is_alive()


def test_stop_ends_a_live_session(venue: Venue) -> None:
    venue.script = ["ack-and-hold"]
    p = Probe(venue.url).start()
    assert p.wait(lambda x: x.connects == 1)
    p.stop()
    assert p._thread is not None and not p._thread.is_alive() and p.connects == 1


def test_a_bug_in_a_session_ends_the_stream_with_its_traceback(
        venue: Venue, caplog: pytest.LogCaptureFixture) -> None:
    venue.script = ["bug"]
    p = Probe(venue.url).start()
    assert p._thread is not None
    p._thread.join(WAIT)
    assert not p._thread.is_alive() and p.connects == 1
    assert any("Probe crashed" in r.message and r.exc_info for r in caplog.records)
    p.stop()  # idempotent after a crash


def test_backoff_delays_follow_the_live_count() -> None:
    b = Backoff(1.0, 8.0, random.Random(3))
    it = b.delays()
    first = [next(it) for _ in range(5)]
    bounds = [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (4.0, 8.0)]  # capped at max_s
    assert all(lo <= d <= hi for d, (lo, hi) in zip(first, bounds, strict=True))
    b.reset()
    assert 0.5 <= next(it) <= 1.0 and b.attempt == 1  # the reset reached the running iterator
    assert backoff_delay(10, 1.0, 8.0, random.Random(0)) <= 8.0
    with pytest.raises(ValueError):
        Backoff(-1.0, 1.0)


def test_session_errors_include_venue_data_errors() -> None:
    """A TradingBrainError (a failed token fetch, a DataError) ends a session, not the stream."""
    from trading_brain.adapters.kraken.ws_session import SESSION_ENDS

    assert issubclass(DataError, SESSION_ENDS[-1])
