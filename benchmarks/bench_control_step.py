"""Cost of the controller's safety path per output, next to a bare numpy baseline.

The controller runs at the output rate (50-500 Hz); this shows how much of an output period the
safety path takes. Baseline: copying and clipping one 6-D array, the least any output path does.

    python benchmarks/bench_control_step.py [--steps 20000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vla_ros.control import Controller, SafetyFilter, SafetyLimits


def _time_per_call_us(fn, steps: int) -> tuple[float, float]:
    samples = np.empty(steps)
    for i in range(steps):
        start = time.perf_counter()
        fn(i)
        samples[i] = time.perf_counter() - start
    return float(np.percentile(samples, 50) * 1e6), float(np.percentile(samples, 95) * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()

    limits = SafetyLimits(workspace_min_m=(-0.5, -0.5, 0.0), workspace_max_m=(0.5, 0.5, 0.8))
    rng = np.random.default_rng(0)
    twists = rng.uniform(-0.5, 0.5, size=(args.steps, 6))
    period = 0.01
    ee = np.array([0.0, 0.0, 0.4])
    vmax = limits.max_speed

    def baseline(i: int) -> None:
        np.clip(twists[i].copy(), -vmax, vmax)

    safety_filter = SafetyFilter(limits)

    def filter_apply(i: int) -> None:
        safety_filter.apply(twists[i], i * period, ee)

    controller = Controller(limits)

    def controller_step(i: int) -> None:
        now = i * period
        controller.on_ee_pose(ee, now)
        if i % 20 == 0:
            controller.on_command(twists[i], now, now)
        controller.step(now)

    rows = [
        ("baseline: clip a 6-D array", *_time_per_call_us(baseline, args.steps)),
        ("SafetyFilter.apply", *_time_per_call_us(filter_apply, args.steps)),
        ("Controller pose+command+step", *_time_per_call_us(controller_step, args.steps)),
    ]
    print(f"{'path':32s} {'p50 us':>8s} {'p95 us':>8s}   ({args.steps} calls)")
    for name, p50, p95 in rows:
        print(f"{name:32s} {p50:8.1f} {p95:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
