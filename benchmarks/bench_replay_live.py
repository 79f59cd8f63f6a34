"""Live replay of a synthetic bag into the real policy and controller nodes, at several rates.

Baseline (same run, same policy object): ``predict_action`` called directly in a loop, no ROS, no
rate limit. The live columns show what the node path adds (frame hand-off, rate limit, DDS) and how
many frames a real-time replay drops. Needs the colcon install space (``bash scripts/with_env.sh``).

Usage: bash scripts/with_env.sh python benchmarks/bench_replay_live.py [--model DIR] [--frames 25]
       [--rates 0.5 1 2] [--size 224] [--max-rate-hz 5] [--device cpu]
Without --model a tiny OpenVLA checkpoint of the real architecture is built (random weights).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vla_ros.data.synthetic import step_image, write_demo_bag
from vla_ros.eval.live import ReplayOptions


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 1e3:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--size", type=int, default=224, help="square camera image side in pixels")
    parser.add_argument("--max-rate-hz", type=float, default=5.0, help="policy_node max_rate_hz")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    from vla_ros.nodes.replay import run_live_replay
    from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from vla_ros.model.tiny import make_tiny_checkpoint

            model = make_tiny_checkpoint(Path(tmp) / "tiny", seed=0)
        policy = VLAPolicy(
            PolicyConfig(
                checkpoint_dir=model, precision=args.precision, device=args.device, center_crop=False
            )
        )
        rng = np.random.default_rng(0)
        actions = np.concatenate([rng.uniform(-0.005, 0.005, (args.frames, 6)), np.ones((args.frames, 1))], 1)
        bag = write_demo_bag(Path(tmp) / "bag", actions, image_size=(args.size, args.size))

        baseline = []
        for k in range(min(args.frames, 10)):
            start = time.perf_counter()
            policy.predict_action(step_image(k, args.size, args.size), "pick up the red gear")
            baseline.append(time.perf_counter() - start)
        base = np.asarray(baseline[1:] or baseline)

        header = (
            f"{'run':<22}{'frames':>8}{'acted':>7}{'dropped':>9}{'refused':>9}"
            f"{'lat p50 ms':>12}{'lat p95 ms':>12}{'infer p50':>11}{'policy Hz':>11}"
        )
        print(header)
        print("-" * len(header))
        print(
            f"{'direct predict_action':<22}{len(base):>8}{len(base):>7}{0:>9}{0:>9}"
            f"{_ms(float(np.percentile(base, 50))):>12}{_ms(float(np.percentile(base, 95))):>12}"
            f"{_ms(float(np.percentile(base, 50))):>11}{1.0 / float(np.mean(base)):>11.2f}"
        )
        for rate in args.rates:
            report = run_live_replay(
                bag,
                ReplayOptions(rate=rate),
                policy=policy,
                policy_params={"max_rate_hz": args.max_rate_hz, "center_crop": False},
            )
            lat = report.latency_image_to_twist_s
            hz = report.policy_rate_hz
            print(
                f"{f'live replay x{rate:g}':<22}{report.frames_delivered:>8}{report.frames_acted:>7}"
                f"{report.frames_dropped:>9}{report.frames_refused:>9}{_ms(lat['p50']):>12}{_ms(lat['p95']):>12}"
                f"{_ms(report.inference_time_s['p50']):>11}{'n/a' if hz is None else f'{hz:.2f}':>11}"
            )
        print(
            f"\nbag: {args.frames} frames {args.size}x{args.size} at 5 Hz; policy_node max_rate_hz "
            f"{args.max_rate_hz}; latency = camera stamp -> twist stamp; torch threads {args.threads}"
        )


if __name__ == "__main__":
    main()
