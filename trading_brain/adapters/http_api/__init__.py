"""The read-only HTTP data API (``trading-brain api``): FastAPI app, event stream, metrics.

- ``warehouse.ReadOnlyWarehouse``: every read is one short **read-only** DuckDB connection
  (opened, queried, closed); a lock the writer holds is retried within a small budget, then
  ``WarehouseLocked`` (the app answers 503). Nothing here ever opens the file read-write.
- ``queries``: one SQL builder per endpoint (filters and pagination), no I/O.
- ``app.create_app``: the FastAPI app over a ``Reads`` port (bearer token, 401/422/503).
- ``events``: Server-Sent Events of fills, halts and evolution decisions (polling).
- ``metrics``: a Prometheus collector that reads the warehouse at scrape time.
"""
