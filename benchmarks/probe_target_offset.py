"""Where does a policy think the named part is? Its training-only target offset head, read in the workcell.

Usage (from the repository root, after `make build`; about 3 min on two cores):

    bash scripts/with_env.sh python benchmarks/probe_target_offset.py --run runs/H

``--run`` is a training run directory of ``vla-ros train --target-offset-weight`` (its checkpoint in
``<run>/checkpoint`` unless ``--model`` names it, the head's weights in ``<run>/training_state/``).

The head reads the language model's last hidden state where the first action token is predicted and
answers with the offset from the end effector to the part the step heads for. Its held-out error in
training says how well it does on the expert's states; this probe asks the same on the states the
policy itself reaches, where it fails:

- first frame of held-out pick_place layouts (arm at home): the error of the reading in the table
  plane, next to chance (always answering the mean offset of these layouts), and on how many layouts
  the reading lies nearer another part than the named one (the wrong part was found);
- closed loop (the policy drives, argmax): the mean error per axis on every step before the named
  part is held, and at each step where the policy closes the gripper before holding the part, how
  far the part really was and how far the head thought it was.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="vla-ros train --out directory")
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default <run>/checkpoint)")
    parser.add_argument("--layouts", type=int, default=30, help="first-frame layouts")
    parser.add_argument("--episodes", type=int, default=10, help="closed-loop episodes")
    parser.add_argument("--seed-start", type=int, default=100000, help="layouts no demonstration used")
    parser.add_argument("--num-threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from vla_ros.sim import Workcell
    from vla_ros.sim.rollout import MAX_EPISODE_STEPS
    from vla_ros.train.bc import TargetOffsetHead
    from vla_ros.train.evaluate_closed_loop import vla_policy_factory
    from vla_ros.train.record import workcell_config

    torch.set_num_threads(args.num_threads)
    model_dir = args.model or args.run / "checkpoint"
    with Workcell(workcell_config(224)) as cell:
        policy = vla_policy_factory(model_dir)(cell)
        core = policy.core_model
        head = TargetOffsetHead(core).load_run(args.run)

        def reading(image: np.ndarray, instruction: str) -> np.ndarray:
            """The head at the last prompt position: what the model thinks before its first token."""
            pixel_values, input_ids = policy.encode_inputs(image, instruction)
            with torch.no_grad():
                core(pixel_values, input_ids)
            return head.readout()[0, -1].numpy().astype(np.float64)

        errors, others, truths = [], [], []
        for seed in range(args.seed_start, args.seed_start + args.layouts):
            instruction = cell.reset(seed, "pick_place")
            ee = cell.ee_pose()[0]
            said = reading(cell.render(), instruction)
            offsets = {p.id: cell.part_position(p.id) - ee for p in cell.layout.parts}
            truth = offsets.pop(cell.task.part_id)
            truths.append(truth[:2])
            errors.append(np.linalg.norm((said - truth)[:2]))
            others.append(min(np.linalg.norm((said - o)[:2]) for o in offsets.values()))
        truths_xy = np.array(truths)
        chance = np.linalg.norm(truths_xy - truths_xy.mean(axis=0), axis=1)
        errors_cm, chance_cm = 100 * np.array(errors), 100 * chance
        wrong = int(np.sum(np.array(others) < np.array(errors)))
        print(f"first frame, {args.layouts} pick_place layouts from {args.seed_start}:")
        print(
            f"  xy error of the reading: median {np.median(errors_cm):.1f} cm, "
            f"mean {errors_cm.mean():.1f} cm (chance: median {np.median(chance_cm):.1f} cm, "
            f"mean {chance_cm.mean():.1f} cm)"
        )
        print(f"  reading nearer another part than the named one: {wrong}/{args.layouts}")

        per_axis, closes = [], []
        for seed in range(args.seed_start, args.seed_start + args.episodes):
            instruction = cell.reset(seed, "pick_place")
            for _ in range(MAX_EPISODE_STEPS):
                if cell.success():
                    break
                image = cell.render()
                said = reading(image, instruction)
                truth = cell.part_position(cell.task.part_id) - cell.ee_pose()[0]
                action = policy.predict_action(image, instruction).vector
                if cell.holding() != cell.task.part_id:
                    per_axis.append(np.abs(said - truth))
                    if action[6] < 0.5:
                        closes.append((np.linalg.norm(truth[:2]), np.linalg.norm(said[:2])))
                cell.apply_action(action)
        mean_mm = 1000 * np.mean(per_axis, axis=0)
        print(
            f"closed loop, {args.episodes} pick_place episodes, {len(per_axis)} steps before the part "
            "is held:"
        )
        print(f"  mean error per axis: x {mean_mm[0]:.0f} mm, y {mean_mm[1]:.0f} mm, z {mean_mm[2]:.0f} mm")
        if closes:
            real, thought = (100 * np.array(c) for c in zip(*closes, strict=True))
            print(
                f"  {len(closes)} closing steps without the part held: the part was a median "
                f"{np.median(real):.1f} cm away in xy, the head said {np.median(thought):.1f} cm"
            )
        head.remove()


if __name__ == "__main__":
    main()
