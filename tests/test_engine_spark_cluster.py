"""The Spark engine on a real standalone cluster: a master and two workers started by this test on
127.0.0.1 (pyspark's bundled ``spark-class``), stopped at the end even on failure. The workers run from
a folder where ``pipeline`` is not importable and get no PYTHONPATH, so the per-journey model can only
run there because ``open_engine`` shipped the package (``addPyFile``): the test checks both that the
executors imported it from the shipped zip and that their credit equals the SQLite engine's."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.convert import convert
from pipeline.window import Window
from tests.helpers import run_db

pytest.importorskip("pyspark", reason="pyspark is not installed (requirements-dev.txt)")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 (.ci/run installs openjdk-17-jre-headless); no java here", allow_module_level=True)

from pipeline.engines import spark as S  # noqa: E402

START_TIMEOUT = 120  # s for the master and both workers to come up on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_class() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-class")


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """spark://127.0.0.1:PORT with two one-core workers; every process stopped at the end."""
    base = tmp_path_factory.mktemp("spark-cluster")
    away = base / "nowhere"  # the workers' folder: no pipeline package here
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
    env.update(SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1", PYSPARK_PYTHON=sys.executable)
    port, ui = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        log = open(base / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process below)
        procs.append(subprocess.Popen([_spark_class(), *args], cwd=away, env=env, stdout=log, stderr=log))
        log.close()

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
              "--webui-port", str(ui))  # fmt: skip
        for i in (1, 2):
            work = base / f"work{i}"
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "1",
                  "--memory", "1g", "--webui-port", str(_free_port()), "--work-dir", str(work))  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while _alive_workers(ui) < 2:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                logs = "\n".join((base / f"{n}.log").read_text(errors="replace")[-2000:] for n in ("master", "worker1"))
                pytest.fail(f"the Spark cluster did not start within {START_TIMEOUT} s:\n{logs}")
            time.sleep(1)
        yield url
    finally:
        S.stop_spark(jvm=True)
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_models_ship_to_and_run_on_the_cluster(cluster, small_demo, tmp_path):
    db = tmp_path / "run.db"
    shutil.copy(small_demo, db)
    run_db(db, model="ihc")
    lake = tmp_path / "lake"
    convert(db, f"parquet:///{lake}")  # the inputs only: the report below comes from the cluster's credit
    con = sqlite3.connect(db)
    stored = {(c, s): v for c, s, v in con.execute("SELECT conv_id, session_id, ihc FROM attribution_customer_journey")}
    report = {(r[0], r[1]): tuple(r[2:]) for r in con.execute("SELECT * FROM channel_reporting")}
    con.close()
    conf = {
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.executor.memory": "512m",
        "spark.cores.max": "2",
        "spark.sql.shuffle.partitions": "4",
    }
    with S.open_engine(f"parquet:///{lake}", master=cluster, conf=conf) as engine:
        sc = engine.spark.sparkContext
        assert sc.master == cluster

        def where(_):
            import os as _os

            import pipeline

            return pipeline.__file__, _os.getcwd()

        places = sc.parallelize(range(4), 4).map(where).collect()
        credits = S.attribute(engine, Window(), "ihc", buckets=4)
        rows = S.channel_report(engine, credits)
        executors = sc._jsc.sc().getExecutorMemoryStatus().size() - 1  # without the driver
    assert executors == 2
    assert all("pipeline.zip" in file and not Path(cwd, "pipeline").exists() for file, cwd in places), places
    got = dict(zip(zip(credits["conv_id"].to_pylist(), credits["session_id"].to_pylist()), credits["ihc"].to_pylist()))
    assert got.keys() == stored.keys() and len(got) > 500
    assert max(abs(got[k] - stored[k]) for k in stored) <= 1e-9
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == report
