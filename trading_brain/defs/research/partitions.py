"""One dynamic partition per registered strategy version, keyed ``<strategy_id>@<version>``."""

import dagster as dg

strategy_version_partitions = dg.DynamicPartitionsDefinition(name="strategy_version")


def version_key(strategy_id: str, version: int) -> str:
    return f"{strategy_id}@{version}"
