"""Benchmark the REST API at a fixed request rate on loopback, against a minimal Flask + mysql-connector baseline.

Run from the project root with MariaDB up (127.0.0.1:3306, root): ``.venv/bin/python bench/api_load.py``.
It loads a throwaway database with the real TiDB loader (``tweets_per_hour``, 20,000 hourly rows in the latest
slice plus an older slice, indexed by the registry's key columns), starts

- the API: ``uvicorn include.api.app:create_app --factory --workers 2`` (JSON access log to a file);
- the baseline, the way the source project served its data: one Flask route per query on Flask's threaded
  development server, a new mysql-connector connection per request, running the very SQL the API runs;

and drives each with an open-loop load generator (a separate process: asyncio, keep-alive HTTP/1.1 connections,
requests sent on a fixed schedule; latency is measured from the scheduled time, so a server that falls behind is
charged for the queueing). Two query kinds: (a) a 100-row page of a range query at a random depth (a cursor /
``after`` taken from a walk of the whole table), (b) a single-row lookup by ``hour_start``.

For each it prints requests/s, p50/p95/p99 latency and the error rate (non-200, failures, unfinished by the end),
then the ratios. ``--capacity`` also steps the rate up to find the highest rate each server sustains with p99 under
``--p99-target`` and no errors. The machine's CPU use (all processes) is printed per run, to spot noisy neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import local_stack  # noqa: E402

MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
DS_OLD, DS = dt.date(2026, 11, 19), dt.date(2026, 11, 20)
START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
# The load generator runs in a child process: it gets the key from the environment, set below for both.
KEY = os.environ.setdefault("LAKEHOUSE_BENCH_API_KEY", "bench-" + uuid.uuid4().hex)


# --- data --------------------------------------------------------------------------------------------------------


def load_database(database: str, hours: int) -> None:
    """Two slices of tweets_per_hour (the newer one ``hours`` rows), loaded with the real loader."""
    import pyarrow as pa
    import pymysql

    from include.api.datasets import key_columns
    from include.serving.tidb import load_slice_tidb

    conn = pymysql.connect(**MY, autocommit=True, local_infile=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.select_db(database)
    schema = pa.schema([("ds", pa.date32()), ("hour_start", pa.timestamp("us", tz="UTC")), ("tweets", pa.int64())])
    rnd = random.Random(5)
    for ds, n in ((DS_OLD, hours // 2), (DS, hours)):
        batch = pa.record_batch(
            [
                pa.array([ds] * n, pa.date32()),
                pa.array([START + dt.timedelta(hours=i) for i in range(n)], schema.field(1).type),
                pa.array([rnd.randrange(1, 5000) for _ in range(n)], pa.int64()),
            ],
            schema=schema,
        )
        load_slice_tidb(conn, "tweets_per_hour", ds, schema, 1, [batch], key_columns=key_columns("tweets_per_hour"))
    conn.close()


def mariadb_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in ("mariadbd", "mysqld")]


def drop_database(database: str) -> None:
    import pymysql

    conn = pymysql.connect(**MY, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
    conn.close()


# --- the baseline ------------------------------------------------------------------------------------------------


def serve_baseline(port: int, database: str) -> None:
    """Flask + mysql-connector, a connection per request, the API's own SQL (so only the serving stack differs)."""
    import mysql.connector
    from flask import Flask, jsonify, request

    from include.api.datasets import BY_NAME
    from include.api.query import PageQuery, latest_slice_sql, lookup_sql, page_sql

    dataset = BY_NAME["tweets_per_hour"]
    app = Flask("baseline")

    def query(work):
        conn = mysql.connector.connect(host=MY["host"], port=MY["port"], user=MY["user"], database=database)
        try:
            return work(conn.cursor())
        finally:
            conn.close()

    def row(r):
        return {"ds": r[0].isoformat(), "hour_start": r[1].isoformat() + "Z", "tweets": r[2]}

    @app.get("/hours")
    def hours():
        after = dt.datetime.fromisoformat(request.args["after"])
        ds = dt.date.fromisoformat(request.args["ds"])
        limit = int(request.args.get("limit", 100))
        sql, args = page_sql(PageQuery(dataset, {}, limit, ds, (after,)))

        def page(cur):
            cur.execute(sql, args)
            return cur.fetchall()

        return jsonify({"items": [row(r) for r in query(page)[:limit]]})

    @app.get("/hour/<hour>")
    def hour(hour):
        key = dt.datetime.fromisoformat(hour.rstrip("Z"))

        def lookup(cur):
            cur.execute(latest_slice_sql(), (dataset.name,))
            ds = cur.fetchall()[0][0]
            cur.execute(*lookup_sql(dataset, ds, key))
            return cur.fetchall()

        rows = query(lookup)
        return jsonify(row(rows[0])) if rows else ("not found", 404)

    app.run(host="127.0.0.1", port=port, threaded=True)


# --- servers -----------------------------------------------------------------------------------------------------


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()  # noqa: S310 - loopback
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_api(port: int, database: str, log_path: Path, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LAKEHOUSE_API_DB_HOST": MY["host"],
        "LAKEHOUSE_API_DB_PORT": str(MY["port"]),
        "LAKEHOUSE_API_DB_USER": MY["user"],
        "LAKEHOUSE_API_DB_PASSWORD": MY["password"],
        "LAKEHOUSE_API_DB_NAME": database,
        "LAKEHOUSE_API_KEY_HASHES": hashlib.sha256(KEY.encode()).hexdigest(),
    }
    command = [
        sys.executable, "-m", "uvicorn", "include.api.app:create_app", "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/health")
    return process


def start_baseline(port: int, database: str, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, __file__, "--serve-baseline", str(port), "--database", database]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/hour/{START.replace(tzinfo=None).isoformat()}Z")
    return process


# --- targets -----------------------------------------------------------------------------------------------------


def page_positions(api_port: int, pages: int) -> list[tuple[str, str]]:
    """(cursor, after) pairs at every page boundary of a walk of the newest slice, 100 rows a page."""
    positions, cursor = [], None
    for _ in range(pages):
        url = f"http://127.0.0.1:{api_port}/v1/tweets/per-hour?limit=100" + (f"&cursor={cursor}" if cursor else "")
        body = json.loads(http_get(url))
        cursor = body["next_cursor"]
        if cursor is None:
            break
        positions.append((cursor, body["items"][-1]["hour_start"].rstrip("Z")))
    return positions


def http_get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"X-API-Key": KEY})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.read()


def request_paths(kind: str, server: str, count: int, positions: list[tuple[str, str]], hours: int) -> list[str]:
    """The same random sequence of requests for both servers."""
    rnd = random.Random(42)
    paths = []
    for _ in range(count):
        if kind == "page":
            cursor, after = positions[rnd.randrange(len(positions))]
            paths.append(
                f"/v1/tweets/per-hour?limit=100&cursor={cursor}"
                if server == "api"
                else f"/hours?limit=100&ds={DS}&after={after}"
            )
        else:
            hour = (START + dt.timedelta(hours=rnd.randrange(hours))).replace(tzinfo=None).isoformat() + "Z"
            paths.append(f"/v1/tweets/per-hour/{hour}" if server == "api" else f"/hour/{hour}")
    return paths


# --- load generator (runs in its own process) --------------------------------------------------------------------


async def _fetch(reader, writer, request: bytes) -> tuple[int, bool]:
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, close = None, status_line.startswith(b"HTTP/1.0")
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.strip().lower() == "close"
    if length is None:
        await reader.read()
        close = True
    else:
        await reader.readexactly(length)
    return status, close


class _Connections:
    """Keep-alive connections to one port, at most ``size`` at a time; a request waits for a free one."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.idle: asyncio.Queue = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)

    async def get(self, path: str) -> int:
        conn = await self.idle.get()
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\n\r\n".encode()
            status, close = await _fetch(*conn, request)
            if close:
                conn[1].close()
                conn = None
            return status
        except Exception:
            if conn is not None:
                conn[1].close()
            conn = None
            return 0
        finally:
            self.idle.put_nowait(conn)


async def _drive(port: int, paths: list[str], rate: float, connections: int, grace: float) -> dict:
    # perf_counter, not loop.time(): uvloop's clock has millisecond resolution.
    clock = time.perf_counter
    pool = _Connections(port, connections)
    latencies: list[float] = []
    failed = 0

    async def one(path: str, scheduled: float) -> None:
        nonlocal failed
        if await pool.get(path) == 200:
            latencies.append(clock() - scheduled)
        else:
            failed += 1

    start = clock() + 0.05
    tasks = []
    for i, path in enumerate(paths):
        scheduled = start + i / rate
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(path, scheduled)))
    duration = len(paths) / rate
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, start + duration + grace - clock()))
    for task in pending:
        task.cancel()
    return {"latencies": latencies, "errors": failed + len(pending), "sent": len(paths), "duration": duration}


def generate_load(port: int, paths: list[str], rate: float, connections: int) -> dict:
    """Run the load generator in a child process so it does not share an interpreter with anything measured."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        json.dump({"port": port, "paths": paths, "rate": rate, "connections": connections}, spec)
    out = subprocess.run(
        [sys.executable, __file__, "--generate", spec.name], capture_output=True, text=True, check=True, cwd=ROOT
    )
    os.unlink(spec.name)
    return json.loads(out.stdout)


def _generator_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_drive(spec["port"], spec["paths"], spec["rate"], spec["connections"], grace=5.0))
    print(json.dumps(result))


# --- measurement -------------------------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    kind: str
    rate: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_rate: float
    cpu_busy_pct: float  # the whole machine, % of all cores
    cpu_others_pct: float  # of which neither the server measured, MariaDB nor the load generator


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _tree_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these processes and their children (the servers' workers, MariaDB)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            for process in [parent, *parent.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _busy_seconds() -> float:
    import psutil

    times = psutil.cpu_times()
    return times.user + times.system + times.nice + getattr(times, "irq", 0) + getattr(times, "softirq", 0)


def measure(server: str, port: int, kind: str, rate: float, seconds: float, paths_for, pids: list[int]) -> Result:
    """One fixed-rate run after a 2 s warm-up; also how busy the machine was, and how much of that was not us."""
    import resource

    connections = 64
    generate_load(port, paths_for(kind, server, int(rate * 2)), rate, connections)  # warm-up, not counted
    paths = paths_for(kind, server, int(rate * seconds))
    started, busy, ours = time.monotonic(), _busy_seconds(), _tree_cpu(pids)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = generate_load(port, paths, rate, connections)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    capacity_s = (time.monotonic() - started) * (os.cpu_count() or 1)
    generator = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    ours = _tree_cpu(pids) - ours + generator
    busy = _busy_seconds() - busy
    ok = out["latencies"]
    return Result(
        server=server,
        kind=kind,
        rate=rate,
        rps=round(len(ok) / out["duration"], 1),
        p50_ms=round(percentile(ok, 0.50) * 1000, 2),
        p95_ms=round(percentile(ok, 0.95) * 1000, 2),
        p99_ms=round(percentile(ok, 0.99) * 1000, 2),
        error_rate=round(out["errors"] / out["sent"], 4),
        cpu_busy_pct=round(100 * busy / capacity_s),
        cpu_others_pct=round(100 * max(0.0, busy - ours) / capacity_s),
    )


def print_result(r: Result) -> None:
    print(
        f"{r.server:9} {r.kind:7} {r.rate:7.0f} {r.rps:9.1f} {r.p50_ms:8.2f} {r.p95_ms:8.2f} {r.p99_ms:8.2f}"
        f" {r.error_rate * 100:7.2f}% {r.cpu_busy_pct:5.0f}% {r.cpu_others_pct:6.0f}%",
        flush=True,
    )


def capacity(server, port, kind, rates, seconds, target_ms, paths_for, pids) -> float:
    """The highest of ``rates`` served with p99 under ``target_ms`` and no errors (rates tried in order)."""
    best = 0.0
    for rate in rates:
        result = measure(server, port, kind, rate, seconds, paths_for, pids)
        print_result(result)
        if result.error_rate > 0 or result.p99_ms > target_ms:
            break
        best = result.rps
    return best


def stop(processes: list[subprocess.Popen]) -> None:
    """Terminate every server, then kill those still up after 10 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=300.0, help="requests/s of the fixed-rate runs")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured run")
    parser.add_argument("--hours", type=int, default=20_000, help="rows in the newest slice")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--capacity", action="store_true", help="also step the rate up to find each capacity")
    parser.add_argument("--capacity-rates", default="100,200,300,450,600,800,1000,1300")
    parser.add_argument("--p99-target", type=float, default=50.0, help="ms, for --capacity")
    args = parser.parse_args()

    database = f"api_bench_{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="api-bench-"))
    processes = []
    try:
        load_database(database, args.hours)
        api_port, base_port = local_stack.free_port(), local_stack.free_port()
        processes.append(start_api(api_port, database, workdir / "api.log", args.workers))
        processes.append(start_baseline(base_port, database, workdir / "baseline.log"))
        positions = page_positions(api_port, pages=args.hours // 100)
        ports = {"api": api_port, "baseline": base_port}
        mariadb = mariadb_pids()
        pids = {"api": [processes[0].pid, *mariadb], "baseline": [processes[1].pid, *mariadb]}

        def paths_for(kind: str, server: str, count: int) -> list[str]:
            return request_paths(kind, server, count, positions, args.hours)

        print(f"{os.cpu_count()} CPUs; {args.seconds:g} s a run; API with {args.workers} uvicorn workers")
        print(f"{'server':9} {'kind':7} {'rate':>7} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
              f"{'errors':>8} {'cpu':>6} {'others':>7}")  # fmt: skip
        results: dict[tuple[str, str], Result] = {}
        for kind in ("page", "lookup"):
            for server in ("api", "baseline"):
                results[server, kind] = measure(
                    server, ports[server], kind, args.rate, args.seconds, paths_for, pids[server]
                )
                print_result(results[server, kind])
        for kind in ("page", "lookup"):
            api, base = results["api", kind], results["baseline", kind]
            print(
                f"{kind}: throughput api/baseline = {api.rps / max(base.rps, 1e-9):.2f}x, "
                f"p99 baseline/api = {base.p99_ms / api.p99_ms:.2f}x"
            )
        summary = {"fixed_rate": [asdict(r) for r in results.values()]}
        if args.capacity:
            rates = [float(r) for r in args.capacity_rates.split(",")]
            found = {}
            for kind in ("page", "lookup"):
                for server in ("api", "baseline"):
                    found[f"{server}/{kind}"] = capacity(
                        server,
                        ports[server],
                        kind,
                        rates,
                        min(args.seconds, 10.0),
                        args.p99_target,
                        paths_for,
                        pids[server],
                    )
            for kind in ("page", "lookup"):
                api, base = found[f"api/{kind}"], found[f"baseline/{kind}"]
                # A baseline that met the target at no tested rate has no ratio to report, only a lower bound.
                bound = f"> {api / min(rates):.0f}x (baseline met it at no tested rate)"
                ratio = f"{api / base:.2f}x" if base else bound
                print(f"{kind}: capacity at p99 <= {args.p99_target:g} ms: api {api:.0f} req/s, baseline "
                      f"{base:.0f} req/s, ratio {ratio}")  # fmt: skip
            summary["capacity"] = found
        print(json.dumps(summary))
    finally:
        stop(processes)
        drop_database(database)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-baseline"]:
        serve_baseline(int(sys.argv[2]), sys.argv[4])
    elif sys.argv[1:2] == ["--generate"]:
        _generator_main(sys.argv[2])
    else:
        main()
