"""Warehouse snapshots: names, retention, checksum files and the restore verdict (pure).

Contract:
- a snapshot is ``warehouse-YYYYMMDDTHHMMSSZ.duckdb`` (UTC, second resolution) with a
  ``<name>.sha256`` beside it in ``sha256sum`` format (``<64 hex>  <name>``);
- retention (``expired``) removes snapshots taken before ``now - retention_days`` but never the
  newest one: a backup folder always keeps its last good snapshot;
- ``restore_problems`` lists why a snapshot must not replace the warehouse (empty: it may):
  not a warehouse (no ``schema_migrations``), a schema newer than the code, another home's
  warehouse (``warehouse_id`` differs, unless allowed), a broken ledger invariant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading_brain.domain.records import PositionRecord
from trading_brain.errors import DataError

PREFIX = "warehouse-"
SUFFIX = ".duckdb"
CHECKSUM_SUFFIX = ".sha256"
_NAME = re.compile(r"^warehouse-(\d{8}T\d{6}Z)\.duckdb$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def snapshot_name(ts: datetime) -> str:
    """The file name of a snapshot taken at ``ts`` (converted to UTC)."""
    return f"{PREFIX}{ts.astimezone(UTC):%Y%m%dT%H%M%SZ}{SUFFIX}"


def snapshot_time(name: str) -> datetime | None:
    """When the snapshot ``name`` was taken; None for any other file name."""
    m = _NAME.match(name)
    if m is None:
        return None
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def expired(names: Iterable[str], now: datetime, retention_days: int) -> list[str]:
    """Snapshot names older than the retention window, oldest first; the newest is kept."""
    dated = sorted((t, n) for n in names if (t := snapshot_time(n)) is not None)
    cutoff = now - timedelta(days=retention_days)
    return [n for t, n in dated[:-1] if t < cutoff]


def checksum_text(sha256: str, name: str) -> str:
    """The ``<name>.sha256`` file's content (``sha256sum -c`` reads it)."""
    return f"{sha256}  {name}\n"


def parse_checksum(text: str, name: str) -> str:
    """The hex digest a checksum file records for ``name``; DataError when it does not."""
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 2 and parts[1].lstrip("*") == name and _HEX.match(parts[0].lower()):
            return parts[0].lower()
    raise DataError(f"checksum file does not record {name}")


def marks_at_cost(positions: Iterable[PositionRecord]) -> dict[str, Decimal]:
    """A mark per held symbol at its average cost: the invariant's equalities hold at any mark,
    so a restore check needs no market."""
    out: dict[str, Decimal] = {}
    for p in positions:
        if p.status == "open" and p.quantity > 0:
            out[p.symbol] = p.cost_basis / p.quantity
    return out


@dataclass(frozen=True, slots=True)
class SnapshotFacts:
    """What a restore reads from a snapshot opened read-only."""

    schema_version: int | None  # None: no schema_migrations table (not a warehouse)
    warehouse_id: str | None
    invariant_problems: Mapping[str, Sequence[str]] = field(default_factory=dict)  # slot -> …


def restore_problems(facts: SnapshotFacts, code_version: int, current_id: str | None,
                     allow_other_home: bool = False) -> list[str]:
    """Why ``facts``' snapshot must not replace the warehouse; empty when it may."""
    if facts.schema_version is None or facts.schema_version < 1:
        return ["it is not a Trading Brain warehouse (no schema migrations)"]
    problems = []
    if facts.schema_version > code_version:
        problems.append(f"its schema is version {facts.schema_version} but this code knows only "
                        f"up to {code_version}")
    if (current_id is not None and facts.warehouse_id != current_id and not allow_other_home):
        problems.append(f"it is a snapshot of another warehouse ({facts.warehouse_id or 'no id'}"
                        f", this home's is {current_id}); pass --allow-other-home to restore it")
    for slot, found in sorted(facts.invariant_problems.items()):
        if found:
            problems.append(f"ledger invariant broken in slot {slot}: {'; '.join(found)}")
    return problems
