"""Tests of the Kraken adapter against the local fake Kraken server."""
