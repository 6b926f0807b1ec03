"""Load test of `rewardlab serve`: OpenRLHF's traffic shape against the server, vs batch size 1
and vs offline scoring, one run.

The server runs in its own process (``rewardlab serve``, loopback); this process drives
``--clients`` concurrent clients (threads, one keep-alive connection each), each sending
``--requests`` requests in OpenRLHF's shape: one sample per request, ``{"query": [prompt +
response], "prompts": [prompt], "labels": [null]}`` (responses: chosen and rejected of the
bundled HH test, LLMBar and HHH sets). Every ``--bad-every``-th request is malformed, oversized,
empty or wrongly shaped, cycling; each must get its own clear answer (400, 413, 200 with empty
lists, 422). Reported per run: throughput of valid requests, p50/p99 latency, answers by class
(anything unexpected — 5xx, timeouts, refused connections, a wrong status — counts as an error),
the server's mean batch size and its RSS after warm-up and at the end.

Runs: the server with ``--max-batch`` (dynamic micro-batching), then the same load against
``--max-batch 1`` (each request scored alone, the design of OpenRLHF's own ``serve_rm``); then
``rewardlab.load(DIR).score`` on the same texts in one call (what ``rewardlab score`` runs).
Prints the served/offline throughput ratio last.

    python benchmarks/bench_serve.py [--model DIR] [--clients 32] [--requests 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from rewardlab.serve.client import RewardClient

BAD_KINDS = {  # kind → (raw body, expected status)
    "bad_json": (b'{"query": ["unterminated', 400),
    "oversized": (None, 413),  # filled in: a body over the server's limit
    "empty": (json.dumps({"query": [], "prompts": [], "labels": []}).encode(), 200),
    "wrong_shape": (json.dumps({"query": "not a list"}).encode(), 422),
}
MAX_BODY = 200_000


def texts(limit: int) -> tuple[list[str], list[str]]:
    """Prompts (as text) and responses: chosen and rejected of the bundled test sets."""
    from rewardlab.data.bundled import hh_splits, hhh, llmbar
    from rewardlab.data.schema import prompt_text

    pairs = hh_splits()["test"] + llmbar() + hhh()
    prompts = [prompt_text(p.prompt) for p in pairs for _ in (0, 1)]
    responses = [r for p in pairs for r in (p.chosen, p.rejected)]
    return prompts[:limit], responses[:limit]


def rss_mb(pid: int) -> float:
    """Resident set size of a process (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(model: Path, max_batch: int, threads: int) -> tuple[subprocess.Popen, str]:
    """`rewardlab serve` in its own process on a free loopback port; returns it and its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "rewardlab.cli", "serve", "--model", str(model), "--port", str(port)]
    cmd += ["--max-batch", str(max_batch), "--max-body-bytes", str(MAX_BODY), "--max-queue", "100000"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(cmd, env=env)
    url, client = f"http://127.0.0.1:{port}", RewardClient(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    while True:
        try:
            client.get("/health")
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.5)


def drive(
    url: str, prompts: list[str], responses: list[str], clients: int, requests: int, bad_every: int
) -> dict:
    """The load: ``clients`` threads × ``requests`` requests; latencies and answers by class."""
    latencies: list[float] = []
    classes: Counter[str] = Counter()
    rewards: dict[int, float] = {}
    lock, barrier = threading.Lock(), threading.Barrier(clients)
    bad = dict(BAD_KINDS)
    bad["oversized"] = (json.dumps({"query": ["x" * (MAX_BODY + 10)]}).encode(), 413)
    kinds = list(bad)

    def client(c: int) -> None:
        http = RewardClient(url, timeout=180)
        barrier.wait()
        for k in range(requests):
            n = c * requests + k
            if bad_every and n % bad_every == bad_every - 1:
                kind = kinds[(n // bad_every) % len(kinds)]
                body, expected = bad[kind]
            else:
                i = n % len(prompts)
                kind, expected = "ok", 200
                body = json.dumps(
                    {"query": [prompts[i] + responses[i]], "prompts": [prompts[i]], "labels": [None]}
                )
                body = body.encode()
            t0 = time.perf_counter()
            try:
                rep = http.request("POST", "/get_reward", body)
                status = rep.status
            except OSError as e:
                status, rep = type(e).__name__, None
            dt = time.perf_counter() - t0
            with lock:
                if status != expected:
                    classes[f"ERROR {kind}: got {status}"] += 1
                    continue
                classes[f"{kind} → {status}"] += 1
                if kind == "ok":
                    latencies.append(dt)
                    rewards[n % len(prompts)] = rep.body["rewards"][0]

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "wall": wall,
        "ok": len(latencies),
        "throughput": len(latencies) / wall,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "classes": classes,
        "errors": sum(v for k, v in classes.items() if k.startswith("ERROR")),
        "rewards": rewards,
    }


def run(args, max_batch: int, prompts: list[str], responses: list[str]) -> dict:
    """One server, warmed up, under the load; RSS after warm-up and at the end."""
    proc, url = start_server(args.model, max_batch, args.threads)
    try:
        warm = RewardClient(url)
        for i in range(min(64, len(prompts))):
            warm.post("/get_reward", {"query": [prompts[i] + responses[i]], "prompts": [prompts[i]]})
        rss0 = rss_mb(proc.pid)
        res = drive(url, prompts, responses, args.clients, args.requests, args.bad_every)
        res["rss"] = (rss0, rss_mb(proc.pid))
        res["health"] = warm.get("/health").body
    finally:
        proc.terminate()
        proc.wait(30)
    return res


def report(name: str, r: dict) -> None:
    h = r["health"]
    print(f"\n== {name}")
    print(
        f"valid requests: {r['ok']} in {r['wall']:.1f}s → {r['throughput']:.1f} req/s; "
        f"latency p50 {1000 * r['p50']:.0f} ms, p99 {1000 * r['p99']:.0f} ms; errors: {r['errors']}"
    )
    print(f"server: {h['batches']} batches, mean batch {h['mean_batch']}, largest {h['largest_batch']}")
    print(f"server RSS: {r['rss'][0]:.0f} MiB after warm-up → {r['rss'][1]:.0f} MiB at the end")
    for k, v in sorted(r["classes"].items()):
        print(f"  {k}: {v}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("runs/demo/model"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=2000, help="requests per client")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--bad-every", type=int, default=50, help="every Nth request is bad (0: none)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, server and offline alike")
    ap.add_argument("--limit", type=int, default=1000, help="distinct texts (requests cycle through them)")
    args = ap.parse_args()
    if not (args.model / "rewardlab.json").exists():  # speed does not depend on training
        from rewardlab.models.config import ModelConfig
        from rewardlab.models.reward_model import RewardModel

        args.model = Path("/tmp/bench-serve-model")
        RewardModel.build(ModelConfig()).save(args.model)
    prompts, responses = texts(args.limit)
    batched = run(args, args.max_batch, prompts, responses)
    report(f"dynamic micro-batching (max batch {args.max_batch})", batched)
    single = run(args, 1, prompts, responses)
    report("batch size 1 (each request alone, like OpenRLHF's serve_rm)", single)

    import torch

    import rewardlab

    torch.set_num_threads(args.threads)
    rm = rewardlab.load(args.model)
    used = sorted(batched["rewards"])
    t0 = time.perf_counter()
    offline = rm.score([prompts[i] for i in used], [responses[i] for i in used], uncertainty=False).reward
    t_off = time.perf_counter() - t0
    diff = max(abs(batched["rewards"][i] - float(offline[j])) for j, i in enumerate(used))
    rate = len(used) / t_off
    print(f"\noffline rewardlab.load(DIR).score on the {len(used)} served texts: {rate:.1f} responses/s")
    print(f"served vs offline rewards: max |diff| {diff:.2e}")
    print(f"micro-batching gain over batch size 1: {batched['throughput'] / single['throughput']:.2f}x")
    print(f"served/offline throughput ratio: {batched['throughput'] / rate:.2f}")


if __name__ == "__main__":
    main()
