"""The WS v2 ``executions`` client against the fake Kraken: updates, fills, snapshot, reconnect."""

from __future__ import annotations

import json
import time
from decimal import Decimal

from trading_brain.adapters.kraken.executions_ws import KrakenExecutionStream
from trading_brain_tests.fakes import kraken_private as fp
from trading_brain_tests.fakes.kraken_server import FakeKraken

from .test_execution import make_exec, req


def stream(fk: FakeKraken, token_provider, **kw: object) -> KrakenExecutionStream:  # noqa: ANN001
    opts: dict = {"silence_s": 2.0, "backoff_base_s": 0.02, "backoff_max_s": 0.1}
    opts.update(kw)
    return KrakenExecutionStream(fk.ws_url, token_provider, **opts)


def test_executions_deliver_status_and_fills(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    seen: list[str] = []
    with stream(fake_kraken, ex.private.websockets_token,
                on_status=lambda s: seen.append(s.state)) as s:
        assert s.wait_for(lambda x: x.snapshots == 1, 5)
        ex.place_order(req("ws-1"))
        assert s.wait_for(lambda x: (st := x.status_by_client_id("ws-1")) is not None
                          and st.state == "open", 5)
        fp.script_fills(fake_kraken.state, "ws-1", ["0.04", "0.06"])
        fp.step(fake_kraken.state)
        assert s.wait_for(lambda x: len(x.fills()) == 1, 5)
        st = s.status_by_client_id("ws-1")
        assert st is not None and st.state == "partially_filled"
        fp.step(fake_kraken.state)
        assert s.wait_for(lambda x: x.status_by_client_id("ws-1").state == "filled", 5)
        fills = s.fills()
        assert [f.qty for f in fills] == [Decimal("0.04"), Decimal("0.06")]
        assert {f.client_order_id for f in fills} == {"ws-1"} and fills[0].fee_currency == "USD"
        assert fills[0].fee == Decimal("1.92") and fills[0].price == Decimal("30000")
        rest = {f.fill_id for f in ex.fills_since(fills[0].ts.replace(year=2000))}
        assert rest == {f.fill_id for f in fills}  # same ids over REST and WS
        assert s.sequence_gaps == 0 and s.parse_errors == 0
    assert seen[0] == "pending" and seen[-1] == "filled" and "partially_filled" in seen


def test_adapter_builds_its_stream_on_the_auth_url(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    s = ex.execution_stream(silence_s=1.0)
    assert s.ws_url == ex.settings.kraken.ws_auth_url and s.silence_s == 1.0
    assert fake_kraken.state.private.tokens == set()
    assert s._token_provider() in fake_kraken.state.private.tokens


def test_invalid_token_is_refused_then_a_fresh_token_works(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    tokens = iter(["forged-token"])

    def provider() -> str:
        return next(tokens, None) or ex.private.websockets_token()

    with stream(fake_kraken, provider) as s:
        assert s.wait_for(lambda x: x.snapshots == 1, 5)
        assert s.errors == ["ESession:Invalid session"] and s.connects == 2


def test_reconnect_snapshot_restores_orders_and_missed_fills(fake_kraken: FakeKraken) -> None:
    ex = make_exec(fake_kraken)
    ex.place_order(req("before"))  # open before the stream starts: arrives in the snapshot
    with stream(fake_kraken, ex.private.websockets_token) as s:
        assert s.wait_for(lambda x: x.status_by_client_id("before") is not None, 5)
        assert s.status_by_client_id("before").state == "open"
        fp.fill(fake_kraken.state, "before", "0.05")  # pushed live
        assert s.wait_for(lambda x: len(x.fills()) == 1, 5)
        fake_kraken.ws.silent = True  # updates are lost from here on
        sent = fake_kraken.ws.exec_sent
        fp.fill(fake_kraken.state, "before", "0.02")
        deadline = time.monotonic() + 5
        while fake_kraken.ws.exec_sent == sent and time.monotonic() < deadline:
            time.sleep(0.01)  # the fake's pusher has swallowed the update
        assert len(s.fills()) == 1
        fake_kraken.ws.silent = False
        fake_kraken.ws.drop()
        assert s.wait_for(lambda x: x.snapshots == 2, 5)  # reconnected, snap_trades replayed
        assert sorted(f.qty for f in s.fills()) == [Decimal("0.02"), Decimal("0.05")]
        st = s.status_by_client_id("before")
        assert st is not None and st.filled_qty == Decimal("0.07") and s.connects == 2


def test_bad_messages_are_counted_not_fatal() -> None:
    s = KrakenExecutionStream("ws://127.0.0.1:9", lambda: "t")
    s._handle("{not json")
    s._handle(json.dumps({"channel": "executions", "type": "update", "sequence": 1,
                          "data": [{"exec_type": "new"}, {"order_id": "O1", "exec_type": "trade",
                                                          "last_qty": "x"}]}))
    assert s.parse_errors == 3 and s.fills() == []
    s._handle(json.dumps({"channel": "executions", "type": "update", "sequence": 3, "data": []}))
    assert s.sequence_gaps == 1
