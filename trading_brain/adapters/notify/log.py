"""The always-on channel: the Python log (and a Dagster tick's log when given one)."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("trading_brain.alerts")


class Logger(Protocol):  # logging.Logger, LoggerAdapter or Dagster's DagsterLogManager
    def error(self, msg: str) -> object: ...
    def warning(self, msg: str) -> object: ...
    def info(self, msg: str) -> object: ...


class LogNotifier:
    """``ERROR`` -> error, ``WARN`` -> warning, anything else -> info; prefixed ``ALERT``."""

    name = "log"

    def __init__(self, logger: Logger | None = None) -> None:
        self.logger: Logger = logger or log

    def notify(self, level: str, text: str) -> None:
        fn = {"ERROR": self.logger.error, "WARN": self.logger.warning}.get(level,
                                                                         self.logger.info)
        fn(f"ALERT {level}: {text}")
