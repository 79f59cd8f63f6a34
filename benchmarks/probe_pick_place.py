"""Where a trained policy goes wrong on pick_place: teacher-forced on the expert's own trajectories.

Usage (from the repository root, after `make build`; about 1.5 min on one core):

    bash scripts/with_env.sh python benchmarks/probe_pick_place.py --model models/sim_policy --seeds 30

Closed-loop success alone says 0% without saying which skill is missing. Here the scripted expert
drives the arm on held-out layouts and the policy is only asked what it would do in each state, so
its answers are compared on the states it should know:

- gripper: how often it says "closed" while the expert approaches (open) and carries (closed);
- grounding: on the steps where the expert crosses at hover height toward the named part, the
  correlation of the policy's (dx, dy) with the expert's, and the mean cosine between the two
  directions. The same cosine toward the best-aligned *other* part is the baseline: a policy that
  heads for some part, not the named one, scores as well on both;
- words: on the same steps, the instruction is changed to name another part on the table (same
  image, same place to put it). A policy that reads the part's name turns toward the newly named
  part; one that ignores it keeps heading where it did.

``--parts 1`` puts a single part on every layout. No name is needed to find it, so the grounding
cosine then says whether the policy can see where a part is at all; the baseline and words lines are
skipped (there is no other part).
"""

from __future__ import annotations

import argparse

import numpy as np


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    # Not vla_ros.eval.metrics.direction_cosines: that one drops steps where either delta is short,
    # and a policy that does not move sideways must count here as not heading for the part.
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/sim_policy")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--seed-start", type=int, default=100000, help="held-out: demos use < 100000")
    parser.add_argument("--num-threads", type=int, default=1)
    parser.add_argument("--parts", type=int, default=None, help="parts per layout (default 2-3)")
    args = parser.parse_args()

    import torch

    from vla_ros.sim import MAX_EPISODE_STEPS
    from vla_ros.sim.tasks import instruction_text
    from vla_ros.train.evaluate_closed_loop import expert_and_policy

    torch.set_num_threads(args.num_threads)
    cell, expert, policy = expert_and_policy(args.model, args.parts)
    said_closed: dict[str, list[bool]] = {"approach": [], "carry": []}
    expert_xy, policy_xy, other_cos = [], [], []
    # Instruction naming another part: cosine of the new answer toward that part, toward the original
    # part, and how far the answer moved.
    swap_to_new, swap_to_old, swap_shift = [], [], []
    for seed in range(args.seed_start, args.seed_start + args.seeds):
        instruction = cell.reset(seed, "pick_place")
        for _ in range(MAX_EPISODE_STEPS):
            image = cell.render()
            action = expert.predict_action(image, instruction).vector
            if expert.phase in said_closed:
                guess = policy.predict_action(image, instruction).vector
                said_closed[expert.phase].append(bool(guess[6] < 0.5))
                crossing = abs(action[2]) < 0.01 and np.linalg.norm(action[:2]) > 0.01
                if expert.phase == "approach" and crossing:
                    expert_xy.append(action[:2])
                    policy_xy.append(guess[:2])
                    ee = cell.ee_pose()[0][:2]
                    other_parts = [p for p in cell.layout.parts if p.id != cell.task.part_id]
                    if other_parts:
                        other_cos.append(
                            max(_cosine(cell.part_position(o.id)[:2] - ee, guess[:2]) for o in other_parts)
                        )
                        other = other_parts[0]
                        location = cell.layout.location(cell.task.location_id)
                        swapped = instruction_text(
                            "pick_place", other.name, location.name, location.preposition
                        )
                        answer = policy.predict_action(image, swapped).vector[:2]
                        swap_to_new.append(_cosine(cell.part_position(other.id)[:2] - ee, answer))
                        swap_to_old.append(_cosine(cell.part_position(cell.task.part_id)[:2] - ee, answer))
                        swap_shift.append(float(np.linalg.norm(answer - guess[:2])))
            cell.apply_action(action)
            if cell.success():
                break
    cell.close()

    print(f"model {args.model}, held-out layouts {args.seed_start}..{args.seed_start + args.seeds - 1}")
    for phase, closed in said_closed.items():
        print(f"gripper: says closed on {np.mean(closed):.2f} of {len(closed)} {phase} steps")
    e, p = np.array(expert_xy), np.array(policy_xy)
    corr = [float(np.corrcoef(e[:, i], p[:, i])[0, 1]) for i in range(2)]
    cos = np.array([_cosine(a, b) for a, b in zip(e, p, strict=True)])
    print(f"grounding: {len(e)} crossing steps, corr dx {corr[0]:.2f} dy {corr[1]:.2f}")
    print(
        f"grounding: mean cosine to the named part {cos.mean():.2f} (above 0.7 on {np.mean(cos > 0.7):.2f})"
    )
    if not other_cos:
        return
    print(f"grounding: mean cosine to the best-aligned other part {np.mean(other_cos):.2f} (baseline)")
    print(
        f"words: naming another part instead, mean cosine to it {np.mean(swap_to_new):.2f}, to the part "
        f"first named {np.mean(swap_to_old):.2f}; (dx, dy) moved {1000 * np.mean(swap_shift):.1f} mm on "
        f"average (the expert's step: {1000 * np.mean(np.linalg.norm(e, axis=1)):.1f} mm)"
    )


if __name__ == "__main__":
    main()
