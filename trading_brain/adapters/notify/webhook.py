"""A generic webhook: one JSON POST per message, for Slack- or Discord-style receivers.

The body is ``{"text": …, "content": …, "level": …, "source": "trading-brain"}`` (Slack reads
``text``, Discord ``content``). Any 2xx is delivered (the answer's body is not read: Slack says
``ok``, Discord nothing). Errors: network failure, timeout, 5xx, an answer that is not HTTP ->
``TemporaryError``; 429 -> ``RateLimited`` (``Retry-After``); other 4xx -> ``OperationalError``.
Messages never contain the URL (it often embeds a secret).
"""

from __future__ import annotations

import logging

import requests

from trading_brain.errors import OperationalError, RateLimited, TemporaryError

log = logging.getLogger("trading_brain.alerts")
TEXT_LIMIT = 1900  # Discord's content limit is 2000


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._http = requests.Session()

    def send(self, level: str, text: str) -> None:
        body = {"text": f"{level}: {text}"[:TEXT_LIMIT], "content": f"{level}: {text}"[:TEXT_LIMIT],
                "level": level, "source": "trading-brain"}
        try:
            resp = self._http.post(self.url, json=body, timeout=self.timeout_s)
        except requests.exceptions.Timeout:
            raise TemporaryError("webhook: timed out") from None
        except (requests.exceptions.RequestException, OSError) as e:
            raise TemporaryError(f"webhook: {type(e).__name__} (receiver down or not HTTP)"
                                 ) from None
        code = resp.status_code
        if 200 <= code < 300:
            return
        if code == 429:
            after = resp.headers.get("Retry-After", "")
            raise RateLimited("webhook: HTTP 429",
                              retry_after=float(after) if after.isdigit() else None)
        if code >= 500:
            raise TemporaryError(f"webhook: HTTP {code}")
        raise OperationalError(f"webhook: HTTP {code} (check notify.webhook_url)")

    def notify(self, level: str, text: str) -> None:
        try:
            self.send(level, text)
        except Exception as e:  # a channel never stops the caller
            log.warning("webhook alert not sent: %s", e)
