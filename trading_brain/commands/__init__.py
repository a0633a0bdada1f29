"""CLI subcommands (loaded lazily by trading_brain.cli)."""
