"""Host side of the reply format: expand the (run-length encoded) signal columns of a reply.

Contract: ``decode_columns(columns, n_rows)`` refuses (``SandboxViolation``) a column whose runs do
not cover exactly ``n_rows`` rows BEFORE expanding anything, so a forged reply cannot make the host
allocate more than one frame of the bars' size; the values themselves are checked afterwards by
``domain.strategy.validate_signals``. An absent optional column (``regime``) comes back all null.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from trading_brain.adapters.sandbox.protocol import SignalColumns
from trading_brain.domain.strategy import SIGNAL_SCHEMA
from trading_brain.errors import SandboxViolation


def decode_columns(columns: SignalColumns, n_rows: int) -> pl.DataFrame:
    """Expand the (possibly run-length encoded) reply columns into a frame of ``n_rows`` rows.

    A column whose runs do not add up to exactly ``n_rows`` is refused BEFORE expansion, so a
    forged reply cannot make the host allocate more than one frame of the bars' size. Expansion
    is numpy/list work, one polars frame built at the end (small polars calls cost ~0.1 ms each).
    """
    out: dict[str, Any] = {}
    for name, dtype in SIGNAL_SCHEMA.items():
        col = getattr(columns, name)
        if col is None:  # only ``regime``: all null (a native fill; a list of None is slow)
            out[name] = pl.Series(name, [None], dtype=dtype).new_from_index(0, n_rows)
            continue
        values, lengths = col.values, col.lengths
        if lengths is not None:
            if len(lengths) != len(values) or sum(lengths) != n_rows:
                raise SandboxViolation(f"column {name!r}: runs do not cover exactly {n_rows} rows")
            if dtype == pl.Float64 and None not in values:
                values = np.repeat(np.asarray(values, dtype=np.float64), lengths)
            elif n_rows >= 4096:  # native gather beats a Python expansion on long columns
                out[name] = pl.Series(name, values, dtype=dtype, strict=True).gather(
                    np.repeat(np.arange(len(values)), lengths))
                continue
            else:
                values = [v for v, k in zip(values, lengths, strict=True) for _ in range(k)]
        out[name] = pl.Series(name, values, dtype=dtype, strict=True)
    return pl.DataFrame(out)
