"""One dynamic partition per registered strategy version, keyed ``<strategy_id>@<version>``."""

import dagster as dg

STRATEGY_VERSION_PARTITIONS = "strategy_version"  # the partitions definition's name
strategy_version_partitions = dg.DynamicPartitionsDefinition(name=STRATEGY_VERSION_PARTITIONS)


def version_key(strategy_id: str, version: int) -> str:
    return f"{strategy_id}@{version}"
