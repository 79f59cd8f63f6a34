"""How precisely must a policy locate the named part for pick_place to succeed in the workcell?

The scripted expert solves pick_place from the part's true position. Here it aims its approach and
descent at a point ``error_cm`` away from the part in a random direction (one per layout), as a
policy that mislocates the part by that much would, and gets one grasp: a missed grasp ends the
episode instead of starting the expert's re-approach. Everything after a grasp (lift, carry, lower,
release) uses the true state, so the printed rates are an upper bound on what a policy with that
localisation error can reach, whatever else it learns.

Run (about 1 s an episode on one core)::

    bash scripts/with_env.sh python benchmarks/probe_grasp_tolerance.py --episodes 40 \
        --errors-cm 0 0.5 1 1.5 2 3 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vla_ros.eval.closed_loop import EpisodeProgress
from vla_ros.sim import MAX_EPISODE_STEPS, ScriptedExpert, Workcell, WorkcellConfig

AIMING_PHASES = ("start", "approach", "descend")


class MisplacedPartView:
    """The workcell as the expert sees it, with the named part shifted while the expert aims at it."""

    def __init__(self, cell: Workcell, offset_xy_m: np.ndarray) -> None:
        self._cell = cell
        self._offset_xy_m = offset_xy_m
        self.expert: ScriptedExpert | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self._cell, name)

    def part_position(self, part_id: str) -> np.ndarray:
        position = self._cell.part_position(part_id).copy()
        aiming = self.expert is not None and self.expert.phase in AIMING_PHASES
        if aiming and part_id == self._cell.task.part_id:
            position[:2] += self._offset_xy_m
        return position


def run_layout(cell: Workcell, seed: int, error_m: float) -> tuple[bool, bool]:
    """(grasped the named part on the one attempt, task succeeded) for one layout."""
    angle = np.random.default_rng(seed).uniform(0.0, 2.0 * np.pi)
    view = MisplacedPartView(cell, error_m * np.array([np.cos(angle), np.sin(angle)]))
    expert = ScriptedExpert(view)  # type: ignore[arg-type]
    view.expert = expert
    instruction = cell.reset(seed, "pick_place")
    progress = EpisodeProgress()
    for _ in range(MAX_EPISODE_STEPS):
        if cell.success():
            break
        action = expert.predict_action(np.zeros((1, 1, 3), np.uint8), instruction)
        if expert.phase == "regrasp":
            break
        progress.observe(cell)
        cell.apply_action(action.vector)
    progress.observe(cell)
    return progress.grasped, cell.success()


def rate(count: int, n: int) -> str:
    return f"{count}/{n} ({100 * count / n:.0f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--seed-start", type=int, default=100000)
    parser.add_argument("--errors-cm", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    args = parser.parse_args()

    seeds = range(args.seed_start, args.seed_start + args.episodes)
    print(f"pick_place, one grasp attempt, layouts {seeds.start}..{seeds.stop - 1}")
    print("| aim error (cm) | named part grasped | task success |")
    print("|---|---|---|")
    start = time.perf_counter()
    with Workcell(WorkcellConfig()) as cell:
        for error_cm in args.errors_cm:
            results = [run_layout(cell, seed, error_cm / 100.0) for seed in seeds]
            n = len(results)
            grasped, success = (sum(column) for column in zip(*results, strict=True))
            print(f"| {error_cm:g} | {rate(grasped, n)} | {rate(success, n)} |")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
