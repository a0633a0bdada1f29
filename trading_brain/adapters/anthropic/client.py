"""The anthropic SDK client, built once from ``[advisor]`` settings and the secrets.

Contract:
- ``make_client(settings, secrets)``: an ``anthropic.Anthropic`` with the API key from
  ``Secrets`` (never from a prompt or a file of ours), ``base_url`` from ``[advisor] base_url``
  when set, else the SDK's own ``ANTHROPIC_BASE_URL``, else the public API; ``timeout_s`` and
  ``max_retries`` are given to the SDK once: it retries 408/409/429/5xx/529 and timeouts,
  honouring ``retry-after``; nothing in this package retries HTTP on top of it. No key:
  ``ConfigError``.
- The wait before an SDK retry is capped at ``RETRY_WAIT_CAP_S``: the pinned SDK (2.11) sleeps
  whatever ``retry-after`` / ``retry-after-ms`` asks, up to ~50 days, so one 429 or 529 with
  ``retry-after: 3600`` would stall the night for an hour. ``CappedRetryClient`` overrides the
  SDK's own delay computation (``_calculate_retry_timeout``: the retry-after value, else its
  exponential backoff of 0.5 s doubling up to 8 s, with jitter) and returns at most the cap; the
  SDK still decides whether and how often to retry. Worst case per call:
  ``max_retries × (RETRY_WAIT_CAP_S + timeout_s) + timeout_s``. A test pins the override to the
  SDK's signature (``test_advisor_retry_wait``).
- ``check_models(client, models)``: ``models.list()`` (all pages) must name every configured
  model; an unknown one is a one-line ``ConfigError`` naming it and a few known ids.
- ``api_failure(e)``: an SDK exception (after the SDK's own retries) as ONE line without
  secrets: status, error type and the server's message (no headers, no request body).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import anthropic

from trading_brain.domain.advisor import AdvisorSettings
from trading_brain.errors import ConfigError, OperationalError
from trading_brain.settings import Secrets

if TYPE_CHECKING:  # the SDK's own types of the method overridden below
    import httpx2
    from anthropic._models import FinalRequestOptions

RETRY_WAIT_CAP_S = 30.0


class CappedRetryClient(anthropic.Anthropic):
    """``anthropic.Anthropic`` whose wait before a retry is at most ``RETRY_WAIT_CAP_S``."""

    retry_wait_cap_s: float = RETRY_WAIT_CAP_S

    def _calculate_retry_timeout(self, remaining_retries: int, options: FinalRequestOptions,
                                 response_headers: httpx2.Headers | None = None) -> float:
        wait = super()._calculate_retry_timeout(remaining_retries, options, response_headers)
        return min(wait, self.retry_wait_cap_s)


def make_client(settings: AdvisorSettings, secrets: Secrets) -> anthropic.Anthropic:
    """The SDK client (module docstring)."""
    if secrets.anthropic_api_key is None:
        raise ConfigError("advisor kind anthropic needs ANTHROPIC_API_KEY (environment or .env)")
    return CappedRetryClient(api_key=secrets.anthropic_api_key.get_secret_value(),
                             base_url=settings.base_url, timeout=settings.timeout_s,
                             max_retries=settings.max_retries)


def check_models(client: anthropic.Anthropic, models: Iterable[str]) -> None:
    """Every model in ``models`` is one the API lists, or ``ConfigError``."""
    try:
        known = {m.id for m in client.models.list(limit=1000)}
    except anthropic.AuthenticationError as e:
        raise OperationalError(f"anthropic: the API key was refused ({api_failure(e)})") from e
    except anthropic.APIError as e:
        raise ConfigError(f"anthropic: cannot list models: {api_failure(e)}") from e
    unknown = sorted(set(models) - known)
    if unknown:
        some = ", ".join(sorted(known)[:8]) or "none"
        raise ConfigError(f"unknown anthropic model {unknown[0]!r} in [advisor]; the API "
                          f"lists: {some}")


def api_failure(e: anthropic.APIError) -> str:
    """One secret-free line describing an SDK failure."""
    if isinstance(e, anthropic.APITimeoutError):
        return "the request timed out (after the SDK's retries)"
    if isinstance(e, anthropic.APIConnectionError):
        return "cannot connect to the Messages API (after the SDK's retries)"
    if isinstance(e, anthropic.APIStatusError):
        kind, message = "error", ""
        body = e.body
        if isinstance(body, dict):
            err = body.get("error")
            if isinstance(err, dict):
                kind = str(err.get("type", kind))
                message = str(err.get("message", ""))[:200]
        return f"HTTP {e.status_code} {kind}" + (f": {message}" if message else "")
    return type(e).__name__
