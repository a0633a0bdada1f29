"""A small Telegram Bot API client over ``requests`` (the HTTP client the Kraken adapter uses).

Contract:
- ``getUpdates`` (long poll: ``offset``, ``timeout``), ``sendMessage``, ``sendPhoto`` (multipart
  PNG) against ``<api_url>/bot<token>/<method>``; ``api_url`` is a setting so tests point it at
  the loopback fake (``trading_brain_tests/fakes/telegram_server.py``).
- Errors are mapped once, here: network failure, timeout, HTTP 5xx or a body that is not the
  API's JSON -> ``TemporaryError``; HTTP 429 -> ``RateLimited`` (``retry_after`` from the
  answer); 401/403/404 or another ``ok: false`` -> ``OperationalError`` (bad token, blocked bot,
  wrong chat: a human must act). Every message is one line and never contains the token.
- No retries here: the caller decides (delivery retries with backoff; the poller backs off).
"""

from __future__ import annotations

import json
from typing import Any

import requests

from trading_brain.errors import OperationalError, RateLimited, TemporaryError

MESSAGE_LIMIT = 4096  # characters per sendMessage text (Telegram's limit)
CAPTION_LIMIT = 1024


class TelegramClient:
    """One bot's HTTP session; safe to use from one thread at a time per instance."""

    def __init__(self, token: str, api_url: str = "https://api.telegram.org",
                 timeout_s: float = 10.0) -> None:
        if not token:
            raise OperationalError("TELEGRAM_BOT_TOKEN is empty")
        self._token = token
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self.timeout_s = timeout_s
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    def get_updates(self, offset: int | None, timeout_s: int) -> list[dict[str, Any]]:
        """Updates with ``update_id >= offset`` (acknowledges older ones), waiting up to
        ``timeout_s`` for the first one (long poll)."""
        params: dict[str, Any] = {"timeout": timeout_s, "allowed_updates": '["message"]'}
        if offset is not None:
            params["offset"] = offset
        result = self._call("getUpdates", params=params, read_timeout=timeout_s + self.timeout_s)
        if not isinstance(result, list):
            raise TemporaryError("telegram getUpdates: result is not a list")
        return [u for u in result if isinstance(u, dict)]

    def send_message(self, chat_id: int, text: str) -> dict[str, Any]:
        return self._call("sendMessage", data={"chat_id": chat_id, "text": text[:MESSAGE_LIMIT],
                                               "disable_web_page_preview": "true"})

    def send_photo(self, chat_id: int, png: bytes, caption: str = "") -> dict[str, Any]:
        return self._call("sendPhoto", data={"chat_id": chat_id,
                                             "caption": caption[:CAPTION_LIMIT]},
                          files={"photo": ("chart.png", png, "image/png")})

    def _call(self, method: str, *, params: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None, files: dict[str, Any] | None = None,
              read_timeout: float | None = None) -> Any:
        url = f"{self._base}/{method}"
        timeout = (self.timeout_s, read_timeout or self.timeout_s)
        try:
            if data is None:
                resp = self._http.get(url, params=params, timeout=timeout)
            else:
                resp = self._http.post(url, data=data, files=files, timeout=timeout)
        except requests.exceptions.Timeout:
            raise TemporaryError(f"telegram {method}: timed out") from None
        except (requests.exceptions.RequestException, OSError) as e:
            raise TemporaryError(f"telegram {method}: {self._redact(e)}") from None
        return self._result(method, resp)

    def _result(self, method: str, resp: requests.Response) -> Any:
        try:
            body = resp.json()
        except (ValueError, json.JSONDecodeError):
            body = None
        if not isinstance(body, dict) or "ok" not in body:
            if resp.status_code == 429:
                raise RateLimited(f"telegram {method}: HTTP 429", retry_after=None)
            raise TemporaryError(f"telegram {method}: HTTP {resp.status_code}, not the API's JSON")
        if body.get("ok") is True:
            return body.get("result")
        desc = str(body.get("description", ""))[:200]
        code = body.get("error_code", resp.status_code)
        if code == 429 or resp.status_code == 429:
            params = body.get("parameters")
            after = params.get("retry_after") if isinstance(params, dict) else None
            raise RateLimited(f"telegram {method}: rate limited ({desc})",
                              retry_after=float(after) if isinstance(after, int | float) else None)
        if resp.status_code >= 500:
            raise TemporaryError(f"telegram {method}: HTTP {resp.status_code} {desc}")
        if resp.status_code == 401:
            raise OperationalError(f"telegram {method}: the bot token was refused (HTTP 401)")
        raise OperationalError(f"telegram {method}: HTTP {resp.status_code} {desc}")

    def _redact(self, e: BaseException) -> str:
        text = " ".join(str(e).split()).replace(self._token, "<token>")
        return f"{type(e).__name__}: {text[:200]}"


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at line ends (a longer line is
    cut inside); no part is empty and joining the parts with newlines gives ``text`` back
    (up to the cut points of over-long lines)."""
    parts: list[str] = []
    cur = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if cur:
                parts.append(cur)
                cur = ""
            parts.append(line[:limit])
            line = line[limit:]
        if cur and len(cur) + 1 + len(line) > limit:
            parts.append(cur)
            cur = line
        else:
            cur = f"{cur}\n{line}" if cur else line
    if cur.strip() or not parts:
        parts.append(cur)
    return parts
