"""Reports people would rather look at than read (issue 13): one period of trading as Markdown
with PNG charts and as one self-contained HTML page.

- ``period``: which timestamps a report covers (a UTC day, the week ending a day, a range);
- ``build.write_report``: read (``adapters.duckdb.report_reads``), compute (``figures``), draw
  (``charts``, matplotlib Agg), render (``sections``, ``render``) and write ``var/reports/``;
- ``service``: what the CLI, the Dagster assets and ``simulate`` call (home -> files).
"""
