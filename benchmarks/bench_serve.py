"""Many arms, one policy server: throughput and latency with dynamic batching on and off, in one run.

Each simulated arm is a thread that behaves like policy_node's inference worker (a RemotePolicy): it
sends its newest camera frame to the server at its control rate (``--rate-hz``), at most one request
in flight, and waits for the action. Two servers run side by side on one Ray Serve instance, one with
batching (``--max-batch-size``) and one without (``max_batch_size=1``: the same code path, one request
per batch), and for 1, 2, 4 and 8 arms they are measured alternately (``--repeats`` times, 3 by
default, the order flipped each time), so both see the same load on the machine: actions per second,
per-request latency p50 / p95, where a request's time went (client encoding, the server's decoding,
queueing, the model, and the rest: HTTP, Ray Serve's proxy and the response), the batch sizes formed,
and at the end the ratio of batched to unbatched throughput at the largest number of arms.

First, the model alone: ``predict_actions`` at batch 1, 4 and 8 in this process with the replica's
torch threads (``--num-cpus``): what batching gains in compute before any serving cost
(``--model-alone-only`` stops there).

``--payload BODY/IMAGE`` (repeatable) picks how arms send frames: msgpack/raw (the default: image
bytes as they are), json/png (what the first clients sent: base64 PNG in JSON), and any other pair of
json|msgpack and raw|png|jpeg; several payloads are measured in the same run, interleaved.

The batch window (``--batch-wait-timeout-s``) defaults to 0.04 s here, not the server's 0.01 s: on a
2-core CPU that the arms, Ray Serve's proxy and the replica share, an answered arm's next request
takes some 40 ms to reach the replica (the 'rest' column), and with a shorter window 8 arms that ask
as fast as they are answered split into two groups that alternate in half-filled batches (measured:
mean batch 3-4 at 0.01 s, 7-8 at 0.04 s). The unbatched server never waits, whatever the window; a
batch of fewer arms than the batch size waits it out.

    bash scripts/with_env.sh python benchmarks/bench_serve.py                  # tiny checkpoint, CPU
    bash scripts/with_env.sh python benchmarks/bench_serve.py --arms 1 8 \
        --payload json/png --payload msgpack/raw
    bash scripts/with_env.sh python benchmarks/bench_serve.py --model models/sim_policy --model-alone-only
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
from vla_ros.serving.protocol import BODY_FORMATS, IMAGE_FORMATS
from vla_ros.serving.server import build_app, policy_config_dict, start_server, stop_server

INSTRUCTIONS = ("pick up the red gear", "put the bolt in the scrap bin", "move to the tray", "go home")
MODEL_ALONE_BATCHES = (1, 4, 8)


@dataclass
class Row:
    payload: str
    batching: str
    arms: int
    actions_per_s: float
    p50_s: float
    p95_s: float
    mean_batch: float
    largest_batch: int
    errors: int
    parts_ms: dict[str, float]  # median per request: encode, decode, queue, model, rest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _arm(
    client: RemotePolicy, index: int, rate_hz: float, until: float, samples: list[dict], errors: list[str]
) -> None:
    rng = np.random.default_rng(index)
    frame = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    period = 1.0 / rate_hz
    next_tick = time.monotonic()
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            action = client.predict_action(frame, INSTRUCTIONS[index % len(INSTRUCTIONS)])
        except RemotePolicyError as exc:
            errors.append(str(exc))
        else:
            latency = time.perf_counter() - start
            samples.append(
                {"latency": latency, **action.extras["client_timings"], **action.extras["server_timings"]}
            )
        next_tick += period
        time.sleep(max(0.0, next_tick - time.monotonic()))
        next_tick = max(next_tick, time.monotonic())  # a late arm does not try to catch up


def _batches(url: str) -> dict[int, int]:
    return {int(k): v for k, v in RemotePolicy(url, timeout_s=60.0).metadata()["batch_sizes"].items()}


def _parts_ms(samples: list[dict]) -> dict[str, float]:
    """Median milliseconds of a request's parts. queue: arrival in the replica to the batch's start
    (decoding included, shown apart); rest: the round trip less all that (HTTP, Ray Serve's proxy and
    handle, the response, parsing it)."""

    def med(values) -> float:
        return 1000 * statistics.median(values) if samples else float("nan")

    return {
        "encode": med(s["encode_s"] for s in samples),
        "decode": med(s.get("decode_s", 0.0) for s in samples),
        "queue": med(s["queue_s"] - s.get("decode_s", 0.0) for s in samples),
        "model": med(s["inference_s"] for s in samples),
        "rest": med(s["latency"] - s["encode_s"] - s["queue_s"] - s["inference_s"] for s in samples),
    }


def measure(url: str, payload: str, batching: str, arms: int, seconds: float, rate_hz: float) -> Row:
    body_format, image_format = payload.split("/")
    clients = [
        RemotePolicy(url, 60.0, f"arm_{i}", image_format=image_format, body_format=body_format)
        for i in range(arms)
    ]
    before = _batches(url)
    samples: list[dict] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_arm, args=(c, i, rate_hz, until, samples, errors))
        for i, c in enumerate(clients)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for c in clients:
        c.close()
    after = _batches(url)
    formed = {size: after.get(size, 0) - before.get(size, 0) for size in after}
    batches = sum(formed.values())
    latencies = [s["latency"] for s in samples]
    return Row(
        payload=payload,
        batching=batching,
        arms=arms,
        actions_per_s=len(samples) / elapsed,
        p50_s=statistics.median(latencies) if latencies else float("nan"),
        p95_s=float(np.percentile(latencies, 95)) if latencies else float("nan"),
        mean_batch=sum(size * n for size, n in formed.items()) / batches if batches else float("nan"),
        largest_batch=max((size for size, n in formed.items() if n), default=0),
        errors=len(errors),
        parts_ms=_parts_ms(samples),
    )


def _median_row(rows: list[Row]) -> Row:
    """One row per setting: the median of its repeats, field by field."""

    def med(values) -> float:
        return statistics.median(list(values))

    return Row(
        payload=rows[0].payload,
        batching=rows[0].batching,
        arms=rows[0].arms,
        actions_per_s=med(r.actions_per_s for r in rows),
        p50_s=med(r.p50_s for r in rows),
        p95_s=med(r.p95_s for r in rows),
        mean_batch=med(r.mean_batch for r in rows),
        largest_batch=max(r.largest_batch for r in rows),
        errors=sum(r.errors for r in rows),
        parts_ms={k: med(r.parts_ms[k] for r in rows) for k in rows[0].parts_ms},
    )


def model_alone(config: dict, num_threads: int, seconds: float) -> dict[int, float]:
    """predict_actions throughput (actions/s) in this process at each of MODEL_ALONE_BATCHES, with the
    replica's number of torch threads: what batching can gain here before any serving cost. The batch
    sizes take turns, call by call, so that a change of load on the machine weighs on all of them."""
    import torch

    from vla_ros.policy.runtime import VLAPolicy

    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        policy = VLAPolicy(PolicyConfig(**config))
        rng = np.random.default_rng(0)
        frames = [
            rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(max(MODEL_ALONE_BATCHES))
        ]
        inputs = {
            batch: (frames[:batch], [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(batch)])
            for batch in MODEL_ALONE_BATCHES
        }
        for images, texts in inputs.values():
            policy.predict_actions(images, texts)  # warm-up
        times: dict[int, list[float]] = {batch: [] for batch in MODEL_ALONE_BATCHES}
        until = time.monotonic() + seconds * len(MODEL_ALONE_BATCHES)
        while time.monotonic() < until or min(len(t) for t in times.values()) < 3:
            for batch, (images, texts) in inputs.items():
                start = time.perf_counter()
                policy.predict_actions(images, texts)
                times[batch].append(time.perf_counter() - start)
        return {batch: batch / statistics.median(t) for batch, t in times.items()}
    finally:
        torch.set_num_threads(previous)


def _print_model_alone(model: Path, args: argparse.Namespace, alone: dict[int, float]) -> None:
    device = "GPU" if args.num_gpus else "CPU"
    print(f"\n{model} ({args.precision}, {device}, {args.num_cpus} torch thread(s) per replica)")
    if alone:
        print(
            "model alone, predict_actions: "
            + ", ".join(f"batch {b} {t:.1f} actions/s" for b, t in alone.items())
            + f"; batch {max(alone)} / batch 1 = {alone[max(alone)] / alone[1]:.2f}x"
        )


def _payload(text: str) -> str:
    body_format, _, image_format = text.partition("/")
    if body_format not in BODY_FORMATS or image_format not in IMAGE_FORMATS:
        raise argparse.ArgumentTypeError(
            f"payload must be BODY/IMAGE, BODY one of {BODY_FORMATS}, IMAGE one of {IMAGE_FORMATS}: {text!r}"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: a tiny random one)")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--num-gpus", type=float, default=0.0)
    parser.add_argument(
        "--num-cpus", type=int, default=1, help="CPUs of the replica (Ray gives torch as many threads)"
    )
    parser.add_argument("--arms", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=10.0, help="per (payload, batching, arms) setting")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="each arm's control rate")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument(
        "--batch-wait-timeout-s",
        type=float,
        default=0.04,
        help="how long a batch waits to fill (see the note at the end of the output)",
    )
    parser.add_argument(
        "--payload",
        type=_payload,
        action="append",
        help="BODY/IMAGE the arms send (repeatable; default msgpack/raw)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="measure each setting this many times, on and off alternated"
    )
    parser.add_argument(
        "--model-alone-s", type=float, default=3.0, help="seconds per batch size of the model alone (0: skip)"
    )
    parser.add_argument("--model-alone-only", action="store_true", help="measure the model alone, no server")
    args = parser.parse_args(argv)
    payloads = args.payload or ["msgpack/raw"]

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
        alone = model_alone(config, args.num_cpus, args.model_alone_s) if args.model_alone_s > 0 else {}
        if args.model_alone_only:
            _print_model_alone(model, args, alone)
            return 0
        port = _free_port()
        rows: list[Row] = []
        try:
            # Both servers side by side (one replica each), so that batching on and off are measured
            # alternately, a few seconds apart, under the same load on the machine.
            urls = {}
            for batching, size in (("on", args.max_batch_size), ("off", 1)):
                app = build_app(
                    config,
                    max_batch_size=size,
                    batch_wait_timeout_s=args.batch_wait_timeout_s,
                    num_gpus=args.num_gpus,
                    num_cpus=args.num_cpus,
                )
                urls[batching] = start_server(
                    app,
                    port=port,
                    num_cpus=2 * args.num_cpus,
                    name=f"batching_{batching}",
                    route_prefix=f"/batching_{batching}",
                )
            for arms in args.arms:
                for repeat in range(args.repeats):
                    for payload in payloads:
                        order = ("on", "off") if repeat % 2 == 0 else ("off", "on")
                        for batching in order:
                            rows.append(
                                measure(urls[batching], payload, batching, arms, args.seconds, args.rate_hz)
                            )
                            print(
                                f"{payload}, batching {batching}, {arms} arm(s): "
                                f"{rows[-1].actions_per_s:.1f} actions/s",
                                flush=True,
                            )
        finally:
            stop_server()

    _print_model_alone(model, args, alone)
    print(
        f"one server per batching setting; each arm asks at {args.rate_hz:g} Hz with one request in flight; "
        f"{args.seconds:g} s per row, median of {args.repeats} alternated repeat(s); batch wait "
        f"{args.batch_wait_timeout_s:g} s; parts: median ms per request"
    )
    header = (
        f"{'payload':<12} {'batching':<8} {'arms':>4} {'actions/s':>9} {'p50 s':>6} {'p95 s':>6} "
        f"{'batch':>5} {'max':>3} {'err':>3} |"
        + "".join(f" {part:>6}" for part in ("encode", "decode", "queue", "model", "rest"))
    )
    print(header)
    print("-" * len(header))
    for payload in payloads:
        for batching in ("on", "off"):
            for arms in args.arms:
                r = _median_row(
                    [r for r in rows if (r.payload, r.batching, r.arms) == (payload, batching, arms)]
                )
                parts = " ".join(
                    f"{r.parts_ms[k]:>6.1f}" for k in ("encode", "decode", "queue", "model", "rest")
                )
                print(
                    f"{r.payload:<12} {r.batching:<8} {r.arms:>4} {r.actions_per_s:>9.2f} {r.p50_s:>6.3f} "
                    f"{r.p95_s:>6.3f} {r.mean_batch:>5.2f} {r.largest_batch:>3} {r.errors:>3} | {parts}"
                )
    most = max(args.arms)
    for payload in payloads:
        on = [r.actions_per_s for r in rows if (r.payload, r.batching, r.arms) == (payload, "on", most)]
        off = [r.actions_per_s for r in rows if (r.payload, r.batching, r.arms) == (payload, "off", most)]
        ratios = [a / b for a, b in zip(on, off, strict=True)]
        print(
            f"{payload}: batched / unbatched throughput at {most} arms: {statistics.median(ratios):.2f}x"
            + (f" (repeats: {', '.join(f'{x:.2f}' for x in ratios)})" if len(ratios) > 1 else "")
        )
    print(
        "note: a batch fills only if the window (batch wait) covers the arms' turnaround, from an answer to "
        "the arm's next request reaching the replica ('rest' above, in part); shorter, and arms that ask "
        "as fast as they are answered split into groups that alternate in part-filled batches"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
