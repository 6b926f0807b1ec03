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

Runs (``--variants``, each a fresh server; ``--repeats`` rounds, interleaved A, B, C, A, B, C so a
shared machine's load drifts over all alike): ``packed`` (the default server: dynamic micro-
batching up to ``--max-batch``, each pass the 16 oldest queued samples packed end to end into rows
without padding between them), ``packed32`` (the 32 oldest), ``planned`` (the former default: each
pass the length-planned one holding the oldest of the 16 oldest), ``window32`` (planned from the
32 oldest), ``take`` (every planned pass of a window), ``sorted`` (the window as one length-sorted
batch: the design ``planned`` replaced), ``untrimmed`` (``planned`` without heap trimming),
``heavy`` / ``heavy32`` (``planned`` / ``window32`` with a per-pass cost of 144 tokens in the
planner: larger passes) and ``single`` (``--max-batch 1``: each request scored alone, the design
of OpenRLHF's own ``serve_rm``). Right before and right after each run,
``rewardlab.load(DIR).score`` on the same texts in one call (what ``rewardlab score`` runs): the
served/offline ratio uses the mean of the two, since the shared machine's speed drifts by up to
±20% between runs minutes apart. Prints, per round and as a mean, the served/offline throughput
ratio and the micro-batching gain.

    python benchmarks/bench_serve.py [--model DIR] [--clients 32] [--requests 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import functools
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


def grouped(prompts: list[str], responses: list[str], size: int) -> tuple[list[str], list[str]]:
    """GRPO's shape: ``size`` responses per prompt, consecutive (group g = texts g·size ..
    g·size + size − 1). Each distinct prompt of ``prompts`` gets ``size`` responses taken in turn
    from all of ``responses`` (the RM scores any text; speed is what is measured)."""
    if size == 1:
        return prompts, responses
    distinct = list(dict.fromkeys(prompts))
    out_p, out_r = [], []
    for g, prompt in enumerate(distinct[: len(prompts) // size]):
        out_p += [prompt] * size
        out_r += [responses[(g * size + j) % len(responses)] for j in range(size)]
    return out_p, out_r


def rss_mb(pid: int) -> float:
    """Resident set size of a process (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


PLANNED = ["--max-batch", "{max_batch}", "--batch-policy", "planned"]  # the former default's flags
PACKED = ["--max-batch", "{max_batch}", "--batch-policy", "packed"]
VARIANTS = {  # name → (title, serve flags; {max_batch} filled in)
    "planned": ("dynamic micro-batching, planned passes from the 16 oldest (max batch {max_batch})", PLANNED),
    "window32": (
        "dynamic micro-batching, planned passes from the 32 oldest (max batch {max_batch})",
        [*PLANNED, "--plan-window", "32"],
    ),
    "take": (
        "dynamic micro-batching, every planned pass of a take (max batch {max_batch})",
        ["--max-batch", "{max_batch}", "--batch-policy", "take"],
    ),
    "sorted": (
        "dynamic micro-batching, one sorted batch per take (max batch {max_batch})",
        ["--max-batch", "{max_batch}", "--batch-policy", "sorted"],
    ),
    "untrimmed": (
        "planned passes without malloc_trim (max batch {max_batch})",
        [*PLANNED, "--rss-bound-mib", "-1"],
    ),
    "heavy": (
        "planned passes from the 16 oldest, pass cost 144 tokens (max batch {max_batch})",
        [*PLANNED, "--pass-overhead-tokens", "144"],
    ),
    "heavy32": (
        "planned passes from the 32 oldest, pass cost 144 tokens (max batch {max_batch})",
        [*PLANNED, "--plan-window", "32", "--pass-overhead-tokens", "144"],
    ),
    "packed": (
        "the 16 oldest as one packed pass (the default; no padding between samples; max batch {max_batch})",
        PACKED,
    ),
    "packed32": (
        "the 32 oldest as one packed pass (max batch {max_batch})",
        [*PACKED, "--plan-window", "32"],
    ),
    "single": ("batch size 1 (each request alone, like OpenRLHF's serve_rm)", ["--max-batch", "1"]),
}


def start_server(model: Path, flags: list[str], threads: int) -> tuple[subprocess.Popen, str]:
    """`rewardlab serve` in its own process on a free loopback port; returns it and its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "rewardlab.cli", "serve", "--model", str(model), "--port", str(port)]
    cmd += [*flags, "--max-body-bytes", str(MAX_BODY), "--max-queue", "100000"]
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
    url: str,
    prompts: list[str],
    responses: list[str],
    clients: int,
    requests: int,
    bad_every: int,
    group: int = 1,
) -> dict:
    """The load: ``clients`` threads × ``requests`` requests; latencies and answers by class.
    ``group`` > 1: clients c·G .. c·G + G − 1 send the G responses of one prompt at each step (the
    texts are :func:`grouped`), as OpenRLHF sends a GRPO group's samples at once."""
    latencies: list[float] = []
    classes: Counter[str] = Counter()
    rewards: dict[int, float] = {}
    lock, barrier = threading.Lock(), threading.Barrier(clients)
    bad = dict(BAD_KINDS)
    bad["oversized"] = (json.dumps({"query": ["x" * (MAX_BODY + 10)]}).encode(), 413)

    slots = max(1, clients // group)
    stride = max(1, len(prompts) // group // slots)  # slots start spread over the texts, whatever --requests

    def client(c: int) -> None:
        http = RewardClient(url, timeout=180)
        barrier.wait()
        for k in range(requests):
            # request k of client c is text (c·stride + k) mod N (G = 1): at every moment the
            # clients hold distinct texts, as a rollout's samples are (c·requests + k would put all
            # clients on the same text in lockstep whenever --requests is a multiple of N); G > 1:
            # member c mod G of group (⌊c/G⌋·stride + k)
            n = ((c // group) * stride + k) * group + c % group
            kind, body, expected = _request(n, prompts, responses, bad, bad_every)
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
    return _stats(time.perf_counter() - t0, latencies, classes, rewards)


def _request(n: int, prompts, responses, bad: dict, bad_every: int) -> tuple[str, bytes, int]:
    """Request n of the load: (kind, body, expected status); every ``bad_every``-th one is bad."""
    if bad_every and n % bad_every == bad_every - 1:
        kind = list(bad)[(n // bad_every) % len(bad)]
        return kind, *bad[kind]
    i = n % len(prompts)
    body = json.dumps({"query": [prompts[i] + responses[i]], "prompts": [prompts[i]], "labels": [None]})
    return "ok", body.encode(), 200


def _stats(wall: float, latencies: list[float], classes: Counter, rewards: dict) -> dict:
    """Throughput, latency quantiles and answers by class of one load run."""
    latencies.sort()
    return {
        "wall": wall,
        "ok": len(latencies),
        "throughput": len(latencies) / wall,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p90": latencies[int(0.9 * (len(latencies) - 1))] if latencies else float("nan"),
        "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
        "classes": classes,
        "errors": sum(v for k, v in classes.items() if k.startswith("ERROR")),
        "rewards": rewards,
    }


def run(args, flags: list[str], prompts: list[str], responses: list[str]) -> dict:
    """One server, warmed up, under the load; RSS after warm-up and at the end."""
    proc, url = start_server(args.model, flags, args.threads)
    try:
        warm = RewardClient(url)
        for i in range(min(64, len(prompts))):
            warm.post("/get_reward", {"query": [prompts[i] + responses[i]], "prompts": [prompts[i]]})
        rss0, busy0 = rss_mb(proc.pid), warm.get("/health").body["busy_s"]
        res = drive(url, prompts, responses, args.clients, args.requests, args.bad_every, args.group_size)
        res["rss"] = (rss0, rss_mb(proc.pid))
        res["health"] = warm.get("/health").body
        res["busy"] = (res["health"]["busy_s"] - busy0) / res["wall"]
    finally:
        proc.terminate()
        proc.wait(30)
    return res


def report(name: str, r: dict) -> None:
    h = r["health"]
    print(f"\n== {name}")
    print(
        f"valid requests: {r['ok']} in {r['wall']:.1f}s → {r['throughput']:.1f} req/s; "
        f"latency p50 {1000 * r['p50']:.0f} ms, p90 {1000 * r['p90']:.0f} ms, p99 {1000 * r['p99']:.0f} ms, "
        f"max {1000 * r['max']:.0f} ms; errors: {r['errors']}"
    )
    print(
        f"server: {h['takes']} takes, {h['batches']} forward passes, mean pass {h['mean_batch']} rows, "
        f"largest {h['largest_batch']}; padding efficiency {h['padding_efficiency']} (real/padded "
        f"tokens); worker busy {100 * r['busy']:.0f}% of the time; in the batcher (queued → "
        f"answered) {h['mean_latency_ms']} ms a sample on average"
    )
    print(
        f"server RSS: {r['rss'][0]:.0f} MiB after warm-up → {r['rss'][1]:.0f} MiB at the end "
        f"(heap trims: {h['trims']})"
    )
    for k, v in sorted(r["classes"].items()):
        print(f"  {k}: {v}")


@functools.cache
def _offline_rm(model: Path):
    """The model offline scoring uses, loaded once (each run is timed before and after)."""
    import rewardlab

    return rewardlab.load(model)


def offline(args, prompts: list[str], responses: list[str]) -> tuple[float, object]:
    """Responses/s of ``rewardlab.load(DIR).score`` on all the texts, in one call; their rewards."""
    import torch

    torch.set_num_threads(args.threads)
    rm = _offline_rm(args.model)
    t0 = time.perf_counter()
    rewards = rm.score(prompts, responses, uncertainty=False).reward
    return len(prompts) / (time.perf_counter() - t0), rewards


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def load_avg() -> str:
    """The 1-minute load average (other work on the machine)."""
    return Path("/proc/loadavg").read_text().split()[0]


def one_round(args, r: int, variants: list[str], prompts, responses) -> dict:
    """Round r: each variant served, with offline right before and after it; their results."""
    res = {}
    for v in variants:
        title, flags = VARIANTS[v]
        flags = [f.format(max_batch=args.max_batch) for f in flags]
        print(f"\n[round {r + 1}, load average {load_avg()}]", end="")
        # offline right before and right after each run: the machine's speed drifts (±20%
        # between runs of minutes on the shared CPU), so the ratio uses their mean
        before, _ = offline(args, prompts, responses)
        res[v] = run(args, flags, prompts, responses)
        after, rewards = offline(args, prompts, responses)
        res[v]["offline"] = (before + after) / 2
        report(title.format(max_batch=args.max_batch), res[v])
        diff = max(abs(x - float(rewards[i])) for i, x in res[v]["rewards"].items())
        print(
            f"offline rewardlab.load(DIR).score on the {len(prompts)} texts: {before:.1f} before, "
            f"{after:.1f} after the run (responses/s); served vs offline rewards: max |diff| {diff:.2e}"
        )
        print(f"round {r + 1}: {v}/offline throughput {res[v]['throughput'] / res[v]['offline']:.2f}")
    if "single" in variants:
        for v in (v for v in variants if v != "single"):
            gain = res[v]["throughput"] / res["single"]["throughput"]
            print(f"round {r + 1}: {v} gain over batch size 1: {gain:.2f}x")
    return res


def summary(args, rounds: list[dict], variants: list[str]) -> None:
    """Print each variant's mean over the rounds."""
    print(f"\n== summary over {len(rounds)} round(s), {args.clients} clients x {args.requests} requests")
    for v in variants:
        ratios = [x[v]["throughput"] / x[v]["offline"] for x in rounds]
        print(
            f"{v}: {statistics.mean(x[v]['throughput'] for x in rounds):.1f} req/s, "
            f"served/offline {statistics.mean(ratios):.2f} (rounds: {_fmt(ratios)}), "
            f"worst p99 {1000 * max(x[v]['p99'] for x in rounds):.0f} ms, "
            f"errors {sum(x[v]['errors'] for x in rounds)}"
        )
        if "single" in variants and v != "single":
            gains = [x[v]["throughput"] / x["single"]["throughput"] for x in rounds]
            print(f"{v}: gain over batch size 1 {statistics.mean(gains):.2f}x (rounds: {_fmt(gains)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("runs/demo/model"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=2000, help="requests per client")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument(
        "--variants", default="packed,planned,single", help=f"comma-separated, of {list(VARIANTS)}"
    )
    ap.add_argument("--repeats", type=int, default=1, help="rounds of all variants, interleaved")
    ap.add_argument("--bad-every", type=int, default=50, help="every Nth request is bad (0: none)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, server and offline alike")
    ap.add_argument("--limit", type=int, default=1000, help="distinct texts (requests cycle through them)")
    ap.add_argument(
        "--group-size",
        type=int,
        default=1,
        help="G > 1: GRPO-shaped load, G responses per prompt in flight at once (a multiple of G clients)",
    )
    ap.add_argument("--backbone", default="minilm", help="untrained RM's backbone when --model is absent")
    args = ap.parse_args()
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        ap.error(f"--variants: unknown {sorted(unknown)}; choose from {list(VARIANTS)}")
    if args.group_size < 1 or args.clients % args.group_size:
        ap.error(f"--group-size: must be >= 1 and divide --clients ({args.clients}), got {args.group_size}")
    if not (args.model / "rewardlab.json").exists():  # speed does not depend on training
        from rewardlab.models.config import ModelConfig
        from rewardlab.models.reward_model import RewardModel

        args.model = Path(f"/tmp/bench-serve-model-{args.backbone}")
        RewardModel.build(ModelConfig(backbone=args.backbone)).save(args.model)
    prompts, responses = grouped(*texts(args.limit), args.group_size)
    offline(args, prompts, responses)  # warm-up: a cold first call would lower the first "before"
    rounds = [one_round(args, r, variants, prompts, responses) for r in range(args.repeats)]
    summary(args, rounds, variants)


if __name__ == "__main__":
    main()
