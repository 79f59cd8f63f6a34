"""Many arms, one policy server: throughput and latency with dynamic batching on and off, in one run.

Each simulated arm is a thread that behaves like policy_node's inference worker: it sends its newest
camera frame to the server at its control rate (``--rate-hz``), at most one request in flight, and
waits for the action. For 1, 2, 4 and 8 arms, first with batching (``--max-batch-size``), then with
``max_batch_size=1`` (off), on the same server process and the same checkpoint: actions per second,
per-request latency p50 / p95, the batch sizes the server formed, and at the end the ratio of batched to
unbatched throughput at the largest number of arms.

    bash scripts/with_env.sh python benchmarks/bench_serve.py                  # tiny checkpoint, CPU
    bash scripts/with_env.sh python benchmarks/bench_serve.py --model DIR --num-gpus 1 --precision bf16
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_ros.policy.runtime import PolicyConfig
from vla_ros.serving.client import RemotePolicy, RemotePolicyError
from vla_ros.serving.server import build_app, policy_config_dict, start_server, stop_server

INSTRUCTIONS = ("pick up the red gear", "put the bolt in the scrap bin", "move to the tray", "go home")


@dataclass
class Row:
    batching: str
    arms: int
    actions_per_s: float
    p50_s: float
    p95_s: float
    mean_batch: float
    largest_batch: int
    errors: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _arm(
    url: str, index: int, rate_hz: float, until: float, latencies: list[float], errors: list[str]
) -> None:
    client = RemotePolicy(url, timeout_s=60.0, robot_id=f"arm_{index}")
    rng = np.random.default_rng(index)
    frame = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    period = 1.0 / rate_hz
    next_tick = time.monotonic()
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            client.predict_action(frame, INSTRUCTIONS[index % len(INSTRUCTIONS)])
            latencies.append(time.perf_counter() - start)
        except RemotePolicyError as exc:
            errors.append(str(exc))
        next_tick += period
        time.sleep(max(0.0, next_tick - time.monotonic()))
        next_tick = max(next_tick, time.monotonic())  # a late arm does not try to catch up


def _batches(url: str) -> dict[int, int]:
    return {int(k): v for k, v in RemotePolicy(url, timeout_s=60.0).metadata()["batch_sizes"].items()}


def measure(url: str, batching: str, arms: int, seconds: float, rate_hz: float) -> Row:
    before = _batches(url)
    latencies: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_arm, args=(url, i, rate_hz, until, latencies, errors)) for i in range(arms)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    after = _batches(url)
    formed = {size: after.get(size, 0) - before.get(size, 0) for size in after}
    batches = sum(formed.values())
    return Row(
        batching=batching,
        arms=arms,
        actions_per_s=len(latencies) / elapsed,
        p50_s=statistics.median(latencies) if latencies else float("nan"),
        p95_s=float(np.percentile(latencies, 95)) if latencies else float("nan"),
        mean_batch=sum(size * n for size, n in formed.items()) / batches if batches else float("nan"),
        largest_batch=max((size for size, n in formed.items() if n), default=0),
        errors=len(errors),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: a tiny random one)")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--num-gpus", type=float, default=0.0)
    parser.add_argument("--arms", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=10.0, help="per (batching, arms) setting")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="each arm's control rate")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-wait-timeout-s", type=float, default=0.01)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from vla_ros.model.tiny import make_tiny_checkpoint

            model = make_tiny_checkpoint(Path(tmp) / "tiny", seed=0)
        config = policy_config_dict(
            PolicyConfig(
                checkpoint_dir=model, precision=args.precision, device="cuda" if args.num_gpus else "cpu"
            )
        )
        port = _free_port()
        rows: list[Row] = []
        try:
            for batching, size in (("on", args.max_batch_size), ("off", 1)):
                app = build_app(
                    config,
                    max_batch_size=size,
                    batch_wait_timeout_s=args.batch_wait_timeout_s,
                    num_gpus=args.num_gpus,
                )
                url = start_server(app, port=port)
                for arms in args.arms:
                    rows.append(measure(url, batching, arms, args.seconds, args.rate_hz))
                    print(
                        f"batching {batching}, {arms} arm(s): {rows[-1].actions_per_s:.1f} actions/s",
                        flush=True,
                    )
        finally:
            stop_server()

    print(
        f"\n{model} on one server ({args.precision}, {'GPU' if args.num_gpus else 'CPU'}); each arm asks at "
        f"{args.rate_hz:g} Hz with one request in flight; {args.seconds:g} s per row"
    )
    header = (
        f"{'batching':<9} {'arms':>4} {'actions/s':>10} {'p50 s':>8} {'p95 s':>8} {'mean batch':>11} "
        f"{'max':>4} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.batching:<9} {r.arms:>4} {r.actions_per_s:>10.2f} {r.p50_s:>8.3f} {r.p95_s:>8.3f} "
            f"{r.mean_batch:>11.2f} {r.largest_batch:>4} {r.errors:>6}"
        )
    most = max(args.arms)
    on = next(r for r in rows if r.batching == "on" and r.arms == most)
    off = next(r for r in rows if r.batching == "off" and r.arms == most)
    print(f"batched / unbatched throughput at {most} arms: {on.actions_per_s / off.actions_per_s:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
