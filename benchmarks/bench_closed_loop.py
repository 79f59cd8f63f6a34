"""Closed loop through ROS (every stage a node, sim time) against the direct rollout, with the expert.

Usage (from the repository root, after `make build`):

    bash scripts/with_env.sh python benchmarks/bench_closed_loop.py --seeds 10
    bash scripts/with_env.sh python benchmarks/bench_closed_loop.py --seeds 3 --real-time-factor 2

Baseline measured in the same run: ``run_episode`` (reset, render, expert, apply_action in one thread,
no ROS), on the same seeds. The ROS loop runs in real time scaled by ``--real-time-factor``, so its
wall time is bounded below by sim time / factor; the interesting numbers are its success rate, its
steps (latency makes the expert need more) and whether the policy keeps its 10 Hz in sim time.
"""

from __future__ import annotations

import argparse
import statistics
import time

from vla_ros.sim import TASK_NAMES, ScriptedExpert, Workcell, run_episode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
    parser.add_argument("--real-time-factor", type=float, default=1.0)
    args = parser.parse_args()

    from vla_ros.nodes.closed_loop import ClosedLoop, ClosedLoopOptions

    rows = []
    with Workcell() as cell:
        expert = ScriptedExpert(cell)
        for task in args.tasks:
            direct = [run_episode(cell, expert, seed, task, render=True) for seed in range(args.seeds)]
            rows.append(
                (
                    "direct",
                    task,
                    sum(r.success for r in direct),
                    statistics.mean(r.steps for r in direct),
                    statistics.mean(r.sim_time_s for r in direct),
                    statistics.mean(r.wall_time_s for r in direct),
                    statistics.mean(r.steps / r.sim_time_s for r in direct),
                )
            )
    options = ClosedLoopOptions(real_time_factor=args.real_time_factor, keep_frames=False)
    started = time.perf_counter()
    with ClosedLoop(options, task=args.tasks[0]) as loop:
        startup_s = time.perf_counter() - started
        for task in args.tasks:
            reports = [loop.run_episode(seed, seed, task)[0] for seed in range(args.seeds)]
            rows.append(
                (
                    f"ROS x{args.real_time_factor:g}",
                    task,
                    sum(r.success for r in reports),
                    statistics.mean(r.steps for r in reports),
                    statistics.mean(r.sim_time_s for r in reports),
                    statistics.mean(r.wall_time_s for r in reports),
                    statistics.mean(r.policy_rate_hz for r in reports),
                )
            )
    print(f"\n{args.seeds} seeds per task; ROS loop start-up (nodes, workcell) {startup_s:.1f} s")
    print(
        f"{'loop':<9} {'task':<10} {'success':>8} {'steps':>6} {'sim s':>6} {'wall s':>7} {'policy Hz':>10}"
    )
    for name, task, ok, steps, sim_s, wall_s, rate in rows:
        success = f"{ok}/{args.seeds}"
        print(f"{name:<9} {task:<10} {success:>8} {steps:>6.1f} {sim_s:>6.2f} {wall_s:>7.2f} {rate:>10.2f}")
    print("policy Hz: policy steps per sim second. ROS wall s includes reset, disambiguation and the stop.")


if __name__ == "__main__":
    main()
