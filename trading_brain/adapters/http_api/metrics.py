"""``/metrics``: a Prometheus collector that reads the warehouse at scrape time.

Each metric and where it comes from (one short read-only connection per scrape, cached for
the warehouse's ``cache_ttl_s`` like every other read):

| metric | source |
|---|---|
| ``trading_brain_equity{slot}`` | newest ``portfolio_snapshots`` row per slot |
| ``trading_brain_drawdown_ratio{slot}`` | same row, ``drawdown`` (from the persisted peak) |
| ``trading_brain_exposure_ratio{slot}`` | same row, ``exposure`` |
| ``trading_brain_open_positions{slot}`` | ``positions`` with status ``open`` |
| ``trading_brain_halted{slot}``, ``…_kill_switch{slot}`` | ``risk_state`` JSON |
| ``trading_brain_last_scan_duration_seconds`` | newest ``scans`` row, ``duration_ms`` |
| ``trading_brain_scan_duration_seconds_avg`` | mean ``duration_ms`` of the last 12 scans |
| ``trading_brain_intent_to_order_seconds`` | newest order: ``orders.created_at`` minus its |
| | ``order_intents.created_at`` (how long an intent waited for an executor tick) |
| ``trading_brain_last_candle_age_seconds{timeframe}`` | now minus the newest ``candles.ts`` |
| ``trading_brain_check_failures_total{level}`` | ``notifications`` of kind ``check_failure`` |
| ``trading_brain_ai_tokens_total{kind}``, ``…_ai_cost_usd_total`` | ``token_usage`` |

No table records how long an executor tick took, so tick latency is measured as the
intent-to-order delay above. A scrape that meets the writer's lock for the whole budget
raises ``WarehouseLocked`` (the app answers 503, so Prometheus records the target as down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trading_brain.adapters.http_api.reads import Warehouse
from trading_brain.adapters.http_api.warehouse import Row, Statement

P = "trading_brain_"
_SQL: list[Statement] = [
    ("""SELECT slot, equity, drawdown, exposure FROM portfolio_snapshots
        QUALIFY row_number() OVER (PARTITION BY slot ORDER BY ts DESC) = 1""", ()),
    ("SELECT slot, count(*) AS n FROM positions WHERE status = 'open' GROUP BY slot", ()),
    ("SELECT slot, state FROM risk_state", ()),
    ("""SELECT duration_ms FROM scans ORDER BY started_at DESC LIMIT 12""", ()),
    ("""SELECT epoch(o.created_at) - epoch(i.created_at) AS wait_s FROM orders o
        JOIN order_intents i USING (intent_id) ORDER BY o.created_at DESC LIMIT 1""", ()),
    ("SELECT timeframe, epoch(max(ts)) AS newest FROM candles GROUP BY timeframe", ()),
    ("""SELECT level, count(*) AS n FROM notifications WHERE kind = 'check_failure'
        GROUP BY level""", ()),
    ("""SELECT coalesce(sum(input_tokens), 0) AS input, coalesce(sum(output_tokens), 0) AS output,
        coalesce(sum(cache_write_tokens), 0) AS cache_write,
        coalesce(sum(cache_read_tokens), 0) AS cache_read,
        coalesce(sum(cost_usd), 0) AS cost FROM token_usage""", ()),
]


def _num(v: object) -> float:
    return float(v) if isinstance(v, int | float) else 0.0


class WarehouseCollector(Collector):
    """Yields the metrics of the module table, read when Prometheus scrapes."""

    def __init__(self, wh: Warehouse, now: Callable[[], datetime] = lambda: datetime.now(UTC)
                 ) -> None:
        self.wh = wh
        self.now = now

    def describe(self) -> list[Metric]:
        return []  # registering must not read the warehouse

    def collect(self) -> Iterator[Metric]:
        snaps, counts, risk, scans, waits, candles, checks, tokens = self.wh.batch(_SQL)
        yield from self._slots(snaps, counts, risk)
        last = GaugeMetricFamily(P + "last_scan_duration_seconds", "Duration of the newest scan")
        avg = GaugeMetricFamily(P + "scan_duration_seconds_avg",
                                "Mean duration of the last 12 scans")
        if scans:
            last.add_metric([], _num(scans[0]["duration_ms"]) / 1000)
            avg.add_metric([], sum(_num(r["duration_ms"]) for r in scans) / len(scans) / 1000)
        wait = GaugeMetricFamily(P + "intent_to_order_seconds",
                                 "Newest order: seconds from its intent to its submission "
                                 "(the executor tick's pick-up delay)")
        for r in waits:
            wait.add_metric([], _num(r["wait_s"]))
        age = GaugeMetricFamily(P + "last_candle_age_seconds",
                                "Seconds since the newest candle's open time",
                                labels=["timeframe"])
        now = self.now().timestamp()
        for r in candles:
            age.add_metric([str(r["timeframe"])], now - _num(r["newest"]))
        fails = CounterMetricFamily(P + "check_failures", "Asset-check failures notified",
                                    labels=["level"])
        for r in checks:
            fails.add_metric([str(r["level"])], _num(r["n"]))
        tok = CounterMetricFamily(P + "ai_tokens", "AI tokens spent", labels=["kind"])
        t = tokens[0] if tokens else {}
        for kind in ("input", "output", "cache_write", "cache_read"):
            tok.add_metric([kind], _num(t.get(kind)))
        cost = CounterMetricFamily(P + "ai_cost_usd", "AI cost in USD")
        cost.add_metric([], _num(t.get("cost")))
        yield from (last, avg, wait, age, fails, tok, cost)

    @staticmethod
    def _slots(snaps: list[Row], counts: list[Row], risk: list[Row]) -> Iterator[Metric]:
        gauges = {k: GaugeMetricFamily(P + name, doc, labels=["slot"]) for k, name, doc in (
            ("equity", "equity", "Newest portfolio equity (quote currency)"),
            ("drawdown", "drawdown_ratio", "Drawdown from the persisted peak (0..1)"),
            ("exposure", "exposure_ratio", "Positions value over equity"))}
        for r in snaps:
            for k, g in gauges.items():
                g.add_metric([str(r["slot"])], _num(r[k]))
        opened = GaugeMetricFamily(P + "open_positions", "Open positions", labels=["slot"])
        n = {str(r["slot"]): _num(r["n"]) for r in counts}
        for slot in sorted({*n, *(str(r["slot"]) for r in (*snaps, *risk))}):
            opened.add_metric([slot], n.get(slot, 0.0))
        halted = GaugeMetricFamily(P + "halted", "1 when entries are halted", labels=["slot"])
        kill = GaugeMetricFamily(P + "kill_switch", "1 when the kill switch is on",
                                 labels=["slot"])
        for r in risk:
            state = r["state"] if isinstance(r["state"], dict) else {}
            halted.add_metric([str(r["slot"])], 1.0 if state.get("halts") else 0.0)
            kill.add_metric([str(r["slot"])], 1.0 if state.get("kill_switch") else 0.0)
        yield from (*gauges.values(), opened, halted, kill)
