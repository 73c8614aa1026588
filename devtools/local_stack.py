"""The Docker-free stand-ins for the compose services, shared by the run script, the tests and the benchmarks.

moto's S3 server plays MinIO and the local PostgreSQL holds the Iceberg catalog; Spark jobs run in local mode
(or on a standalone cluster) with the jars from ``.jars/``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUCKETS = ("landing", "lakehouse")
S3_KEY = "test"  # moto accepts any credentials; these never leave this machine
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
# What include/docker/postgres-init/30-analytics.sql installs in the analytics database (trips' point columns).
ANALYTICS_EXTENSIONS = ("postgis",)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Block until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def jar_list(jars_dir: Path | None = None) -> str:
    """Comma-separated jars for ``spark.jars`` (see devtools/setup.sh for where each comes from)."""
    folder = Path(jars_dir or os.environ.get("LAKEHOUSE_JARS_DIR", ROOT / ".jars"))
    jars = sorted(str(p) for p in folder.glob("*.jar"))
    if not jars:
        raise FileNotFoundError(f"no jars in {folder}: run `make setup` first")
    return ",".join(jars)


def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_KEY, region_name="us-east-1"
    )


@contextmanager
def moto_s3(log_path: Path | None = None) -> Iterator[str]:
    """Run moto's S3 server on a free port with the lakehouse buckets; yield its endpoint URL."""
    port = free_port()
    log = open(log_path or os.devnull, "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    try:
        wait_for_port(port)
        endpoint = f"http://127.0.0.1:{port}"
        client = s3_client(endpoint)
        for bucket in BUCKETS:
            client.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _admin(*statements: str, database: str = "postgres") -> None:
    """Run statements on the local PostgreSQL (by default its maintenance database), outside a transaction."""
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def recreate_database(name: str, *, extensions: tuple[str, ...] = ()) -> None:
    """Drop and create a PostgreSQL database on the local server, with ``extensions`` (e.g. ``("postgis",)``)."""
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    create_extensions(name, *extensions)


def create_extensions(database: str, *extensions: str) -> None:
    """``CREATE EXTENSION IF NOT EXISTS`` each of ``extensions`` in ``database`` (as the compose init SQL does)."""
    if extensions:
        _admin(*(f'CREATE EXTENSION IF NOT EXISTS "{name}"' for name in extensions), database=database)


def drop_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def job_env(s3_endpoint: str, catalog_db: str, *, driver_memory: str = "2g") -> dict[str, str]:
    """The Spark job environment (the same variables the operator derives from the Airflow connections)."""
    return {
        "LAKEHOUSE_CATALOG_URI": f"jdbc:postgresql://{PG_HOST}:{PG_PORT}/{catalog_db}",
        "LAKEHOUSE_CATALOG_USER": PG_USER,
        "LAKEHOUSE_CATALOG_PASSWORD": "",
        "LAKEHOUSE_WAREHOUSE": "s3a://lakehouse/warehouse",
        "S3_ENDPOINT": s3_endpoint,
        "S3_ACCESS_KEY": S3_KEY,
        "S3_SECRET_KEY": S3_KEY,
        "S3_REGION": "us-east-1",
        "SPARK_EXTRA_JARS": jar_list(),
        "SPARK_DRIVER_MEMORY": driver_memory,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def airflow_env(airflow_home: Path, s3_endpoint: str, catalog_db: str) -> dict[str, str]:
    """Environment for an isolated Airflow (SQLite metadata) whose Spark tasks run locally on these services.

    The local runner hands the worker's environment to the job, so add ``job_env()``'s ``SPARK_EXTRA_JARS`` too.
    """
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
        "LAKEHOUSE_SPARK_RUNNER": "local",
        "LAKEHOUSE_SPARK_LOCAL_COMMAND": f"{sys.executable} -m lakehouse_jobs",
        "LAKEHOUSE_SPARK_DRIVER_MEMORY": "2g",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        "AIRFLOW_CONN_LAKEHOUSE_S3": json.dumps(
            {
                "conn_type": "aws",
                "login": S3_KEY,
                "password": S3_KEY,
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
        "AIRFLOW_CONN_ICEBERG_CATALOG": json.dumps(
            {"conn_type": "postgres", "host": PG_HOST, "port": PG_PORT, "login": PG_USER, "schema": catalog_db}
        ),
    }


def pyiceberg_catalog(s3_endpoint: str, catalog_db: str):
    """PyIceberg's SqlCatalog over the same catalog database and warehouse."""
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "lake",
        uri=f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{catalog_db}",
        warehouse="s3://lakehouse/warehouse",
        **{
            "s3.endpoint": s3_endpoint,
            "s3.access-key-id": S3_KEY,
            "s3.secret-access-key": S3_KEY,
            "s3.region": "us-east-1",
        },
    )


class CuttableProxy:
    """A TCP proxy on a free port in front of ``upstream`` (host, port) that can go away, as a dead server does.

    ``cut()`` closes the listener and resets every open connection, so clients see resets, then refusals;
    ``restore()`` listens again on the same port (an endpoint URL stays valid). With ``cut_on``, the proxy cuts
    itself when a request towards ``upstream`` contains those bytes (e.g. the path of a table's data files), so the
    cut falls exactly inside the read or write it names; with ``cut_after``, once that many bytes have gone towards
    ``upstream`` (``sent``), so the cut falls inside an upload. The S3 endpoint tests use it in front of moto.
    """

    def __init__(self, upstream: tuple[str, int], cut_on: bytes | None = None, cut_after: int | None = None) -> None:
        import threading

        self.upstream = upstream
        self.cut_on = cut_on
        self.cut_after = cut_after
        self.sent = 0
        self.cut_done = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self, port: int) -> socket.socket:
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while data := source.recv(64 * 1024):
                if upstream and self._cuts_at(data):
                    self.cut()
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)

    def _cuts_at(self, data: bytes) -> bool:
        """Whether ``data``, about to go towards upstream, is where the proxy goes away."""
        if self.cut_on is not None and self.cut_on in data:
            return True
        if self.cut_after is None:
            return False
        with self._lock:
            self.sent += len(data)
            return self.sent >= self.cut_after

    def cut(self) -> None:
        """Stop listening and reset every open connection."""
        import contextlib

        _close(self._listener)
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):  # a zero linger sends RST: the connection is reset, as a dead server's
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            _close(sock)
        self.cut_done.set()

    def restore(self) -> None:
        """Listen again on the same port; no more cuts until ``cut_on`` or ``cut_after`` is set again."""
        self.cut_on = self.cut_after = None
        self.cut_done.clear()
        self._listener = self._listen(self.port)

    def close(self) -> None:
        self.cut_on = self.cut_after = None
        self.cut()


def _close(sock: socket.socket) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
