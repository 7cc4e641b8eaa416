"""A light HTTP/1.1 load client for the benchmarks: keep-alive connections on asyncio streams.

Why not httpx in threads (what `api_speed.py` used first): on this 2-core machine the client
shares the cores with the server it measures, and httpx's sync client in 20 threads spent
~0.9 ms of CPU per request, a quarter of what the server itself spends. This one spends
~0.1-0.2 ms (measured with `resource.getrusage`), so the figure is the server's. It speaks only
what the benchmark needs: GET, `Content-Length` or chunked bodies, one request in flight per
connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence


async def _body(reader: asyncio.StreamReader, head: bytes) -> None:
    """Read (and drop) the body that follows the response head `head`."""
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return


async def _connection(
    port: int, headers: str, urls: Sequence[str], out: list[tuple[float, int]]
) -> None:
    """One keep-alive connection sending `urls` one after another."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for url in urls:
            started = time.perf_counter()
            writer.write(f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            await _body(reader, head)
            out.append((time.perf_counter() - started, int(head[9:12])))
    finally:
        writer.close()


def run(
    port: int, urls: Sequence[str], at_once: int, headers: dict[str, str]
) -> tuple[float, list[tuple[float, int]]]:
    """GET every url over `at_once` connections; (seconds, [(latency, status)])."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    out: list[tuple[float, int]] = []

    async def main() -> None:
        shares = [urls[i::at_once] for i in range(at_once)]
        await asyncio.gather(*(_connection(port, head, share, out) for share in shares))

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started, out
