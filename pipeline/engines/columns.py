"""A column as the SQLite engine holds it, in DuckDB-dialect SQL (compiled per engine as the rest of the
set work): the expressions the engines' queries (``engines.duckdb``, ``engines.paths``) build on a column
given its type name as the engine reports it (``engine.present``).

- ``as_text(c, dtype)``: the column as text ('YYYY-MM-DD', 'HH:MM:SS', ids as text), cast unless VARCHAR;
- ``as_number(c, dtype)``: the column as a number (``TRY_CAST`` to DOUBLE unless of a numeric type: a text
  that is no number is NULL);
- ``is_numeric(dtype)``: whether a type name is a numeric type.
"""

from __future__ import annotations

NUMERIC_TYPES = ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT")


def is_numeric(dtype: str) -> bool:
    return dtype.upper().startswith(NUMERIC_TYPES) or dtype.upper().startswith("DECIMAL")


def as_text(c: str, dtype: str) -> str:
    """Column ``c`` as text the way SQLite holds it ('YYYY-MM-DD', 'HH:MM:SS', ids as text)."""
    return c if dtype.upper() == "VARCHAR" else f"CAST({c} AS VARCHAR)"


def as_number(c: str, dtype: str) -> str:
    """Column ``c`` as a number (NULL for a text that is not one)."""
    return c if is_numeric(dtype) else f"TRY_CAST({c} AS DOUBLE)"
