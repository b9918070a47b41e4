"""Shared by the provider sync benchmarks: the three measured passes, against a fake that
runs in another process and answers ("requests" -> count, ("change", n) -> "ok") on a pipe."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any


def sync_all(engine: Any, refs: list[Any], workers: int = 4) -> list[Any]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(engine.sync, refs))


def measure(engine: Any, store: Any, refs: list[Any], fake: Connection, changes: int) -> None:
    """Print the full sync, an unchanged pass (requests per calendar) and CPU per change."""
    wall, cpu = time.perf_counter(), time.process_time()
    results = sync_all(engine, refs)
    failed = [r.error for r in results if not r.ok]
    assert not failed, failed[:3]
    stored = sum(store.events.count(r) for r in refs)
    print(f"full sync:        {time.perf_counter() - wall:6.1f} s wall, "
          f"{time.process_time() - cpu:6.1f} s CPU, {stored} events stored")  # fmt: skip
    fake.send("requests")
    before = fake.recv()
    wall = time.perf_counter()
    sync_all(engine, refs)
    fake.send("requests")
    per_calendar = (fake.recv() - before) / len(refs)
    print(f"unchanged pass:   {time.perf_counter() - wall:6.1f} s wall, "
          f"{per_calendar:.2f} requests per calendar (goal 1)")  # fmt: skip
    fake.send(("change", changes))
    fake.recv()
    wall, cpu = time.perf_counter(), time.process_time()
    results = sync_all(engine, refs)
    cpu_used = time.process_time() - cpu
    changed = sum(r.summary.added + r.summary.changed for r in results)
    per_event = cpu_used / max(changed, 1) * 1e6
    print(f"incremental pass: {time.perf_counter() - wall:6.1f} s wall, {changed} events "
          f"changed, {per_event:6.0f} µs CPU per changed event")  # fmt: skip
