"""Does a two-view policy look through its wrist camera where it matters, close to the part?

Usage (from the repository root, after `make build`; about 2 min on two cores):

    bash scripts/with_env.sh python benchmarks/probe_wrist_view.py --model runs/WC/ckpt \
        --per-axis-moves --close-until-held --close-lift-mm 5 --approach-gain 0.5

The scripted expert (moving as the expert flags say: give the ones the demonstrations were recorded
with) drives held-out pick_place layouts. On every step before the named part is held, the policy is
asked for its step three times, with the same scene frame: with the wrist frame of that step, with
the wrist frame the camera had at home on the same layout (a view that says the part is far), and
with the scene frame in place of the wrist frame. A policy that uses the wrist view changes its step
when the view changes; one that ignores it answers the same. Printed per band of distance from the
arm to the part in the table plane (``--bands-cm``) and variant: the mean change of the translation
from the true view's step (mm), the mean distance of the xy step from the expert's (mm), and how
often it closes the gripper when the expert does (and when it does not).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    from vla_ros.train.cli import add_expert_arguments, expert_config_from_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="two-view checkpoint directory")
    parser.add_argument("--layouts", type=int, default=10)
    parser.add_argument("--seed-start", type=int, default=100000, help="layouts no demonstration used")
    parser.add_argument(
        "--bands-cm", type=float, nargs="+", default=[0.0, 3.0, 8.0, 20.0], help="distance bands (xy, cm)"
    )
    parser.add_argument("--num-threads", type=int, default=2)
    add_expert_arguments(parser)
    args = parser.parse_args()

    import torch

    from vla_ros.sim import ScriptedExpert, Workcell
    from vla_ros.sim.rollout import MAX_EPISODE_STEPS
    from vla_ros.train.evaluate_closed_loop import vla_policy_factory
    from vla_ros.train.record import workcell_config

    torch.set_num_threads(args.num_threads)
    variants = ("true wrist frame", "wrist frame from home", "scene frame as wrist frame")
    bands = list(zip(args.bands_cm[:-1], args.bands_cm[1:], strict=True))
    # Per (band, variant), per step: change vs the true view (mm), xy error vs the expert (mm),
    # expert closes, policy closes.
    rows: dict[tuple[int, str], list[tuple[float, float, bool, bool]]] = {}
    with Workcell(workcell_config(224, wrist_camera=True)) as cell:
        policy = vla_policy_factory(args.model)(cell)
        if policy.num_images != 2:
            raise SystemExit(
                f"{args.model} looks at {policy.num_images} view(s); this probe needs a two-view model"
            )
        expert = ScriptedExpert(cell, expert_config_from_args(args, "probe_wrist_view"))
        for seed in range(args.seed_start, args.seed_start + args.layouts):
            instruction = cell.reset(seed, "pick_place")
            home_wrist = cell.render("wrist")
            part_id = cell.task.part_id
            for _ in range(MAX_EPISODE_STEPS):
                if cell.success() or cell.holding() == part_id:
                    break
                scene = cell.render()
                label = expert.predict_action(scene, instruction).vector
                ee, _ = cell.ee_pose()
                distance_cm = 100 * float(np.linalg.norm(ee[:2] - cell.part_position(part_id)[:2]))
                band = next((k for k, (lo, hi) in enumerate(bands) if lo <= distance_cm < hi), None)
                if band is not None:
                    wrist = cell.render("wrist")
                    answers = [
                        policy.predict_action(scene, instruction, extra_images=(view,)).vector
                        for view in (wrist, home_wrist, scene)
                    ]
                    for name, answer in zip(variants, answers, strict=True):
                        rows.setdefault((band, name), []).append(
                            (
                                1000 * float(np.linalg.norm(answer[:3] - answers[0][:3])),
                                1000 * float(np.linalg.norm(answer[:2] - label[:2])),
                                bool(label[6] < 0.5),
                                bool(answer[6] < 0.5),
                            )
                        )
                cell.apply_action(label)
    print(f"{args.model}: {args.layouts} held-out pick_place layouts, the expert driving")
    print(
        "| arm to part (xy) | wrist input | steps | step change vs true view (mm) | xy error vs expert (mm) "
        "| closes when expert closes / does not |"
    )
    print("|---|---|---|---|---|---|")
    for k, (lo, hi) in enumerate(bands):
        for name in variants:
            data = rows.get((k, name))
            if not data:
                continue
            moved, error, expert_closes, policy_closes = (np.array(c) for c in zip(*data, strict=True))
            when = policy_closes[expert_closes].mean() if expert_closes.any() else float("nan")
            when_not = policy_closes[~expert_closes].mean() if (~expert_closes).any() else float("nan")
            print(
                f"| {lo:g}-{hi:g} cm | {name} | {len(data)} | {moved.mean():.1f} | {error.mean():.1f} | "
                f"{when:.0%} / {when_not:.0%} |"
            )


if __name__ == "__main__":
    main()
