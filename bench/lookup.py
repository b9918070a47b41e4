"""Benchmark: slot and free/busy lookups over HTTP against a filled store.

Fills a store with 1,000 calendars x 1 year of events (~500k), starts
``calsync run``, and drives slot and freebusy lookups with 64 concurrent
connections for 20 s each with wrk (Debian package ``wrk``), then /healthz
the same way; prints p50/p99/throughput and the lookup/healthz ratio. With 64
connections kept busy, latency is mostly queueing (Little's law: latency =
connections / throughput), so each lookup is also measured with a single
connection, which shows what one request costs.

    .venv/bin/python bench/lookup.py [--calendars 1000] [--seconds 20] [--db URL]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _harness import Running, cli, fill, free_port, now_utc, write_config

from calsync.store import Store

LUA = """
math.randomseed(os.time())
local token = "%s"
local calendars = %d
local kind = "%s"
local days = {"2026-12-01","2027-01-12","2027-02-16","2027-03-09","2027-04-20","2027-05-11"}
request = function()
  local r = math.random(0, calendars - 1)
  local day = days[math.random(1, #days)]
  local path = "/v1/resources/r" .. r .. "/" .. kind .. "?start=" .. day .. "&end=" .. day
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
"""


def wrk(
    url: str, seconds: int, script: Path | None, connections: int = 64
) -> tuple[float, float, float]:
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    distribution = out.split("Latency Distribution", 1)[1]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", distribution, re.MULTILINE))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", distribution, re.MULTILINE))
    rate = float(re.search(r"Requests/sec:\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        print(f"  warning: {errors.group(1)} non-2xx responses", file=sys.stderr)
    return p50, p99, rate


def _ms(match: re.Match[str] | None) -> float:
    assert match is not None
    value = match.group(1)
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calendars", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    directory = Path(tempfile.mkdtemp(prefix="calsync-bench-"))
    database = args.db or f"sqlite:///{directory}/bench.db"
    port = free_port()
    config = write_config(directory, database, args.calendars, port)
    cli(config, "db", "upgrade")
    started = time.perf_counter()
    store = Store.open(database)
    fill(store, args.calendars, now_utc())
    store.close()
    print(f"filled {args.calendars} calendars x 1 year in {time.perf_counter() - started:.0f} s")
    token = cli(config, "apikey", "create", "--name", "bench", "--scope", "read")
    daemon = Running(config, port)
    try:
        time.sleep(5)  # let the first (failing, feed-less) sync passes settle
        results = {}
        for kind in ("slots", "freebusy"):
            script = directory / f"{kind}.lua"
            script.write_text(LUA % (token, args.calendars, kind))
            results[kind] = wrk(daemon.url, args.seconds, script)
            results[f"{kind} (1 conn)"] = wrk(daemon.url, args.seconds // 2, script, 1)
        results["healthz"] = wrk(f"{daemon.url}/healthz", args.seconds, None)
    finally:
        daemon.stop()
    print(f"{'endpoint':<18} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'vs healthz':>11}")
    for kind, (p50, p99, rate) in results.items():
        ratio = f"{rate / results['healthz'][2]:.0%}" if "conn" not in kind else ""
        print(f"{kind:<18} {p50:8.2f} {p99:8.2f} {rate:9.0f} {ratio:>11}")


if __name__ == "__main__":
    main()
