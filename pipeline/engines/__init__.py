"""Engines that run the set work where the data lives (issue 14). ``duckdb``: a DuckDB file or a Parquet
folder, run by DuckDB. Not wired into the runner yet: each engine offers the stages' set work as plain
functions with the SQLite engine's semantics, checked by parity tests against it."""
