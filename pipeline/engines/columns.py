"""A column as the SQLite engine holds it, in DuckDB-dialect SQL (compiled per engine as the rest of the
set work): the expressions the engines' queries (``engines.duckdb``, ``engines.paths``) build on a column
given its type name as the engine reports it (``engine.present``).

- ``as_text(c, dtype)``: the column as text ('YYYY-MM-DD', 'HH:MM:SS', ids as text), cast unless VARCHAR;
- ``as_number(c, dtype)``: the column as a number (``TRY_CAST`` to DOUBLE unless of a numeric type: a text
  that is no number is NULL);
- ``is_numeric(dtype)``: whether a type name is a numeric type;
- ``type_words(dtype)``: what kind of values a column of that type holds, in words ('text', 'integer',
  'real' for a floating-point type, 'decimal', 'binary (BLOB)', else the type's name in lower case) — as
  ``pipeline.validate`` words SQLite's storage classes.
"""

from __future__ import annotations

INTEGER_TYPES = ("BIGINT", "INTEGER", "INT", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "INT64")
TEXT_TYPES = ("VARCHAR", "TEXT", "STRING", "CHAR", "CHARACTER VARYING", "CHARACTER", "BPCHAR")
BINARY_TYPES = ("BLOB", "BYTEA", "BINARY", "VARBINARY", "BYTES")
REAL_TYPES = ("DOUBLE", "FLOAT", "REAL", "FLOAT4", "FLOAT8", "FLOAT64", "DOUBLE PRECISION")  # floating point
DECIMAL_TYPES = ("DECIMAL", "NUMERIC", "NUMBER")
NUMERIC_TYPES = ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT")


def is_numeric(dtype: str) -> bool:
    return dtype.upper().startswith(NUMERIC_TYPES) or dtype.upper().startswith("DECIMAL")


def as_text(c: str, dtype: str) -> str:
    """Column ``c`` as text the way SQLite holds it ('YYYY-MM-DD', 'HH:MM:SS', ids as text)."""
    return c if dtype.upper() == "VARCHAR" else f"CAST({c} AS VARCHAR)"


def as_number(c: str, dtype: str) -> str:
    """Column ``c`` as a number (NULL for a text that is not one)."""
    return c if is_numeric(dtype) else f"TRY_CAST({c} AS DOUBLE)"


def type_words(dtype: str) -> str:
    """'text', 'integer', 'real' (SQLite's word for floating point), 'decimal' or 'binary (BLOB)' for a
    type name as an engine reports it (``engine.present``: DuckDB's names, or the names an engine maps to
    them), else the name itself in lower case."""
    base = dtype.upper().split("(")[0].strip()
    if base in BINARY_TYPES:
        return "binary (BLOB)"
    if base in TEXT_TYPES:
        return "text"
    if base in INTEGER_TYPES:
        return "integer"
    if base in REAL_TYPES:
        return "real"
    if base in DECIMAL_TYPES:
        return "decimal"
    return dtype.lower()
