"""Simulated workcell benchmark: scripted-expert success per task, camera fps, physics steps per second.

Usage (from the repository root):

    python benchmarks/bench_sim.py                 # 50 seeds per task, 224x224 images
    python benchmarks/bench_sim.py --seeds 10 --frames 20

Expert episodes run without rendering (the expert reads privileged state); camera speed is measured
separately. Baselines measured in the same run: bare ``stepSimulation`` of the same world (what the
inverse kinematics at the physics rate costs on top), the raw TinyRenderer call (what our image
conversion costs on top) and the scene camera with the Panda's full visual meshes (what the light
meshes save).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pybullet as pb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vla_ros.sim import MAX_EPISODE_STEPS, TASK_NAMES, ScriptedExpert, Workcell, WorkcellConfig, run_episode


def bench_expert(cell: Workcell, tasks: list[str], seeds: int, max_steps: int) -> list[dict]:
    expert = ScriptedExpert(cell)
    rows = []
    for task in tasks:
        results = [
            run_episode(cell, expert, seed, task, max_steps=max_steps, render=False) for seed in range(seeds)
        ]
        failures = [r.seed for r in results if not r.success]
        rows.append(
            {
                "task": task,
                "episodes": len(results),
                "success": sum(r.success for r in results) / len(results),
                "mean_steps": statistics.mean(r.steps for r in results),
                "max_steps": max(r.steps for r in results),
                "wall_s_per_episode": statistics.mean(r.wall_time_s for r in results),
                "failed_seeds": failures,
            }
        )
    return rows


def bench_physics(cell: Workcell, control_steps: int) -> dict:
    cell.reset(0, "pick_place")
    client = cell._client  # baseline needs the raw client: same world, no IK, no motor commands
    steps = control_steps * round(cell.control_period_s * cell.config.physics_hz)
    start = time.perf_counter()
    for _ in range(steps):
        pb.stepSimulation(physicsClientId=client)
    bare = steps / (time.perf_counter() - start)

    cell.reset(0, "pick_place")
    rng = np.random.default_rng(0)
    start_sim, start = cell.sim_time_s, time.perf_counter()
    for _ in range(control_steps):
        delta = rng.uniform(-0.03, 0.03, size=3)
        cell.apply_action(np.array([*delta, 0.0, 0.0, 0.0, float(rng.integers(2))]))
    wall = time.perf_counter() - start
    tracked = (cell.sim_time_s - start_sim) * cell.config.physics_hz / wall
    return {
        "bare_steps_per_s": bare,
        "tracked_steps_per_s": tracked,
        "control_steps_per_s": control_steps / wall,
        "real_time_factor": (cell.sim_time_s - start_sim) / wall,
    }


def bench_render(size: tuple[int, int], frames: int) -> dict:
    width, height = size
    cell = Workcell(WorkcellConfig(image_width=width, image_height=height, wrist_camera=True))
    try:
        cell.reset(0, "pick_place")
        config = cell.config
        view = pb.computeViewMatrix(config.camera_eye_m, config.camera_target_m, (0, 0, 1))
        projection = pb.computeProjectionMatrixFOV(config.camera_fov_deg, width / height, 0.02, 3.0)
        start = time.perf_counter()
        for _ in range(frames):
            pb.getCameraImage(
                width,
                height,
                view,
                projection,
                renderer=pb.ER_TINY_RENDERER,
                flags=pb.ER_NO_SEGMENTATION_MASK,
                shadow=0,
                physicsClientId=cell._client,
            )
        raw = frames / (time.perf_counter() - start)
        result = {"size": f"{width}x{height}", "raw_fps": raw}
        for camera in ("scene", "wrist"):
            start = time.perf_counter()
            for _ in range(frames):
                cell.render(camera)
            result[f"{camera}_fps"] = frames / (time.perf_counter() - start)
    finally:
        cell.close()
    with Workcell(WorkcellConfig(image_width=width, image_height=height, light_robot_meshes=False)) as full:
        full.reset(0, "pick_place")
        start = time.perf_counter()
        for _ in range(frames):
            full.render("scene")
        result["full_mesh_scene_fps"] = frames / (time.perf_counter() - start)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="seeded layouts per task (seeds 0..N-1)")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
    parser.add_argument("--max-steps", type=int, default=MAX_EPISODE_STEPS)
    parser.add_argument("--frames", type=int, default=50, help="frames per camera timing")
    parser.add_argument("--control-steps", type=int, default=100, help="control steps for the physics timing")
    args = parser.parse_args()

    with Workcell() as cell:
        print(
            f"expert: {args.seeds} seeds per task, control period {cell.control_period_s} s "
            f"({1 / cell.control_period_s:.0f} Hz), physics {cell.config.physics_hz:.0f} Hz, "
            f"max {args.max_steps} steps"
        )
        rows = bench_expert(cell, args.tasks, args.seeds, args.max_steps)
        header = ("task", "episodes", "success", "mean steps", "max steps", "wall s/ep")
        print("{:<11} {:>8} {:>8} {:>10} {:>9} {:>9}  failed".format(*header))
        for row in rows:
            print(
                f"{row['task']:<11} {row['episodes']:>8} {row['success']:>8.0%} {row['mean_steps']:>10.1f} "
                f"{row['max_steps']:>9} {row['wall_s_per_episode']:>9.2f}  {row['failed_seeds'] or '-'}"
            )
        physics = bench_physics(cell, args.control_steps)

    print()
    print(f"{'physics':<44} {'value':>10}")
    print(f"{'bare stepSimulation, same world (baseline)':<44} {physics['bare_steps_per_s']:>10.0f} steps/s")
    print(
        f"{'workcell physics steps (IK + motors each)':<44} {physics['tracked_steps_per_s']:>10.0f} steps/s"
    )
    print(f"{'control steps (apply_action)':<44} {physics['control_steps_per_s']:>10.1f} /s")
    print(f"{'real-time factor (sim s per wall s)':<44} {physics['real_time_factor']:>10.1f} x")

    print()
    print(
        f"{'camera (TinyRenderer)':<14} {'raw call':>10} {'scene cam':>10} {'wrist cam':>10} "
        f"{'scene cam, full Panda meshes (baseline)':>40}"
    )
    for size in ((224, 224), (128, 128), (320, 240)):
        result = bench_render(size, args.frames)
        print(
            f"{result['size']:<14} {result['raw_fps']:>6.1f} fps {result['scene_fps']:>6.1f} fps "
            f"{result['wrist_fps']:>6.1f} fps {result['full_mesh_scene_fps']:>36.1f} fps"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
