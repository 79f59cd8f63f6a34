"""Does a trained policy steer by the part, or by where the arm already is? (move_to / move_to_part)

Usage (from the repository root, after `make build`; about 1 min on one core):

    bash scripts/with_env.sh python benchmarks/probe_shortcut.py --model models/sim_policy --seeds 30

The scripted expert moves in a straight line from home to the target. Along such a path every step
after the first points the way the arm has already come from home: the arm's position in the image
predicts the next action exactly, with no look at the part. A policy that learned that shortcut keeps
going in whatever direction its first step took, and leaves the workspace through an edge; one that
learned the task heads for the part from wherever the arm is.

This probe puts the arm at a random place above the part area (held-out layouts), asks the policy and
the expert for the next step, and reports the mean cosine (xy and xyz) of the policy's step with:

- the expert's step (toward the target): what the task needs;
- the direction from home to the arm: what the shortcut says.

The same two numbers for the expert itself are the reference: its step has no reason to follow the
home-to-arm direction at a random place, so a policy that does has learned the shortcut.

A third line is the other cheap answer: head for the middle of the part area, wherever the part is.
A policy that scores as well toward the middle as toward the expert's step has not found the part.

Last, the direct test (move_to_part): the named part trades places with another part (on a layout
with one part, ``--parts 1``: it moves to a random place in the part area at least 8 cm away), the
arm stays where it is, and both are asked again. The expert's step turns toward the named part's new
place; the cosine between how the policy's step changed and how the expert's changed, and the size of
each change, say whether the policy followed the part.
"""

from __future__ import annotations

import argparse

import numpy as np


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/sim_policy")
    parser.add_argument("--task", default="move_to_part", choices=["move_to_part", "move_to"])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--places", type=int, default=4, help="random arm places per layout")
    parser.add_argument("--seed-start", type=int, default=100000, help="held-out: demos use < 100000")
    parser.add_argument("--parts", type=int, default=None, help="parts per layout (default 2-3)")
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from vla_ros.eval.closed_loop import expert_and_policy
    from vla_ros.sim.layout import PART_AREA_MAX_M, PART_AREA_MIN_M

    torch.set_num_threads(args.num_threads)
    cell, expert, policy = expert_and_policy(args.model, args.parts)
    home = np.asarray(cell.config.home_ee_position_m)
    rng = np.random.default_rng(0)
    middle_xy = (np.asarray(PART_AREA_MIN_M) + np.asarray(PART_AREA_MAX_M)) / 2.0
    rows: dict[str, list[float]] = {
        k: [] for k in ("p_exp", "p_home", "e_home", "p_exp3", "p_home3", "e_home3", "p_mid", "e_mid")
    }
    swap_cos: list[float] = []
    swap_size: list[tuple[float, float]] = []
    for seed in range(args.seed_start, args.seed_start + args.seeds):
        instruction = cell.reset(seed, args.task)
        for _ in range(args.places):
            xy = rng.uniform(np.asarray(PART_AREA_MIN_M) - 0.05, np.asarray(PART_AREA_MAX_M) + 0.05)
            cell.place_ee(np.array([xy[0], xy[1], rng.uniform(0.12, 0.28)]))
            ee = cell.ee_pose()[0]
            image = cell.render()
            expert.reset()
            e = expert.predict_action(image, instruction).vector[:3]
            p = policy.predict_action(image, instruction).vector[:3]
            away = ee - home
            rows["p_exp"].append(_cosine(p[:2], e[:2]))
            rows["p_home"].append(_cosine(p[:2], away[:2]))
            rows["e_home"].append(_cosine(e[:2], away[:2]))
            rows["p_exp3"].append(_cosine(p, e))
            rows["p_home3"].append(_cosine(p, away))
            rows["e_home3"].append(_cosine(e, away))
            rows["p_mid"].append(_cosine(p[:2], middle_xy - ee[:2]))
            rows["e_mid"].append(_cosine(e[:2], middle_xy - ee[:2]))
            others = [q for q in cell.layout.parts if q.id != cell.task.part_id]
            if args.task == "move_to_part":
                named = cell.task.part_id
                at_named = cell.part_position(named)
                if others:
                    other = others[0].id
                    at_other = cell.part_position(other)
                    cell.place_part(named, np.array([*at_other[:2], at_named[2]]))
                    cell.place_part(other, np.array([*at_named[:2], at_other[2]]))
                else:
                    while True:
                        moved = rng.uniform(PART_AREA_MIN_M, PART_AREA_MAX_M)
                        if np.linalg.norm(moved - at_named[:2]) >= 0.08:
                            break
                    cell.place_part(named, np.array([*moved, at_named[2]]))
                swapped = cell.render()
                expert.reset()
                e2 = expert.predict_action(swapped, instruction).vector[:2]
                p2 = policy.predict_action(swapped, instruction).vector[:2]
                cell.place_part(named, at_named)
                if others:
                    cell.place_part(other, at_other)
                swap_cos.append(_cosine(p2 - p[:2], e2 - e[:2]))
                swap_size.append((float(np.linalg.norm(p2 - p[:2])), float(np.linalg.norm(e2 - e[:2]))))
    cell.close()
    m = {k: float(np.mean(v)) for k, v in rows.items()}
    n = len(rows["p_exp"])
    print(f"model {args.model}, task {args.task}, {n} random arm places on layouts {args.seed_start}..")
    print(f"{'mean cosine':<34} {'xy':>6} {'xyz':>6}")
    print(f"{'policy step vs expert step':<34} {m['p_exp']:>6.2f} {m['p_exp3']:>6.2f}")
    print(f"{'policy step vs home->arm':<34} {m['p_home']:>6.2f} {m['p_home3']:>6.2f}")
    print(f"{'expert step vs home->arm (ref.)':<34} {m['e_home']:>6.2f} {m['e_home3']:>6.2f}")
    print(f"{'policy step vs arm->middle':<34} {m['p_mid']:>6.2f} {'':>6}")
    print(f"{'expert step vs arm->middle (ref.)':<34} {m['e_mid']:>6.2f} {'':>6}")
    if swap_cos:
        policy_mm, expert_mm = (1000 * np.mean([size[i] for size in swap_size]) for i in range(2))
        print(
            f"named part {'swapped with another' if args.parts != 1 else 'moved'} ({len(swap_cos)} places): "
            "change of the policy's xy step vs "
            f"the expert's, mean cosine {np.mean(swap_cos):.2f}; mean size {policy_mm:.1f} mm "
            f"(expert {expert_mm:.1f} mm)"
        )


if __name__ == "__main__":
    main()
