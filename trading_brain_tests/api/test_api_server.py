"""`trading-brain api` against a real uvicorn process on loopback, over a simulated home:
every endpoint, the token, bad parameters, pagination, the OpenAPI docs and /metrics."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from trading_brain_tests.api.conftest import TOKEN, ApiServer

LISTS = {  # endpoint -> at least this many items in the simulated + seeded home
    "/positions?status=all": 10, "/trades": 10, "/fills": 10, "/orders": 10, "/equity": 10,
    "/risk": 1, "/risk/events": 10, "/strategies": 2, "/strategies/deployments": 1,
    "/candidates": 1, "/cycles": 1, "/thoughts": 2, "/benchmarks": 1, "/scorecard": 1,
}
ALL = [*LISTS, "/status", "/metrics", "/events"]


@pytest.mark.parametrize("path", sorted(LISTS))
def test_each_listing_answers_a_page(server: ApiServer, path: str) -> None:
    status, _h, body = server.get(path)
    assert status == 200, body
    assert isinstance(body, dict)
    assert set(body) == {"items", "limit", "offset", "order", "next_offset"}
    assert len(body["items"]) >= LISTS[path]


def test_status_summarises_the_home(server: ApiServer) -> None:
    status, _h, body = server.get("/status")
    assert status == 200
    assert isinstance(body, dict)
    assert body["market"] == "sim" and body["execution"] == "paper"
    active = body["slots"]["active"]
    assert active["state"] == "trading" and active["equity"] > 0
    _s, _h, open_ = server.get("/positions?limit=1000")
    assert isinstance(open_, dict)
    assert active["open_positions"] == len(open_["items"])
    assert body["candles"]["5m"]["symbols"] == 9
    assert body["active_strategies"][0]["strategy_id"] == "ema_cross"


@pytest.mark.parametrize("path", ALL)
@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_missing_or_wrong_token_is_401_without_data(server: ApiServer, path: str,
                                                    token: str | None) -> None:
    status, headers, body = server.get(path, token=token)
    assert status == 401
    assert body == {"error": "missing or wrong bearer token"}
    assert headers.get("www-authenticate") == "Bearer"


def test_token_is_checked_before_the_parameters(server: ApiServer) -> None:
    assert server.get("/positions?limit=0&nope=1", token="wrong")[0] == 401


@pytest.mark.parametrize(("query", "names"), [
    ("/positions?limit=0", "limit"), ("/positions?limit=1001", "limit"),
    ("/positions?limit=ten", "limit"), ("/positions?offset=-1", "offset"),
    ("/positions?status=bogus", "status"), ("/orders?status=lost", "status"),
    ("/positions?symbol=btc", "symbol"), ("/fills?side=short", "side"),
    ("/equity?since=yesterday", "since"), ("/trades?until=2026-13-01", "until"),
    ("/equity?since=2026-12-06&until=2026-12-05", "since must be before until"),
    ("/positions?order=up", "order"), ("/positions?symbl=BTC/USD", "unknown parameter 'symbl'"),
    ("/scorecard?verdict=maybe", "verdict"), ("/events?since=soon", "since"),
])
def test_bad_parameters_are_422_naming_the_parameter(server: ApiServer, query: str,
                                                     names: str) -> None:
    status, _h, body = server.get(query)
    assert status == 422
    assert isinstance(body, dict) and set(body) == {"error"}
    assert names in body["error"] and "\n" not in body["error"]


def test_pagination_walks_every_row_once(server: ApiServer) -> None:
    _s, _h, whole = server.get("/fills?limit=1000")
    assert isinstance(whole, dict) and whole["next_offset"] is None
    ids, offset = [], 0
    while offset is not None:
        _s, _h, page = server.get(f"/fills?limit=40&offset={offset}")
        assert isinstance(page, dict) and len(page["items"]) <= 40
        ids += [f["fill_id"] for f in page["items"]]
        offset = page["next_offset"]
    assert ids == [f["fill_id"] for f in whole["items"]]
    assert len(set(ids)) == len(ids) > 40
    _s, _h, asc = server.get("/fills?limit=1000&order=asc")
    assert isinstance(asc, dict)
    assert [f["fill_id"] for f in asc["items"]] == ids[::-1]


def test_filters_narrow_the_rows(server: ApiServer) -> None:
    _s, _h, sol = server.get("/trades?symbol=SOL/USD&limit=1000")
    _s, _h, closed = server.get("/positions?status=closed&limit=1000")
    _s, _h, trades = server.get("/trades?limit=1000")
    assert isinstance(sol, dict) and isinstance(closed, dict) and isinstance(trades, dict)
    assert sol["items"] and {t["symbol"] for t in sol["items"]} == {"SOL/USD"}
    assert len(closed["items"]) == len(trades["items"])
    _s, _h, day = server.get("/equity?since=2026-12-06T00:00:00Z&until=2026-12-06T06:00:00Z"
                             "&limit=1000")
    _s, _h, alls = server.get("/equity?limit=1000")
    assert isinstance(day, dict) and isinstance(alls, dict)
    assert 0 < len(day["items"]) < len(alls["items"])
    assert all(e["ts"].endswith("Z") for e in day["items"])
    _s, _h, cand = server.get("/candidates?status=running")
    assert isinstance(cand, dict)
    assert [(c["strategy_id"], c["version"]) for c in cand["items"]] == [("ema_cross", 2)]
    _s, _h, none = server.get("/candidates?status=passed")
    assert isinstance(none, dict) and none["items"] == []


def test_openapi_schema_and_docs_are_public(server: ApiServer) -> None:
    status, _h, schema = server.get("/openapi.json", token=None)
    assert status == 200 and isinstance(schema, dict)
    assert {"/positions", "/status", "/metrics", "/events"} <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    status, _h, page = server.get("/docs", token=None)
    page = str(page)
    assert status == 200 and "<h3>" in page and "/positions" in page
    assert "bearer token required" in page and "limit" in page  # auth and parameters shown
    assert "http://" not in page and "https://" not in page and "<script" not in page  # offline


def test_metrics_parse_and_match_the_status(server: ApiServer) -> None:
    status, headers, text = server.get("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(str(text)) for s in fam.samples}
    _s, _h, st = server.get("/status")
    assert isinstance(st, dict)
    active = st["slots"]["active"]
    assert samples[("trading_brain_equity", (("slot", "active"),))] == pytest.approx(
        active["equity"])
    assert samples[("trading_brain_open_positions", (("slot", "active"),))] == \
        active["open_positions"]
    assert samples[("trading_brain_halted", (("slot", "active"),))] == 0
    assert samples[("trading_brain_ai_tokens_total", (("kind", "input"),))] == 1000
    assert samples[("trading_brain_check_failures_total", (("level", "ERROR"),))] == 1
    for name in ("trading_brain_drawdown_ratio", "trading_brain_last_scan_duration_seconds",
                 "trading_brain_intent_to_order_seconds",
                 "trading_brain_last_candle_age_seconds", "trading_brain_ai_cost_usd_total"):
        assert any(n == name for n, _l in samples), name


def test_unknown_path_is_a_json_404(server: ApiServer) -> None:
    status, _h, body = server.get("/nothing-here")
    assert status == 404 and isinstance(body, dict) and "error" in body


def test_last_event_id_resumes_the_stream_after_that_event(server: ApiServer) -> None:
    _s, _h, page = server.get("/fills?limit=1000")
    assert isinstance(page, dict)
    fills = sorted(page["items"], key=lambda f: (f["recorded_at"], f["fill_id"]))
    last = fills[-4]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.request("GET", "/events", headers={
            "Authorization": f"Bearer {TOKEN}",
            "Last-Event-ID": f"fill|{last['recorded_at']}|{last['fill_id']}"})
        resp = conn.getresponse()
        assert resp.status == 200
        got: list[str] = []
        while len(got) < 3:
            line = resp.readline().decode()
            if line.startswith("data: ") and '"kind": "fill"' in line:
                got.append(json.loads(line[6:])["id"])
        assert got == [f["fill_id"] for f in fills[-3:]]
    finally:
        conn.close()
    req = urllib.request.Request(server.base + "/events", headers={
        "Authorization": f"Bearer {TOKEN}", "Last-Event-ID": "nonsense"})
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(req, timeout=20)
    assert bad.value.code == 422 and b"Last-Event-ID" in bad.value.read()
