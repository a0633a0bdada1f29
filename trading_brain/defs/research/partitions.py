"""One dynamic partition per registered strategy version, keyed ``<strategy_id>@<version>``.

The name and key format live in ``adapters.dagster_catalog``: registration outside Dagster
(``init``, ``strategies register``) adds these partitions through it; inside a run,
``add_version_partitions`` does (``strategy_versions``, and ``strategy_candidates`` for the
versions the nightly cycle registers).
"""

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from trading_brain.adapters.dagster_catalog import STRATEGY_VERSION_PARTITIONS, version_key

__all__ = ["STRATEGY_VERSION_PARTITIONS", "add_version_partitions",
           "strategy_version_partitions", "version_key"]

strategy_version_partitions = dg.DynamicPartitionsDefinition(name=STRATEGY_VERSION_PARTITIONS)


def add_version_partitions(instance: dg.DagsterInstance, rows: Iterable[Mapping[str, Any]]
                           ) -> list[str]:
    """Add the partitions of the ``strategy_versions`` rows that have none; return those added."""
    keys = [version_key(r["strategy_id"], r["version"]) for r in rows]
    known = set(instance.get_dynamic_partitions(STRATEGY_VERSION_PARTITIONS))
    new = [k for k in keys if k not in known]
    if new:
        instance.add_dynamic_partitions(STRATEGY_VERSION_PARTITIONS, new)
    return new
