"""The Telegram channel: alerts as messages to ``telegram.chat_id`` (long ones in parts)."""

from __future__ import annotations

import logging

from trading_brain.adapters.telegram.client import TelegramClient, split_message

log = logging.getLogger("trading_brain.alerts")
ICONS = {"ERROR": "\U0001f534", "WARN": "\U0001f7e0", "INFO": "\U0001f535"}


class TelegramChannel:
    name = "telegram"

    def __init__(self, client: TelegramClient, chat_id: int) -> None:
        self.client = client
        self.chat_id = chat_id

    def send(self, level: str, text: str) -> None:
        """Send; raises the client's errors (TemporaryError, RateLimited, OperationalError)."""
        for part in split_message(f"{ICONS.get(level, '')} {text}".strip()):
            self.client.send_message(self.chat_id, part)

    def notify(self, level: str, text: str) -> None:
        try:
            self.send(level, text)
        except Exception as e:  # a channel never stops the caller
            log.warning("telegram alert not sent: %s", e)
