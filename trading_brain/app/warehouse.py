"""The home's warehouse for use cases without a runtime (the CLI's read-only views, research).

Contract: ``home_store(home)`` is the home's DuckDB ``Store`` (migrations applied), or None
outside an initialised home; ``require_store(home)`` is the store, or the one-line ConfigError
``<root> is not a Trading Brain home; run `trading-brain init` first``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trading_brain.errors import ConfigError

if TYPE_CHECKING:
    from trading_brain.adapters.duckdb import Store
    from trading_brain.settings import Home


def not_a_home(home: Home) -> ConfigError:
    return ConfigError(f"{home.root} is not a Trading Brain home; run `trading-brain init` first")


def home_store(home: Home) -> Store | None:
    """The home's store, None outside an initialised home."""
    if not home.is_initialised():
        return None
    from trading_brain.adapters.duckdb import Store

    return Store.open(home.warehouse)


def require_store(home: Home) -> Store:
    """The home's store; the home must be initialised (one-line ConfigError otherwise)."""
    store = home_store(home)
    if store is None:
        raise not_a_home(home)
    return store
