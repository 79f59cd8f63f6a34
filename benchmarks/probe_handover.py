"""Which stage of pick_place a trained policy loses: the expert drives, then hands the arm over.

Usage (from the repository root, after `make build`; about 1 min per phase for 20 seeds on 2 cores):

    bash scripts/with_env.sh python benchmarks/probe_handover.py --model models/sim_policy --seeds 20
    bash scripts/with_env.sh python benchmarks/probe_handover.py --phases lift carry --decoding median

Closed-loop success says only that an episode failed. Here the scripted expert drives each held-out
layout until it enters a phase (``approach``, ``descend``, ``close``, ``lift``, ``carry``, ``lower``),
and from that step on the policy drives alone. One row per phase: successes, the named part grasped,
lifted 5 cm, and the closest xy approach to it. ``start`` hands over before the first step, so that row
is plain closed loop. Reading down the rows shows the first stage the policy cannot finish from a
state the expert put it in; the expert alone (last row) is the upper bound on the same layouts.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

PHASES = ("start", "approach", "descend", "close", "lift", "carry", "lower")


class HandOver:
    """The expert's actions until it first reports ``phase``, the policy's from then on."""

    name = "hand_over"

    def __init__(self, expert, policy, phase: str) -> None:
        self.expert, self.policy, self.phase = expert, policy, phase
        self.handed_at: int | None = None
        self._steps = 0

    def predict_action(self, image: np.ndarray, instruction: str):
        self._steps += 1
        if self.handed_at is None and self.phase != "start":
            action = self.expert.predict_action(image, instruction)
            if self.expert.phase != self.phase:
                return action
        if self.handed_at is None:
            self.handed_at = self._steps
        return self.policy.predict_action(image, instruction)


def main() -> None:
    from vla_ros.model.modeling_openvla import DECODINGS
    from vla_ros.train.cli import add_expert_arguments, expert_config_from_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/sim_policy")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--seed-start", type=int, default=100000, help="held-out: demos use < 100000")
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES)
    parser.add_argument("--decoding", default="argmax", choices=DECODINGS)
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--num-threads", type=int, default=2)
    add_expert_arguments(parser)  # as the policy's demonstrations were recorded
    args = parser.parse_args()

    import torch

    from vla_ros.sim import run_episode
    from vla_ros.train.evaluate_closed_loop import EpisodeProgress, expert_and_policy

    torch.set_num_threads(args.num_threads)
    expert_config = expert_config_from_args(args, "probe_handover")
    cell, expert, policy = expert_and_policy(args.model, decoding=args.decoding, expert_config=expert_config)
    seeds = range(args.seed_start, args.seed_start + args.seeds)
    n = len(seeds)
    print(f"{args.model} on pick_place, seeds {seeds.start}..{seeds.stop - 1}, {args.decoding} decoding")
    print(
        f"{'hand over at':<14}{'handed':>8}{'success':>9}{'grasped':>9}{'lifted':>8}{'closest':>10}{'s':>7}"
    )
    try:
        rows = [(phase, True) for phase in args.phases] + [("expert only", False)]
        for phase, hand_over in rows:
            started = time.perf_counter()
            handed = success = grasped = lifted = 0
            closest = []
            for seed in seeds:
                driver = HandOver(expert, policy, phase) if hand_over else expert
                seen = EpisodeProgress()
                result = run_episode(cell, driver, seed, "pick_place", args.max_steps, on_step=seen.on_step)
                seen.observe(cell)
                handed += hand_over and driver.handed_at is not None
                success += result.success
                grasped += seen.grasped
                lifted += seen.lifted
                closest.append(seen.closest_xy_m)
            handed_text = f"{handed}/{n}" if hand_over else "-"
            print(
                f"{phase:<14}{handed_text:>8}{success:>6}/{n:<2}{grasped:>6}/{n:<2}{lifted:>5}/{n:<2}"
                f"{100 * float(np.median(closest)):>7.1f} cm{time.perf_counter() - started:>6.0f}"
            )
    finally:
        cell.close()
    print("handed: episodes the expert reached the phase in (the others are the expert's alone to the end)")


if __name__ == "__main__":
    main()
