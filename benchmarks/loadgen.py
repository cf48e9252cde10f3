"""A small open-loop HTTP/1.1 load generator on asyncio streams, for the scoring service on 127.0.0.1.

Requests are *scheduled* at a fixed rate and their latency is measured from the scheduled time
(so a stalled server is charged for the requests it delayed: no coordinated omission). They go
over a bounded pool of keep-alive connections; a request whose turn comes while every connection
is busy waits for one, and that wait counts in its latency. Bounded: it sends exactly
``rate * seconds`` requests and stops, and refuses any host but the loopback.

Parsing is minimal (status line, Content-Length, body), so the generator costs far less CPU than a
general client (httpx spends about a millisecond per request) and leaves the cores to the server.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import numpy as np

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class LoadResult:
    """What one run measured: latencies (seconds) of answered requests, errors, the request ids answered."""

    rate: float
    seconds: float
    sent: int
    ok: int
    errors: int
    latencies: np.ndarray
    wall: float
    answered_ids: list[str] = field(default_factory=list)
    statuses: dict = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if len(self.latencies) else float("nan")

    @property
    def throughput(self) -> float:
        return self.ok / self.wall if self.wall else 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def run_load(host: str, port: int, path: str, bodies: list[bytes], *, rate: float, seconds: float,
                   connections: int = 64, timeout: float = 10.0, keep_ids: bool = False) -> LoadResult:
    """Send ``rate * seconds`` POSTs of ``bodies`` (cycled) at ``rate`` per second; return the measurements."""
    if host not in LOOPBACK:
        raise ValueError(f"the load generator only targets this machine (127.0.0.1), not {host!r}")
    total = int(rate * seconds)
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    ids: list[str] = []
    statuses: dict[int, int] = {}
    errors = 0
    start = time.perf_counter() + 0.05
    payloads = [request_bytes(host, port, path, b) for b in bodies]

    async def one(i: int) -> None:
        nonlocal errors
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        reader, writer = await pool.get()
        try:
            writer.write(payloads[i % len(payloads)])
            status, body = await asyncio.wait_for(_read_response(reader), timeout)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                latencies.append(time.perf_counter() - scheduled)
                if keep_ids:
                    ids.append(json.loads(body)["request_id"])
            else:
                errors += 1
            pool.put_nowait((reader, writer))
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            statuses[-1] = statuses.get(-1, 0) + 1
            writer.close()
            try:
                pool.put_nowait(await asyncio.open_connection(host, port))
            except OSError:
                pass

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    wall = time.perf_counter() - t0
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return LoadResult(rate, seconds, total, len(latencies), errors, np.array(latencies), wall, ids, statuses)


def load(host: str, port: int, path: str, bodies: list[bytes], **kwargs) -> LoadResult:
    """``run_load`` on a fresh event loop."""
    return asyncio.run(run_load(host, port, path, bodies, **kwargs))
