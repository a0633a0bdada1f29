"""Loading, describing and discovering strategy modules for TRUSTED use (no sandbox).

The module contract is in ``domain/strategy.py``: ``STRATEGY_ID``, ``VERSION``, ``WARMUP_BARS``,
a frozen pydantic ``Params`` whose fields all have defaults and a search space, and
``generate(bars, params) -> pl.DataFrame``. This module executes the strategy file in this
process, so it is only for code we trust: tests, the differential corpus, benchmarks, shipped
strategies. Untrusted (AI-written) code goes through the sandbox worker, which uses the same
contract and may reuse ``check_contract``, ``param_space`` and ``parse_params`` (pure helpers).

- ``load_module(path) -> StrategyModule`` imports the file under a unique module name and checks
  the contract (``StrategyError`` otherwise);
- ``describe(path) -> dict`` the same facts as JSON-friendly data (defaults, space, hash, doc);
- ``find_strategies(root) -> list[StrategyRef]`` lists ``<root>/<family>/v<N>.py`` by reading
  their constants with ``ast`` (nothing is executed) and checks they match the path;
- ``param_space(Params) -> dict`` each field's space: ``{"kind": "int"|"float", "low", "high",
  "low_inclusive", "high_inclusive", "default"}`` from ``ge/gt/le/lt``, or ``{"kind": "choice",
  "choices", "default"}`` from a ``Literal``, a ``bool`` or ``json_schema_extra={"space": [...]}``;
- ``parse_params(Params, dict | None) -> Params`` with a one-line ``ConfigError`` for bad values;
- ``InProcessStrategy(path, params=None)`` implements ``ports.SignalSource``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, NamedTuple, get_args, get_origin

import annotated_types as at
import polars as pl
from pydantic import BaseModel, ValidationError

from trading_brain.domain.candles import BARS_COLUMNS
from trading_brain.domain.strategy import validate_signals
from trading_brain.errors import ConfigError, DataError, StrategyError, TradingBrainError
from trading_brain.ports import SignalSource

STRATEGIES_ROOT = Path(__file__).resolve().parents[3] / "strategies"  # the repository root
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION_FILE = re.compile(r"^v([0-9]+)\.py$")


class StrategyRef(NamedTuple):
    """A discovered strategy file: family id, version and path (unpacks as a 3-tuple)."""

    strategy_id: str
    version: int
    path: Path


@dataclass(frozen=True)
class StrategyModule:
    """A loaded, contract-checked strategy module."""

    strategy_id: str
    version: int
    warmup_bars: int
    params_cls: type[BaseModel]
    generate: Callable[[pl.DataFrame, Any], Any]
    path: Path
    sha256: str
    doc: str


def source_hash(source: str) -> str:
    """Hex sha256 of a module's source text (the identity stored in ``strategy_versions``)."""
    return hashlib.sha256(source.encode()).hexdigest()


def load_module(path: str | Path) -> StrategyModule:
    """Import the strategy file at ``path`` (trusted code!) and check its contract."""
    path = Path(path).resolve()
    try:
        source = path.read_text()
    except OSError as e:
        raise StrategyError(f"cannot read strategy file {path}: {e.strerror}") from e
    digest = source_hash(source)
    name = f"_tb_strategy_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}_{digest[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StrategyError(f"cannot import strategy file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # any error in user code means the version is broken
        sys.modules.pop(name, None)
        raise StrategyError(f"{path.name}: import failed: {type(e).__name__}: {e}") from e
    return check_contract(module, path, digest)


def _positive_int(module: ModuleType, label: str, where: str) -> int:
    value = getattr(module, label, None)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise StrategyError(f"{where}: {label} must be a positive int, got {value!r}")
    return value


def check_contract(module: ModuleType, path: Path, digest: str = "") -> StrategyModule:
    """Check an imported module's exports against the strategy contract."""
    where = path.name
    sid = getattr(module, "STRATEGY_ID", None)
    if not isinstance(sid, str) or not _ID.match(sid):
        raise StrategyError(f"{where}: STRATEGY_ID must be a string matching [a-z][a-z0-9_]*")
    version = _positive_int(module, "VERSION", where)
    warmup = _positive_int(module, "WARMUP_BARS", where)
    params_cls = getattr(module, "Params", None)
    if not (isinstance(params_cls, type) and issubclass(params_cls, BaseModel)):
        raise StrategyError(f"{where}: Params must be a pydantic BaseModel subclass")
    if not params_cls.model_config.get("frozen"):
        raise StrategyError(f"{where}: Params must be frozen (model_config frozen=True)")
    no_default = [k for k, f in params_cls.model_fields.items() if f.is_required()]
    if no_default:
        raise StrategyError(f"{where}: Params field(s) without a default: {', '.join(no_default)}")
    param_space(params_cls)  # every field must declare a space
    generate = getattr(module, "generate", None)
    if not callable(generate):
        raise StrategyError(f"{where}: missing function generate(bars, params)")
    return StrategyModule(
        strategy_id=sid,
        version=version,
        warmup_bars=warmup,
        params_cls=params_cls,
        generate=generate,
        path=path,
        sha256=digest,
        doc=(module.__doc__ or "").strip(),
    )


def describe(path: str | Path) -> dict[str, Any]:
    """JSON-friendly description of the strategy at ``path`` (loads it: trusted code only)."""
    mod = load_module(path)
    return {
        "strategy_id": mod.strategy_id,
        "version": mod.version,
        "warmup_bars": mod.warmup_bars,
        "path": str(mod.path),
        "sha256": mod.sha256,
        "params": mod.params_cls().model_dump(mode="json"),
        "param_space": param_space(mod.params_cls),
        "doc": mod.doc,
    }


def param_space(params_cls: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """The search space of every field of ``params_cls`` (StrategyError if one has none)."""
    return {name: _field_space(params_cls, name) for name in params_cls.model_fields}


def _field_space(params_cls: type[BaseModel], name: str) -> dict[str, Any]:
    field = params_cls.model_fields[name]
    default = field.get_default(call_default_factory=True)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    space = extra.get("space")
    if isinstance(space, list) and space:
        return {"kind": "choice", "choices": list(space), "default": default}
    if get_origin(field.annotation) is Literal:
        return {"kind": "choice", "choices": list(get_args(field.annotation)), "default": default}
    if field.annotation is bool:
        return {"kind": "choice", "choices": [False, True], "default": default}
    low = high = None
    low_inc = high_inc = True
    for m in field.metadata:
        if isinstance(m, at.Ge | at.Gt):
            low, low_inc = (m.ge, True) if isinstance(m, at.Ge) else (m.gt, False)
        elif isinstance(m, at.Le | at.Lt):
            high, high_inc = (m.le, True) if isinstance(m, at.Le) else (m.lt, False)
    if low is None or high is None or field.annotation not in (int, float):
        raise StrategyError(
            f"Params.{name}: declare a search space (ge/le bounds on an int or float, "
            f"a Literal, or json_schema_extra={{'space': [...]}})"
        )
    kind = "int" if field.annotation is int else "float"
    return {
        "kind": kind, "low": low, "high": high, "low_inclusive": low_inc,
        "high_inclusive": high_inc, "default": default,
    }  # fmt: skip


def parse_params(params_cls: type[BaseModel], values: dict[str, Any] | None) -> BaseModel:
    """Build ``params_cls`` from ``values``; unknown keys or bad values raise a one-line
    ConfigError."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(params_cls.model_fields))
    if unknown:
        allowed = ", ".join(params_cls.model_fields)
        raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}")
    try:
        return params_cls(**values)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "params"
            got = f" (got {err['input']!r})" if loc in values else ""
            problems.append(f"{loc}: {err['msg']}{got}")
        raise ConfigError("invalid parameters: " + "; ".join(problems)) from None


def find_strategies(root: str | Path = STRATEGIES_ROOT) -> list[StrategyRef]:
    """Strategy files ``<root>/<family>/v<N>.py`` sorted by (id, version); nothing is executed."""
    refs = []
    for path in sorted(Path(root).glob("*/v*.py")):
        m = _VERSION_FILE.match(path.name)
        if not m:
            continue
        consts = _read_constants(path)
        sid, version = consts.get("STRATEGY_ID"), consts.get("VERSION")
        if not isinstance(sid, str) or sid != path.parent.name or version != int(m.group(1)) \
                or not isinstance(version, int):
            raise StrategyError(
                f"{path}: STRATEGY_ID/VERSION ({sid!r}, {version!r}) do not match the path "
                f"({path.parent.name!r}, {int(m.group(1))})"
            )
        refs.append(StrategyRef(sid, version, path.resolve()))
    return sorted(refs, key=lambda r: (r.strategy_id, r.version))


def _read_constants(path: Path) -> dict[str, Any]:
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError) as e:
        raise StrategyError(f"{path}: cannot parse: {e}") from e
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and isinstance(node.value, ast.Constant):
                    out[t.id] = node.value.value
    return out


class InProcessStrategy:
    """``ports.SignalSource`` running a trusted strategy module in this process."""

    def __init__(self, path: str | Path, params: dict[str, Any] | None = None) -> None:
        self.module = load_module(path)
        self.strategy_id = self.module.strategy_id
        self.version = self.module.version
        self.warmup_bars = self.module.warmup_bars
        self.default_params = parse_params(self.module.params_cls, params)

    def generate(self, bars: pl.DataFrame, params: dict | None = None) -> pl.DataFrame:
        """Validated signals for one symbol's bars (extra columns such as ``symbol`` are
        dropped)."""
        p = self.default_params if params is None else parse_params(self.module.params_cls, params)
        missing = [c for c in BARS_COLUMNS if c not in bars.columns]
        if missing:
            raise DataError(f"bars are missing column(s): {', '.join(missing)}")
        view = bars.select(BARS_COLUMNS)
        try:
            out = self.module.generate(view, p)
        except TradingBrainError:
            raise
        except Exception as e:  # strategy code failed: reject the version, keep the message
            raise StrategyError(
                f"{self.strategy_id} v{self.version}: generate raised {type(e).__name__}: {e}"
            ) from e
        return validate_signals(out, view)

    def generate_many(self, frames: Mapping[str, pl.DataFrame], params: dict | None = None
                      ) -> dict[str, pl.DataFrame | StrategyError]:
        """``generate`` per symbol; a symbol's StrategyError is returned, not raised."""
        return generate_each(self, frames, params)

    def close(self) -> None:
        """Nothing to release in-process."""


def generate_each(src: SignalSource, frames: Mapping[str, pl.DataFrame], params: dict | None = None
                  ) -> dict[str, pl.DataFrame | StrategyError]:
    """The ``generate_many`` contract on ``src.generate``, one symbol at a time: a symbol's
    ``StrategyError`` is returned as its result, not raised."""
    out: dict[str, pl.DataFrame | StrategyError] = {}
    for symbol, bars in frames.items():
        try:
            out[symbol] = src.generate(bars, params)
        except StrategyError as e:
            out[symbol] = e
    return out
