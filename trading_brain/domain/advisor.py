"""``[advisor]`` settings: who proposes the nightly evolution decision and what the AI may spend.

Contract (pure data, validated strictly like every settings section):

- ``kind``: ``offline`` (deterministic, no network) or ``anthropic``; unset means ``anthropic``
  when ``ANTHROPIC_API_KEY`` is set, else ``offline`` (``resolve_kind``). A bare top-level
  ``advisor = "offline"`` in an older TOML file is read as ``[advisor] kind = "offline"``.
- ``analyst_model`` / ``coder_model`` / ``reviewer_model``: model ids per role; each needs a row
  in ``prices`` (the start-up check also asks ``models.list()`` when online).
- ``prices``: model → ``[input, output, cache_write, cache_read]`` in USD per million tokens.
  The defaults are list prices at the time of writing; check them against the vendor's page.
- ``panel`` (1, 3 or 5 analyst votes), ``daily_token_budget`` (every token of every call of a
  UTC day: input + cache write + cache read + output), ``max_input_tokens_per_cycle``
  (counted with ``count_tokens`` before sending), ``max_output_tokens`` per role call,
  ``max_reply_retries`` (malformed / refused / truncated replies asked again),
  ``max_repairs`` (coder repairs after gate failures).
- ``base_url`` (unset: the SDK's ``ANTHROPIC_BASE_URL`` or the public API), ``timeout_s`` and
  ``max_retries``: given once to the SDK client, which does the HTTP retries (429, 5xx, 529,
  timeouts) itself; nothing retries on top of it.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

AdvisorKind = Literal["offline", "anthropic"]
Price = Annotated[list[float], Field(min_length=4, max_length=4)]
DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_PRICES: dict[str, list[float]] = {  # list prices assumed at the time of writing
    "claude-opus-4-6": [5.0, 25.0, 6.25, 0.5],
    "claude-sonnet-4-6": [3.0, 15.0, 3.75, 0.3],
    "claude-haiku-4-5": [1.0, 5.0, 1.25, 0.1],
}


class AdvisorSettings(BaseModel):
    """The evolution advisor (offline or anthropic) and the AI's models, budget and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: AdvisorKind | None = Field(
        default=None, description="who decides: offline or anthropic; unset: anthropic when "
                                  "ANTHROPIC_API_KEY is set, else offline")
    analyst_model: str = Field(default=DEFAULT_MODEL, min_length=1,
                               description="model of the analyst (decisions, panel votes)")
    coder_model: str = Field(default=DEFAULT_MODEL, min_length=1,
                             description="model of the coder (candidate and analysis source)")
    reviewer_model: str = Field(default=DEFAULT_MODEL, min_length=1,
                                description="model of the reviewer (verdict on a candidate)")
    panel: Literal[1, 3, 5] = Field(default=1, description="analyst votes per decision; a "
                                                           "decision needs a majority")
    daily_token_budget: int = Field(default=1_000_000, ge=1_000, le=1_000_000_000,
                                    description="tokens of every call in one UTC day")
    max_input_tokens_per_cycle: int = Field(default=60_000, ge=1_000, le=10_000_000,
                                            description="input tokens one cycle may send")
    max_output_tokens: int = Field(default=8_000, ge=256, le=64_000,
                                   description="max_tokens of one call")
    max_reply_retries: int = Field(default=2, ge=0, le=5,
                                   description="asks again after a malformed, refused or "
                                               "truncated reply")
    max_repairs: int = Field(default=2, ge=0, le=5,
                             description="coder repairs after gate failures")
    base_url: str | None = Field(default=None, description="Messages API base URL; unset: "
                                                           "ANTHROPIC_BASE_URL or the public API")
    timeout_s: float = Field(default=300.0, gt=0, le=900, description="per HTTP request, seconds")
    max_retries: int = Field(default=2, ge=0, le=10,
                             description="SDK retries of 429, 5xx, 529 and timeouts")
    prices: dict[str, Price] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_PRICES.items()},
        description="USD per million tokens per model: [input, output, cache write, cache read]")

    @field_validator("prices")
    @classmethod
    def _prices(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for model, row in v.items():
            if any(not math.isfinite(p) or p < 0 for p in row):
                raise ValueError(f"prices of {model!r} must be finite and >= 0")
        return v

    @model_validator(mode="after")
    def _priced(self) -> AdvisorSettings:
        for role in ("analyst", "coder", "reviewer"):
            model = getattr(self, f"{role}_model")
            if model not in self.prices:
                raise ValueError(f"{role}_model {model!r} has no row in prices")
        return self

    def model_for(self, role: str) -> str:
        """The model id of ``role`` (analyst, coder or reviewer)."""
        return str(getattr(self, f"{role}_model"))


def resolve_kind(settings: AdvisorSettings, anthropic_key_set: bool) -> AdvisorKind:
    """``kind`` when set; else ``anthropic`` when a key is set, else ``offline``."""
    if settings.kind is not None:
        return settings.kind
    return "anthropic" if anthropic_key_set else "offline"
