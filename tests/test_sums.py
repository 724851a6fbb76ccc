"""Report sums do not depend on the order rows arrive in (pipeline.sums)."""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np

from pipeline.sums import CREDIT_SCALE, MONEY_SCALE, grouped_sum, sql_sum
from tests.helpers import cli

TABLES = ("session_sources", "conversions", "session_costs")


def test_sql_sum_is_the_same_in_every_order():
    # 0.1 + 0.2 + 0.3 is 0.6000000000000001 as floats; 0.3 + 0.2 + 0.1 is 0.6
    assert (0.1 + 0.2) + 0.3 != (0.3 + 0.2) + 0.1
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (g, v)")
    sums = []
    for order in ([0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.2, 0.3, 0.1]):
        con.execute("DELETE FROM t")
        con.executemany("INSERT INTO t VALUES ('a', ?)", [(v,) for v in order])
        sums.append(con.execute(f"SELECT {sql_sum('v', MONEY_SCALE)} FROM t GROUP BY g").fetchone()[0])
    assert sums == [0.6, 0.6, 0.6]
    # no rows, and NULL terms: 0.0 like total()
    assert con.execute(f"SELECT {sql_sum('v', MONEY_SCALE)} FROM t WHERE 0").fetchone()[0] == 0.0
    con.execute("INSERT INTO t VALUES ('a', NULL)")
    assert con.execute(f"SELECT {sql_sum('v', MONEY_SCALE)} FROM t").fetchone()[0] == 0.6


def test_grouped_sum_is_the_same_in_every_order_and_matches_sql():
    rng = np.random.default_rng(3)
    values = rng.random(10_000) / 3
    groups = rng.integers(0, 7, size=10_000)
    first = grouped_sum(groups, values, 7, CREDIT_SCALE)
    for _ in range(3):
        perm = rng.permutation(len(values))
        assert np.array_equal(grouped_sum(groups[perm], values[perm], 7, CREDIT_SCALE), first)
    assert np.allclose(first, np.bincount(groups, weights=values, minlength=7), rtol=0, atol=1e-9)
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (g, v)")
    con.executemany("INSERT INTO t VALUES (?, ?)", zip(groups.tolist(), values.tolist()))
    sql = dict(con.execute(f"SELECT g, {sql_sum('v', CREDIT_SCALE)} FROM t GROUP BY g").fetchall())
    assert [sql[g] for g in range(7)] == first.tolist()


def _renamed_and_reordered(src_path, dst_path):
    """The same data with every id replaced by its SHA-256 and the rows inserted in another order."""
    src, dst = sqlite3.connect(src_path), sqlite3.connect(dst_path)
    for table in TABLES:
        dst.execute(src.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0])
        rows = src.execute(f"SELECT * FROM {table}").fetchall()
        n_ids = 1 if table == "session_costs" else 2

        def rename(v):
            return hashlib.sha256(str(v).encode()).hexdigest()

        rows = sorted((*map(rename, r[:n_ids]), *r[n_ids:]) for r in rows)[::-1]
        dst.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    dst.commit()


def test_the_report_is_identical_for_renamed_keys_in_another_row_order(small_demo, tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    sqlite3.connect(small_demo).backup(sqlite3.connect(a))
    _renamed_and_reordered(small_demo, b)
    for db in (a, b):
        assert cli("run", str(db), "--model", "linear", "--csv", str(db.with_suffix(".csv"))).returncode == 0
    assert a.with_suffix(".csv").read_bytes() == b.with_suffix(".csv").read_bytes()

    def stored(db):
        return sqlite3.connect(db).execute("SELECT * FROM channel_reporting ORDER BY channel_name, date").fetchall()

    assert stored(a) == stored(b)  # to the last bit, not only to the printed decimals
