"""Benchmark: the Contact API and the review page at workspace scale (issue 26).

Not a test. Usage:

    uv run python benchmarks/api_speed.py --contacts 2200000 --interactions 3000000 \
        --demo contacts-demo/contacts.duckdb [--sync]

Builds (or reuses, `--reuse`) a synthetic published file with `benchmarks/analyst.py`'s
`build_file` + the analyst layer (no pipeline run), serves it with a real uvicorn on 127.0.0.1
(the rate limit raised) in this process, and times over HTTP, one request at a time:
- a cursor page of 200 at positions spread over the file (p50/p99), the first page after a
  publish (the contact index is built then), and with `--sync` a full cursor sync of every
  contact, checking each is returned exactly once;
- `GET /v1/contacts/{id}` (p50), `q=` search and a two-filter list (p50);
- the review page's contact list, a later page, a search and the proposal queue (p50).
With `--demo FILE` (a `contacts demo` file) it also runs 1,500 reads at concurrency 20 against
`contacts serve --workers 1` and `--workers 2` in their own processes (requests/s, p50, p99), sent
by a light asyncio client (`http_load.py`) and by httpx in threads. Prints Markdown for docs/performance.md; peak memory is this process's
(server and client together).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from benchmarks.procs import children, cpu_seconds  # noqa: E402
from contacts.web import CSRF_COOKIE, create_app  # noqa: E402
from dedup.layout import StateLayout  # noqa: E402
from dedup.service import read_cache  # noqa: E402
from dedup.service.admins import add_admin, admins_path  # noqa: E402
from dedup.service.apikeys import create_key  # noqa: E402


def load() -> str:
    """The machine's load averages (1, 5, 15 min): the machine is shared, say it beside figures."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(db: Path, port: int) -> tuple[uvicorn.Server, str]:
    """A real uvicorn on 127.0.0.1 in a thread, with the rate limit out of the way."""
    config = uvicorn.Config(
        create_app(db, requests_per_minute=10**9), host="127.0.0.1", port=port, log_level="error"
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def credentials(db: Path) -> tuple[str, str]:
    """A read API key and an admin's sign-in token for `db` (added to its state folder)."""
    key, _ = create_key(StateLayout(db).api_keys_path, "read", name="benchmark")
    name = f"bench{random.randrange(10**6)}"
    token = add_admin(admins_path(db), name)
    assert token is not None
    return key, f"{name}\n{token}"


def signed_in(base: str, admin: str) -> httpx.Client:
    name, token = admin.split("\n")
    client = httpx.Client(base_url=base, timeout=120)
    client.get("/login")
    done = client.post(
        "/login", data={"name": name, "secret": token, "csrf_token": client.cookies[CSRF_COOKIE]}
    )
    assert done.status_code in (200, 303), done.text
    return client


def timings(client: httpx.Client, urls: list[str]) -> list[float]:
    out = []
    for url in urls:
        started = time.perf_counter()
        answer = client.get(url)
        out.append(time.perf_counter() - started)
        assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def row(rows: list[tuple], label: str, values: list[float]) -> None:
    rows.append((label, len(values), pct(values, 0.5), pct(values, 0.99)))
    print(f"{label}: n={len(values)} p50 {pct(values, 0.5):.1f} ms p99 {pct(values, 0.99):.1f} ms")


def full_sync(api: httpx.Client, expected: int) -> tuple[float, int, list[float]]:
    """Every contact through the cursor; asserts each comes exactly once."""
    seen: set[str] = set()
    per_page, cursor, started = [], None, time.perf_counter()
    while True:
        t = time.perf_counter()
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        body = api.get("/v1/contacts", params=params).json()
        per_page.append(time.perf_counter() - t)
        ids = [c["contact_id"] for c in body["data"]]
        assert not seen.intersection(ids), "a contact came twice"
        seen.update(ids)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == expected, (len(seen), expected)
    return time.perf_counter() - started, len(seen), per_page


def duckdb_count(path: Path) -> int:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM contacts").fetchone()[0]


def big_file(args: argparse.Namespace) -> Path:
    from analyst import build_file

    from dedup.snapshot.analyst import finish_analyst_layer

    path = args.out / f"api-{args.contacts}.duckdb"
    if args.reuse and path.exists():
        return path
    started = time.perf_counter()
    shutil.rmtree(path.with_name(path.name + ".state"), ignore_errors=True)
    build_file(path, args.contacts, args.interactions)
    finish_analyst_layer(path)
    print(f"synthetic file: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def measure_big(path: Path, port: int, sync: bool) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    total = con.execute("SELECT count(*) FROM contacts").fetchone()[0]
    sample = [
        r[0] for r in con.execute("SELECT contact_id FROM contacts USING SAMPLE 200").fetchall()
    ]
    con.close()
    key, admin = credentials(path)
    server, base = serve(path, port)
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=300)
    rows: list[tuple] = []
    first = timings(api, ["/v1/contacts?limit=200"])
    row(rows, "first page after start (index building: the contact_id path)", first)
    started = time.perf_counter()
    read_cache.shared_reader(path).snapshot().index()  # the server thread's, in this process
    print(f"contact index ready {time.perf_counter() - started:.1f} s later", file=sys.stderr)
    spread = sorted(sample)  # cursors spread over the whole file
    row(
        rows,
        "cursor page of 200",
        timings(api, [f"/v1/contacts?limit=200&cursor={c}" for c in spread]),
    )
    row(rows, "GET /v1/contacts/{id}", timings(api, [f"/v1/contacts/{c}" for c in sample]))
    words = ["ann", "acme", "gold", "berlin", "zoe.1234", "rosa", "globex", "lagos"]
    row(rows, "q= search (limit 50)", timings(api, [f"/v1/contacts?q={w}" for w in words * 3]))
    two = "/v1/contacts?channel=email&audience=enterprise&limit=200"
    row(rows, "channel + audience filter (limit 200)", timings(api, [two] * 20))
    page = signed_in(base, admin)
    row(rows, "review page: contact list", timings(page, ["/contacts"] * 10))
    row(rows, "review page: a later page (page 40)", timings(page, ["/contacts?page=40"] * 10))
    row(rows, "review page: search", timings(page, [f"/contacts?q={w}" for w in words]))
    row(rows, "review page: proposal queue", timings(page, ["/proposals"] * 10))
    server.should_exit = True
    if sync:
        seconds, n, per_page = served_sync(path, port + 10, key, total)
        row(rows, f"full cursor sync: {n:,} contacts in {seconds:.0f} s, pages", per_page)
    return rows


def served_sync(path: Path, port: int, key: str, total: int) -> tuple[float, int, list[float]]:
    """The full sync against `contacts serve` in its own process (one worker), so parsing the
    pages here does not hold the server's interpreter (session 13 served it in this process)."""
    server, base = spawn(path, port, 1)
    try:
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=300)
        api.get("/v1/contacts?limit=1")  # the server's contact index, as a running server has it
        time.sleep(5)
        return full_sync(api, total)
    finally:
        server.terminate()
        server.wait(timeout=30)


def spawn(db: Path, port: int, workers: int) -> tuple[subprocess.Popen, str]:
    """`contacts serve --workers N` in its own process(es), so the client's threads do not
    share the server's interpreter."""
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("contacts")), "serve", "--db", str(db)]
        + ["--port", str(port), "--workers", str(workers), "--requests-per-minute", str(10**9)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            httpx.get(f"{base}/v1/contacts", timeout=5)
            return server, base
        except httpx.TransportError:
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError("contacts serve did not start") from None
            time.sleep(0.3)


def concurrency(
    db: Path, port: int, workers: int, client: str, requests: int = 1500, at_once: int = 20
) -> str:
    """`requests` reads, `at_once` at a time, against `contacts serve --workers N` on `db`, sent
    by `client`: `asyncio` (http_load: ~0.1-0.2 ms of CPU per request) or `httpx` (20 threads of
    httpx's sync client, ~0.9 ms; the figures before session 14)."""
    import duckdb
    import http_load

    con = duckdb.connect(str(db), read_only=True)
    ids = [r[0] for r in con.execute("SELECT contact_id FROM contacts").fetchall()]
    con.close()
    key, _ = credentials(db)
    server, base = spawn(db, port, workers)
    headers = {"Authorization": f"Bearer {key}"}
    urls = [
        "/v1/contacts?limit=50" if i % 3 == 0 else f"/v1/contacts/{ids[i % len(ids)]}"
        for i in range(requests)
    ]
    try:
        if client == "asyncio":
            http_load.run(port, urls[:100], at_once, headers)  # warm: each worker's first reads
            cpu, served = time.process_time(), server_cpu(server.pid)
            seconds, results = http_load.run(port, urls, at_once, headers)
        else:
            seconds, results, cpu, served = _httpx_load(base, headers, urls, at_once, server.pid)
        cpu = time.process_time() - cpu
        served = server_cpu(server.pid) - served
    finally:
        server.terminate()
        server.wait(timeout=30)
    times = [t for t, _ in results]
    statuses = sorted({s for _, s in results})
    line = (
        f"{len(ids)} contacts, {workers} worker(s), {requests} reads at concurrency {at_once} "
        f"({client} client, {cpu / requests * 1000:.2f} ms CPU per request; server "
        f"{served / requests * 1000:.2f} ms): "
        f"{requests / seconds:.0f} requests/s, p50 {pct(times, 0.5):.0f} ms, "
        f"p99 {pct(times, 0.99):.0f} ms, statuses {statuses}"
    )
    print(line, flush=True)
    return line


def server_cpu(pid: int) -> float:
    """CPU seconds of the server process and its children (the workers of `--workers N`), from
    /proc: a figure the machine's load does not inflate the way wall time is."""
    return cpu_seconds([pid, *children(pid)])


def _httpx_load(base: str, headers: dict, urls: list[str], at_once: int, pid: int):
    """The same reads from `at_once` threads of httpx clients: (seconds, results, CPU start,
    the server's CPU at the start)."""
    local = threading.local()

    def one(url: str) -> tuple[float, int]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base, headers=headers, timeout=60)
        t = time.perf_counter()
        status = client.get(url).status_code
        return time.perf_counter() - t, status

    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(one, urls[:100]))  # warm: connections, each worker's first reads
        cpu, served = time.process_time(), server_cpu(pid)
        started = time.perf_counter()
        results = list(pool.map(one, urls))
        return time.perf_counter() - started, results, cpu, served


def demo_load(db: Path, port: int) -> None:
    """The load test on a demo file: 1 and 2 workers, each with both clients."""
    for workers in (1, 2):
        for client in ("asyncio", "httpx"):
            concurrency(db, port + workers, workers, client)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=2_200_000)
    parser.add_argument("--interactions", type=int, default=3_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--reuse", action="store_true", help="Reuse the synthetic file if there.")
    parser.add_argument("--demo", type=Path, help="A `contacts demo` file for the load test.")
    parser.add_argument("--sync", action="store_true", help="Also sync every contact.")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--demo-only", action="store_true", help="Only the --demo load test.")
    parser.add_argument("--sync-only", action="store_true", help="Only the full sync.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"start: {load()}")
    if args.sync_only:
        path = big_file(args)
        total = duckdb_count(path)
        seconds, n, per_page = served_sync(path, args.port, credentials(path)[0], total)
        print(
            f"full sync: {n:,} contacts in {seconds:.0f} s, pages p50 {pct(per_page, 0.5):.1f} "
            f"ms, p99 {pct(per_page, 0.99):.1f} ms; end: {load()}"
        )
        return
    if args.demo_only:
        demo_load(args.demo, args.port)
        print(f"end: {load()}")
        return
    rows = measure_big(big_file(args), args.port, args.sync)
    print(f"after the big file's reads: {load()}")
    print("\n| read | n | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for label, n, p50, p99 in rows:
        print(f"| {label} | {n} | {p50:.1f} | {p99:.1f} |")
    if args.demo:
        demo_load(args.demo, args.port)
    print(f"\npeak memory (server and client, one process): {peak_mb():.0f} MB")
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
