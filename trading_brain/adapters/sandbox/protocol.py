"""The wire protocol between the sandbox host and its worker (both sides; stdlib + pydantic).

Framing: every message is a 4-byte big-endian unsigned length followed by that many bytes. The
host writes requests to the worker's stdin; the worker writes replies to its (private) protocol
fd, the original stdout. Nothing is ever pickled.

Requests (host -> worker), each a JSON frame:
- first frame ``{"op": "init", ...}`` (see ``InitRequest``), answered by ``ReadyReply`` or
  ``ErrorReply``;
- ``{"op": "generate", "params": {...}}`` followed by ONE binary frame: the bars as an Arrow IPC
  stream (``polars.DataFrame.write_ipc_stream``); answered by ``SignalsReply`` or ``ErrorReply``;
- ``{"op": "generate_many", "params": {...}, "lengths": [n1, n2, ...]}`` followed by ONE binary
  frame: the bars of several symbols stacked in that order (Arrow IPC); the worker runs ``generate``
  on each slice and answers ``SignalsManyReply``: one result per slice, in order, each either
  ``{"columns": ...}`` or ``{"error": message}`` (that slice's strategy failure);
- ``{"op": "generate_sets", "sets": [{...}, ...]}`` followed by ONE binary frame of bars (as for
  ``generate``; with ``"reuse_bars": true`` and no binary frame, the bars of the previous call):
  the worker runs ``generate`` on the same bars once per parameter set, in order, and answers
  with ONE frame PER SET, each exactly what ``generate`` would answer for that set alone
  (``SignalsReply``, or ``ErrorReply`` of kind ``strategy``/``params`` for that set's failure;
  the reply cap applies to each frame). A malformed request is answered by one ``ErrorReply``
  of kind ``protocol`` instead. At most ``MAX_SETS`` sets per request;
- ``{"op": "params_schema"}``: answered by ``SchemaReply`` (JSON schema + defaults of ``Params``);
- ``{"op": "analyze", "params": {...}, "names": [n1, n2, ...]}`` (an ``"analysis"`` worker only)
  followed by ONE binary frame holding, in that order, one framed Arrow IPC stream per name
  (``frame(ipc)`` each): the worker calls ``analyze({name: frame}, Params(**params))`` and answers
  ``ReportReply`` (the returned dict, strict JSON: no NaN/infinity) or ``ErrorReply`` of kind
  ``strategy`` (the module raised, returned no dict, or a report above the reply cap).
Unknown ops are answered with an ``ErrorReply`` of kind ``protocol``.

``InitRequest.kind`` is ``"strategy"`` (the module of ``domain/strategy.py``; ReadyReply carries
its ``STRATEGY_ID``/``VERSION``/``WARMUP_BARS``) or ``"analysis"`` (``analyses/README.md``; the
ReadyReply carries ``ANALYSIS_ID`` as ``strategy_id``, ``VERSION`` and ``warmup_bars`` 0).

Replies (worker -> host) are untrusted: they are size-capped (``MAX_REPLY_BYTES`` by default,
64 MiB, about 600k signal rows at ~100 bytes per row) and parsed with ``parse_reply`` into strict
pydantic models (``extra="forbid"``, finite numbers only, bounded strings and lists). Free text from
strategy code (error messages, ``regime`` labels, the strategy id) is passed through
``text.safe_text`` here, the one place it enters the host: terminal control sequences in it reach
logs, stored records and the CLI only as visible escapes.
"""

from __future__ import annotations

import struct
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from trading_brain.adapters.sandbox.text import safe_text

HEADER = struct.Struct(">I")
MAX_REPLY_BYTES = 64 * 1024 * 1024
MAX_ROWS = 2_000_000
MAX_MESSAGE = 8_000
MAX_SLICES = 10_000  # symbols in one generate_many call
MAX_SETS = 10_000  # parameter sets in one generate_sets call

LAYER_NAMES = ("netns", "rlimits", "uid_drop", "no_new_privs", "landlock", "seccomp")


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 4-byte big-endian length."""
    return HEADER.pack(len(payload)) + payload


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Limits(_Strict):
    """Resource limits the worker applies to itself (rlimits)."""

    cpu_s: int = Field(default=600, ge=1, description="RLIMIT_CPU over the worker's whole life")
    as_bytes: int = Field(default=2 * 1024**3, ge=256 * 1024**2, description="RLIMIT_AS")
    nofile: int = Field(default=64, ge=16)


class Layers(_Strict):
    """Which isolation layers the worker should enforce; switching one off is for tests only."""

    netns: bool = True
    rlimits: bool = True
    uid_drop: bool = True
    no_new_privs: bool = True
    landlock: bool = True
    seccomp: bool = True


class InitRequest(_Strict):
    """The first frame: where to import from, what to enforce, and the module to load."""

    op: Literal["init"] = "init"
    kind: Literal["strategy", "analysis"] = "strategy"
    source: str
    filename: str = "<strategy>"
    sys_path: list[str] = []
    read_paths: list[str] = []
    layers: Layers = Layers()
    limits: Limits = Limits()
    max_reply_bytes: int = Field(default=MAX_REPLY_BYTES, ge=1024)


Short = Annotated[str, StringConstraints(max_length=64)]


class LayerReport(_Strict):
    """What the worker actually enforced (``landlock_abi`` 0 = not enforced; ``landlock_scopes``
    the IPC scopes of that ABI, empty before ABI 6; ``pdeathsig``: dies with its host)."""

    netns: bool
    rlimits: bool
    uid_drop: bool
    uid: int
    no_new_privs: bool
    landlock_abi: int = Field(ge=0, le=1000)
    landlock_scopes: Annotated[list[Short], Field(max_length=8)] = []
    seccomp: bool
    pdeathsig: bool = False
    errors: dict[Short, Annotated[str, StringConstraints(max_length=500)]] = {}

    def missing_required(self) -> list[str]:
        """The layers production requires (seccomp and Landlock) that are not active."""
        missing = [] if self.seccomp else ["seccomp"]
        return missing + ([] if self.landlock_abi >= 1 else ["landlock"])


Message = Annotated[str, StringConstraints(max_length=MAX_MESSAGE), AfterValidator(safe_text)]


class ReadyReply(_Strict):
    ok: Literal[True]
    kind: Literal["ready"]
    layers: LayerReport
    strategy_id: Annotated[Short, AfterValidator(safe_text)]
    version: int
    warmup_bars: int = Field(ge=0)


class ErrorReply(_Strict):
    ok: Literal[False]
    kind: Literal["error"]
    error: Literal["strategy", "params", "protocol", "internal"]
    message: Message


Label = Annotated[str, StringConstraints(max_length=32)]
SafeLabel = Annotated[Label, AfterValidator(safe_text)]  # free labels (regime)


RunLengths = Annotated[list[Annotated[int, Field(gt=0)]], Field(max_length=MAX_ROWS)]


class FloatRuns(_Strict):
    """One float column: ``values`` per row, or per run when ``lengths`` is given (run-length
    encoding: value i repeats lengths[i] times). Signal columns are mostly long constant runs."""

    values: Annotated[list[float], Field(max_length=MAX_ROWS)]
    lengths: RunLengths | None = None


class OptFloatRuns(_Strict):
    values: Annotated[list[float | None], Field(max_length=MAX_ROWS)]
    lengths: RunLengths | None = None


class LabelRuns(_Strict):
    values: Annotated[list[Label], Field(max_length=MAX_ROWS)]
    lengths: RunLengths | None = None


class OptLabelRuns(_Strict):
    values: Annotated[list[SafeLabel | None], Field(max_length=MAX_ROWS)]
    lengths: RunLengths | None = None


class SignalColumns(_Strict):
    """Column-oriented signals; ``domain.strategy.validate_signals`` checks values afterwards."""

    action: LabelRuns
    size: FloatRuns
    stop_loss: OptFloatRuns
    take_profit: OptFloatRuns
    intent: LabelRuns
    confidence: FloatRuns
    regime: OptLabelRuns | None = None


class SignalsReply(_Strict):
    ok: Literal[True]
    kind: Literal["signals"]
    columns: SignalColumns


class SymbolSignals(_Strict):
    """One slice's outcome in a ``generate_many`` reply: exactly one of the two is set."""

    columns: SignalColumns | None = None
    error: Message | None = None


class SignalsManyReply(_Strict):
    ok: Literal[True]
    kind: Literal["signals_many"]
    results: Annotated[list[SymbolSignals], Field(max_length=MAX_SLICES)]


class SchemaReply(_Strict):
    ok: Literal[True]
    kind: Literal["schema"]
    json_schema: dict[str, Any]
    defaults: dict[str, Any]


class ReportReply(_Strict):
    """An analysis report: a JSON object (its shape is checked by ``report.check_report``)."""

    ok: Literal[True]
    kind: Literal["report"]
    report: dict[str, Any]


Reply = Annotated[
    ReadyReply | ErrorReply | SignalsReply | SignalsManyReply | SchemaReply | ReportReply,
    Field(discriminator="kind")]
_REPLY = TypeAdapter(Reply)


def parse_reply(payload: bytes) -> (ReadyReply | ErrorReply | SignalsReply | SignalsManyReply
                                    | SchemaReply | ReportReply):
    """Parse one untrusted reply; raises ``pydantic.ValidationError`` on anything malformed."""
    return _REPLY.validate_json(payload)
