"""Load on libra-serve: throughput and latency at 1, 8 and 32 concurrent clients, with dynamic batching
and with batching off (max_batch_size=1), measured in one run on 127.0.0.1.

    python benchmarks/serve_load.py CHECKPOINT DATA [--requests 600] [--seconds 90] [--out FILE.json]

CHECKPOINT is a trained guard (e.g. a quickstart run's stage2_sft/checkpoint); DATA is a guard-schema
file whose samples are sent to POST /v1/guard in turn (question + response, or messages). Each level is
bounded by --requests and --seconds, whichever comes first. The server's resident memory (VmRSS) and
its peak (VmHWM) are read from /proc after the warm-up and after the last level.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from libra_train.data.io import load_records

LEVELS = (1, 8, 32, 32)  # 32 twice: memory after the second shows whether serving grows it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_kib(pid: int) -> dict:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def batch_totals(base: str) -> tuple[float, float]:
    """(records scored, forward passes) so far, from the server's own /metrics."""
    totals = {}
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(("libra_serve_batch_size_sum ", "libra_serve_batch_size_count ")):
            name, value = line.split()
            totals[name] = float(value)
    return totals["libra_serve_batch_size_sum"], totals["libra_serve_batch_size_count"]


def bodies(records: list[dict]) -> list[dict]:
    out = []
    for r in records:
        out.append(
            {"messages": r["messages"]}
            if r.get("messages")
            else {"question": r["question"], "response": r.get("response", "")}
        )
    return out


async def level(
    base: str, payloads: list[dict], clients: int, requests: int, seconds: float, path: str = "/v1/guard"
) -> dict:
    """`clients` concurrent clients POST the payloads in turn to `path` until `requests` are sent or
    `seconds` pass: throughput and latency."""
    latencies, errors, sent = [], 0, 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def worker():
            nonlocal errors, sent
            while sent < requests and time.perf_counter() < deadline:
                body = payloads[sent % len(payloads)]
                sent += 1
                start = time.perf_counter()
                try:
                    ok = (await client.post(path, json=body)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
    }


@contextlib.contextmanager
def served(checkpoint: str, max_batch_size: int = 32, max_wait_ms: float = 5):
    """libra-serve on CHECKPOINT at a free port, up and warmed (allocator and caches, not measured);
    yields (base URL, server process) and stops it after."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "libra-serve"),
        f"model={checkpoint}",
        f"port={port}",
        f"max_batch_size={max_batch_size}",
        f"max_wait_ms={max_wait_ms}",
        "log_level=warning",
    ]
    env = {**os.environ, "LIBRA_SERVE_API_KEY": ""}
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if server.poll() is not None:
                raise RuntimeError(f"libra-serve exited: {server.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, server
    finally:
        server.terminate()
        server.wait(60)


def run_server(checkpoint: str, max_batch_size: int, payloads, args) -> dict:
    with served(checkpoint, max_batch_size, args.max_wait_ms) as (base, server):
        asyncio.run(level(base, payloads, 4, 40, 30))  # warm-up
        start_memory = memory_kib(server.pid)
        levels = []
        for clients in LEVELS:
            before = batch_totals(base)
            levels.append(asyncio.run(level(base, payloads, clients, args.requests, args.seconds)))
            after = batch_totals(base)
            levels[-1]["mean_batch"] = round((after[0] - before[0]) / max(1.0, after[1] - before[1]), 1)
            levels[-1]["rss_mib_after"] = round(memory_kib(server.pid)["VmRSS"] / 1024)
        end_memory = memory_kib(server.pid)
    return {
        "max_batch_size": max_batch_size,
        "levels": levels,
        "memory_kib_start": start_memory,
        "memory_kib_end": end_memory,
    }


def as_record(i: int, body: dict) -> dict:
    from libra_train.data.conversation import from_messages

    return from_messages(body["messages"], id=i) if "messages" in body else {"id": i, **body}


def scorer_bound(checkpoint: str, payloads: list[dict]) -> dict:
    """The model alone, in this process: milliseconds per record scored one at a time and 32 at a
    time. Their ratio bounds what batching can gain on this machine, before any HTTP cost."""

    from libra_train.command_config import ServeConfig
    from libra_train.serve.scorer import GuardScorer

    scorer = GuardScorer.load(ServeConfig.from_hydra({"model": checkpoint, "device": "cpu"}))
    prepared = [scorer.prepare(as_record(i, body)) for i, body in enumerate(payloads[:96])]
    scorer.score(prepared[:8])
    per_record = {}
    for size in (1, 32):
        start = time.perf_counter()
        for i in range(0, 96, size):
            scorer.score(prepared[i : i + size])
        per_record[size] = round(1000 * (time.perf_counter() - start) / 96, 2)
    return {
        "ms_per_record_batch1": per_record[1],
        "ms_per_record_batch32": per_record[32],
        "bound": round(per_record[1] / per_record[32], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint")
    parser.add_argument("data")
    parser.add_argument("--requests", type=int, default=600, help="per level, at most")
    parser.add_argument("--seconds", type=float, default=90, help="per level, at most")
    parser.add_argument("--max-wait-ms", type=float, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    payloads = bodies(load_records(args.data, require_label=False))
    bound = scorer_bound(args.checkpoint, payloads)
    runs = [run_server(args.checkpoint, size, payloads, args) for size in (32, 1)]
    batched, single = ({lv["clients"]: lv for lv in run["levels"]} for run in runs)
    speedup = round(batched[32]["throughput_rps"] / single[32]["throughput_rps"], 2)
    result = {"runs": runs, "speedup_at_32": speedup, "scorer_alone": bound}
    columns = [
        "max batch",
        "clients",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "mean batch",
        "RSS after (MiB)",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for run in runs:
        for lv in run["levels"]:
            print(
                f"| {run['max_batch_size']} | {lv['clients']} | {lv['requests']} | {lv['errors']} | "
                f"{lv['throughput_rps']} | {lv['p50_ms']} | {lv['p99_ms']} | {lv['mean_batch']} | "
                f"{lv['rss_mib_after']} |"
            )
    for run in runs:
        start, end = run["memory_kib_start"], run["memory_kib_end"]
        mib = {k: f"{start[k] / 1024:.0f} → {end[k] / 1024:.0f} MiB" for k in start}
        print(f"max batch {run['max_batch_size']}: RSS {mib['VmRSS']}, peak {mib['VmHWM']}")
    print(f"throughput at 32 clients, batching vs max_batch_size=1: {result['speedup_at_32']}×")
    print(
        f"the model alone, ms per record: {bound['ms_per_record_batch1']} one at a time, "
        f"{bound['ms_per_record_batch32']} in batches of 32: at most {bound['bound']}× from batching"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
