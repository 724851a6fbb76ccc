"""The engines' set-work SQL written once (DuckDB's dialect, as ``pipeline.engines.duckdb`` writes it) and
compiled for the other engines: PostgreSQL and Spark SQL (run for real in tests), BigQuery, Snowflake and
Databricks (compiled and parsed back in tests; they cannot be reached from here).

``transpile(sql, dialect, params)`` parses the DuckDB SQL with sqlglot, binds the ``$name`` parameters as
literals (sqlglot quotes them for the target; the values are dates, day counts and dates read back from
the data, never SQL), rewrites what has no direct equivalent, and generates the target's SQL:

| DuckDB | rewritten as (every target) |
|---|---|
| ``try_strptime(x, '%Y-%m-%d[ %H:%M:%S]')`` | ``CASE WHEN NOT <x matches the exact shape> THEN NULL WHEN <day ≤ days in that month, leap years counted> THEN <the target's strict parse> END`` — NULL instead of an error for a date that is not a real day, as SQLite's ``date()`` check |
| ``regexp_full_match(x, p)`` | the target's regular-expression match of ``^(p)$`` |
| ``regexp_full_match(x, p)`` (Spark) | ``x RLIKE '^(p)\\z'``: Java's ``$`` would also match before a final newline |
| ``to_days(n)`` | ``n * INTERVAL '1' DAY`` (Postgres) / ``make_dt_interval(n)`` (Spark) / ``INTERVAL n DAY`` |
| ``sum(CAST(x AS BIGINT))`` (Spark) | ``sum(CAST(CAST(x AS BIGINT) AS DECIMAL(38, 0)))``: exact, as DuckDB's HUGEINT sum (Spark's BIGINT sum would overflow) |
| ``TRY_CAST(x AS DOUBLE)`` | Postgres (no TRY_CAST): ``CASE WHEN x matches a decimal/exponent number THEN CAST(x AS DOUBLE PRECISION) END``; Snowflake: ``TRY_CAST`` of ``x`` as text |
| ``strftime(ts, f)`` (BigQuery) | ``FORMAT_TIMESTAMP(f, ts)`` (sqlglot would say ``FORMAT_DATE``, which refuses a TIMESTAMP) |
| ``hex(text)`` (Postgres, BigQuery) | ``upper(encode(convert_to(x, 'UTF8'), 'hex'))`` / ``UPPER(TO_HEX(CAST(x AS BYTES)))`` |
| ``hash(x)`` (Postgres, BigQuery) | ``hashtextextended(CAST(x AS TEXT), 0)`` / ``FARM_FINGERPRINT(CAST(x AS STRING))``: a 64-bit hash (the path summaries' user buckets, ``abs(hash(x) % n)``) |
| ``HUGEINT`` | ``DECIMAL(38, 0)`` |
| ``ORDER BY k`` (Postgres) | ``ORDER BY k COLLATE "C"``: byte order, as SQLite's BINARY collation, whatever the database's locale |
| ``FROM (subquery)`` without alias (Postgres < 16 needs one) | ``FROM (subquery) AS _q1`` |

sqlglot itself turns ``count(*) FILTER (WHERE p)`` into ``COUNTIF``/``COUNT_IF`` for BigQuery/Snowflake and
``SEMI JOIN`` into ``EXISTS`` where there is none. Only the DuckDB engine's own SQL goes through here, so
the rewrites cover exactly the functions it uses (tests/test_engine_dialects.py compiles each query of
validation, journeys, the report and the output tables for every target and parses it back).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping, Optional

DIALECTS = ("postgres", "spark", "bigquery", "snowflake", "databricks")
# Databricks runs Spark SQL: Java regexes ($ also matches before a final newline), make_dt_interval, and a
# bigint sum that overflows (or, in ANSI mode, fails) where SQLite's exact sum does not.
SPARK_SQL = ("spark", "databricks")

DATE_RE = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
TIME_RE = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
SHAPES = {"%Y-%m-%d": DATE_RE, "%Y-%m-%d %H:%M:%S": f"{DATE_RE} {TIME_RE}"}
NUMBER_RE = "^[[:space:]]*[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?[[:space:]]*$"

# A date-shaped __x__ that is a real day (month lengths, leap years), evaluated in CASE order so the casts
# only see digits.
_STRICT_PARSE = """
CASE WHEN NOT regexp_full_match(__x__, '{shape}') THEN NULL
     WHEN CAST(substr(__x__, 9, 2) AS INTEGER) <= CASE CAST(substr(__x__, 6, 2) AS INTEGER)
         WHEN 2 THEN CASE WHEN CAST(substr(__x__, 1, 4) AS INTEGER) % 4 = 0
                              AND (CAST(substr(__x__, 1, 4) AS INTEGER) % 100 <> 0
                                   OR CAST(substr(__x__, 1, 4) AS INTEGER) % 400 = 0) THEN 29 ELSE 28 END
         WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30 ELSE 31 END
     THEN strptime(__x__, '{fmt}') END
"""


def transpile(sql: str, dialect: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """DuckDB-dialect ``sql`` (``$name`` parameters bound from ``params``) as ``dialect``'s SQL."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    items = tuple(sorted((params or {}).items()))
    return _transpile(sql, dialect, items)


@lru_cache(maxsize=256)
def _transpile(sql: str, dialect: str, params: tuple) -> str:
    import sqlglot

    tree = sqlglot.parse_one(sql, read="duckdb")
    tree = _bind(tree, dict(params))
    tree = tree.transform(lambda node: _rewrite(node, dialect), copy=False)
    if dialect == "postgres":
        tree = _postgres(tree)
    if dialect == "bigquery":
        tree = tree.transform(_bigquery_format, copy=False)
    return tree.sql(dialect=dialect)


def _bind(tree, params: dict):
    from sqlglot import exp

    def bind(node):
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            name = node.name
            if name not in params:
                raise KeyError(f"SQL parameter ${name} has no value")
            value = params[name]
            return exp.null() if value is None else exp.convert(value)
        return node

    return tree.transform(bind, copy=False)


def _rewrite(node, dialect: str):
    from sqlglot import exp

    if isinstance(node, exp.Anonymous) and node.name.lower() == "try_strptime":
        x, fmt = node.expressions
        shape = SHAPES.get(fmt.name)
        if shape is None:
            raise ValueError(f"try_strptime format {fmt.name!r} has no strict form here")
        template = _parse(_STRICT_PARSE.format(shape=shape, fmt=fmt.name))
        strict = template.transform(
            lambda n: x.copy() if isinstance(n, exp.Column) and n.name == "__x__" else n, copy=True
        )
        return strict.transform(lambda n: _rewrite(n, dialect), copy=False)
    if isinstance(node, exp.RegexpFullMatch):
        pattern = f"^({node.expression.name})" + ("\\z" if dialect in SPARK_SQL else "$")
        return exp.RegexpLike(this=node.this, expression=exp.Literal.string(pattern))
    if isinstance(node, exp.ToDays):
        one_day = exp.Interval(this=exp.Literal.string("1"), unit=exp.var("DAY"))
        if dialect == "postgres":
            return exp.Mul(this=exp.Paren(this=node.this), expression=one_day)
        if dialect in SPARK_SQL:
            return exp.Anonymous(this="make_dt_interval", expressions=[node.this])
        return exp.Interval(this=node.this, unit=exp.var("DAY"))
    if isinstance(node, exp.TryCast) and dialect in ("postgres", "snowflake"):
        if dialect == "snowflake":  # Snowflake's TRY_CAST takes text only
            text = exp.Cast(this=node.this, to=exp.DataType.build("VARCHAR"))
            return exp.TryCast(this=text, to=node.args["to"], requires_string=True)
        matches = exp.RegexpLike(this=node.this.copy(), expression=exp.Literal.string(NUMBER_RE))
        cast = exp.Cast(this=node.this, to=node.args["to"])
        return exp.Case(ifs=[exp.If(this=matches, true=cast)])
    if isinstance(node, exp.Hex) and dialect in ("postgres", "bigquery"):  # hex of the text's UTF-8 bytes
        if dialect == "postgres":
            utf8 = exp.Anonymous(this="convert_to", expressions=[node.this, exp.Literal.string("UTF8")])
            return exp.Upper(this=exp.Anonymous(this="encode", expressions=[utf8, exp.Literal.string("hex")]))
        as_bytes = exp.Cast(this=node.this, to=exp.DataType.build("BINARY"))
        return exp.Upper(this=exp.Anonymous(this="TO_HEX", expressions=[as_bytes]))
    if isinstance(node, exp.Anonymous) and node.name.lower() == "hash" and dialect in ("postgres", "bigquery"):
        # a 64-bit hash of the value's text (signed: bucket numbers are taken as abs(hash % n))
        if dialect == "postgres":
            text = exp.Cast(this=node.expressions[0], to=exp.DataType.build("TEXT"))
            return exp.Anonymous(this="hashtextextended", expressions=[text, exp.Literal.number(0)])
        text = exp.Cast(this=node.expressions[0], to=exp.DataType.build("VARCHAR"))
        return exp.Anonymous(this="FARM_FINGERPRINT", expressions=[text])
    if isinstance(node, exp.Sum) and dialect in SPARK_SQL and _is_bigint_cast(node.this):
        return exp.Sum(this=exp.Cast(this=node.this, to=exp.DataType.build("DECIMAL(38, 0)")))
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.INT128:
        return exp.DataType.build("DECIMAL(38, 0)")
    return node


def _is_bigint_cast(node) -> bool:
    from sqlglot import exp

    return isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.BIGINT


def _bigquery_format(node):
    """strftime(ts, f) → FORMAT_TIMESTAMP(f, ts): sqlglot says FORMAT_DATE, which refuses a TIMESTAMP."""
    from sqlglot import exp

    if isinstance(node, exp.TimeToStr):
        return exp.Anonymous(
            this="FORMAT_TIMESTAMP", expressions=[exp.Literal.string(node.args["format"].name), node.this]
        )
    return node


@lru_cache(maxsize=8)
def _parse_cached(text: str):
    import sqlglot

    return sqlglot.parse_one(text, read="duckdb")


def _parse(text: str):
    return _parse_cached(text).copy()


def _postgres(tree):
    """Postgres: byte-order sorting and aliases on FROM subqueries."""
    from sqlglot import exp

    for order in tree.find_all(exp.Order):
        for ordered in order.expressions:
            key = ordered.this
            if isinstance(key, exp.Column):
                ordered.set("this", exp.Collate(this=key.copy(), expression=exp.to_identifier("C", quoted=True)))
    n = 0
    for sub in list(tree.find_all(exp.Subquery)):
        if not sub.alias and isinstance(sub.parent, (exp.From, exp.Join)):
            n += 1
            sub.set("alias", exp.TableAlias(this=exp.to_identifier(f"_q{n}")))
    return tree
