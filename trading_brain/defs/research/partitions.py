"""One dynamic partition per registered strategy version, keyed ``<strategy_id>@<version>``.

The name and key format live in ``adapters.dagster_catalog``: registration outside Dagster
(``init``, ``strategies register``) adds these partitions through it.
"""

import dagster as dg

from trading_brain.adapters.dagster_catalog import STRATEGY_VERSION_PARTITIONS, version_key

__all__ = ["STRATEGY_VERSION_PARTITIONS", "strategy_version_partitions", "version_key"]

strategy_version_partitions = dg.DynamicPartitionsDefinition(name=STRATEGY_VERSION_PARTITIONS)
