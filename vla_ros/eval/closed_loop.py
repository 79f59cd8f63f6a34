"""Closed-loop success of a policy in the embedded workcell, on layouts it was not trained on.

A seed is a layout (parts, regions, task arguments): demonstrations are recorded on seeds
``seed_start .. seed_start+N-1`` (``vla-ros record-demos``), so evaluation uses seeds outside that
range. Each episode resets the workcell and steps the policy on rendered frames until the task's
success check holds or ``max_steps`` pass, exactly like :func:`vla_ros.sim.run_episode`.

Two bounds frame the trained policy's number: the scripted expert (privileged state; what the data
demonstrates) and the untrained model (the same architecture, weights re-drawn at random; what the
architecture does before learning).

Success alone says little about a policy that fails: ``TaskSuccess`` also counts how far episodes
got on tasks that name a part (how close the gripper came to it, whether the named part or another
one was grasped and lifted), the partial-success measures a pick-and-place evaluation reports.
"""

from __future__ import annotations

import statistics as stats_lib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from vla_ros.action import Action, Policy
from vla_ros.model.options import DEFAULT_PRECISION
from vla_ros.sim import MAX_EPISODE_STEPS, ScriptedExpert, Workcell, run_episode, workcell_config


@dataclass
class TaskSuccess:
    """Success of one policy on one task over ``episodes`` held-out seeds."""

    policy: str
    task: str
    episodes: int
    successes: int
    mean_steps: float
    failed_seeds: list[int] = field(default_factory=list)
    # Tasks that name a part (None otherwise): episodes in which the named part was held by the
    # gripper at some step, held at least LIFTED_M above the table, and episodes in which some other
    # part was held; the median over episodes of the closest the grasp point came to the named part
    # in the table plane.
    grasped: int | None = None
    lifted: int | None = None
    wrong_part_grasped: int | None = None
    median_closest_xy_cm: float | None = None
    # How far each episode got, in seed order (see EpisodeOutcome).
    outcomes: list[EpisodeOutcome] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "success_rate": self.success_rate}

    def progress_line(self) -> str:
        """How far the episodes got, for tasks that name a part ("" otherwise)."""
        if self.grasped is None:
            return ""
        return (
            f"{self.policy} {self.task}: named part grasped {self.grasped}/{self.episodes}, "
            f"lifted {self.lifted}/{self.episodes}; another part grasped {self.wrong_part_grasped}/"
            f"{self.episodes}; closest to the named part (xy, median) {self.median_closest_xy_cm:.1f} cm"
        )


# A held part counts as lifted this far above where it rests.
LIFTED_M = 0.05
# The gripper counts as having reached the named part when its grasp point came this close to it in
# the table plane: a grasp aimed within 2 cm of the part succeeds 95% of the time
# (benchmarks/probe_grasp_tolerance.py).
REACHED_XY_M = 0.02


@dataclass
class EpisodeOutcome:
    """One episode of :func:`evaluate_in_workcell`: whether it succeeded, in how many steps, and for
    tasks that name a part the stages it reached on the way (reached the part, grasped it, lifted
    it; placed is success for pick_place), with the closest the grasp point came to the part."""

    seed: int
    success: bool
    steps: int
    reached: bool | None = None
    grasped: bool | None = None
    lifted: bool | None = None
    wrong_part_grasped: bool | None = None
    closest_xy_cm: float | None = None

    def line(self) -> str:
        text = f"seed {self.seed}: {'success' if self.success else 'failure'} in {self.steps} steps"
        if self.reached is None:
            return text
        stages = [("reached part", self.reached), ("grasped", self.grasped), ("lifted", self.lifted)]
        got = [name for name, done in stages if done]
        extra = "; another part grasped" if self.wrong_part_grasped else ""
        return (
            f"{text}; {', '.join(got) if got else 'did not reach the part'} "
            f"(closest {self.closest_xy_cm:.1f} cm){extra}"
        )


@dataclass
class EpisodeProgress:
    """What one episode reached on the way to its task's goal (see :class:`TaskSuccess`)."""

    closest_xy_m: float = float("inf")
    grasped: bool = False
    lifted: bool = False
    wrong_part_grasped: bool = False
    names_part: bool = False  # the episode's task names a part (else nothing is measured)

    def on_step(self, _step: int, _image: np.ndarray, _action: Action, cell: Workcell) -> None:
        """``run_episode``'s ``on_step`` callback."""
        self.observe(cell)

    def observe(self, cell: Workcell) -> None:
        part_id = cell.task.part_id
        if not part_id:
            return
        self.names_part = True
        ee, _ = cell.ee_pose()
        part = cell.part_position(part_id)
        self.closest_xy_m = min(self.closest_xy_m, float(np.linalg.norm(ee[:2] - part[:2])))
        held = cell.holding()
        if held == part_id:
            self.grasped = True
            rest_z = cell.layout.part(part_id).height_m / 2.0
            self.lifted |= bool(part[2] - rest_z >= LIFTED_M)
        elif held is not None:
            self.wrong_part_grasped = True


def _outcome(result, seen: EpisodeProgress) -> EpisodeOutcome:
    outcome = EpisodeOutcome(seed=result.seed, success=result.success, steps=result.steps)
    if seen.names_part:
        outcome.reached = seen.closest_xy_m <= REACHED_XY_M
        outcome.grasped, outcome.lifted = seen.grasped, seen.lifted
        outcome.wrong_part_grasped = seen.wrong_part_grasped
        outcome.closest_xy_cm = 100.0 * seen.closest_xy_m
    return outcome


def format_breakdown(results: Sequence[TaskSuccess]) -> str:
    """One line per episode: how far it got (``vla-ros sim-eval --breakdown``)."""
    lines = []
    for r in results:
        lines.append(f"{r.policy} {r.task}:")
        lines.extend(f"  {o.line()}" for o in r.outcomes)
    return "\n".join(lines)


PolicyFactory = Callable[[Workcell], Policy]


def evaluate_in_workcell(
    make_policy: PolicyFactory,
    policy_name: str,
    tasks: Sequence[str],
    episodes: int,
    seed_start: int,
    image_size_px: int = 224,
    max_steps: int = MAX_EPISODE_STEPS,
    render: bool = True,
    progress: bool = True,
    num_parts: tuple[int, int] | None = None,
) -> list[TaskSuccess]:
    """Run ``episodes`` episodes per task on seeds ``seed_start ..`` and count successes.

    ``num_parts``: parts per layout, as recorded (see :func:`vla_ros.train.record.record_demonstrations`).
    """
    results = []
    # The wrist camera is rendered only for policies that look through it (two-view checkpoints).
    with Workcell(workcell_config(image_size_px, num_parts, wrist_camera=True)) as cell:
        policy = make_policy(cell)
        for task in tasks:
            seeds = range(seed_start, seed_start + episodes)
            iterator = seeds
            if progress:
                from tqdm import tqdm

                iterator = tqdm(seeds, desc=f"{policy_name} {task}", unit="episode", leave=False)
            outcomes, progress_of = [], []
            for seed in iterator:
                seen = EpisodeProgress()
                outcomes.append(
                    run_episode(cell, policy, seed, task, max_steps, render=render, on_step=seen.on_step)
                )
                seen.observe(cell)  # the state the last action left
                progress_of.append(seen)
            result = TaskSuccess(
                policy=policy_name,
                task=task,
                episodes=len(outcomes),
                successes=sum(o.success for o in outcomes),
                mean_steps=stats_lib.mean(o.steps for o in outcomes) if outcomes else 0.0,
                failed_seeds=[o.seed for o in outcomes if not o.success],
                outcomes=[_outcome(o, p) for o, p in zip(outcomes, progress_of, strict=True)],
            )
            if progress_of and all(p.names_part for p in progress_of):
                result.grasped = sum(p.grasped for p in progress_of)
                result.lifted = sum(p.lifted for p in progress_of)
                result.wrong_part_grasped = sum(p.wrong_part_grasped for p in progress_of)
                result.median_closest_xy_cm = 100.0 * float(np.median([p.closest_xy_m for p in progress_of]))
            results.append(result)
    return results


def vla_policy_factory(
    model_dir: str | Path,
    adapter_dir: str | Path | None = None,
    precision: str = DEFAULT_PRECISION,
    unnorm_key: str | None = None,
    untrained: bool = False,
    seed: int = 0,
    center_crop: bool | None = None,
) -> PolicyFactory:
    """A trained checkpoint as a workcell policy: frames cropped as its config.json records (or as
    ``center_crop`` says) and decoding restricted to action tokens. ``untrained`` keeps the
    architecture, tokenizer and statistics but re-draws every weight at random (the lower bound)."""
    from vla_ros.model.loading import load_checkpoint
    from vla_ros.model.modeling_openvla import OpenVLAForActionPrediction
    from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

    config = PolicyConfig(
        checkpoint_dir=model_dir,
        precision=precision,
        adapter_dir=None if untrained else adapter_dir,
        unnorm_key=unnorm_key,
        center_crop=center_crop,
        constrain_to_action_tokens=True,
    )

    def make(_: Workcell) -> Policy:
        if not untrained:
            return VLAPolicy(config)
        loaded = load_checkpoint(model_dir, precision=precision)
        torch.manual_seed(seed)
        dtype = loaded.model.dtype
        loaded.model = OpenVLAForActionPrediction(loaded.config).to(dtype).eval()
        return VLAPolicy(config, loaded=loaded)

    return make


def expert_factory(cell: Workcell) -> Policy:
    return ScriptedExpert(cell)


def format_table(results: Sequence[TaskSuccess]) -> str:
    """Markdown table: one row per task, one column per policy."""
    tasks = list(dict.fromkeys(r.task for r in results))
    policies = list(dict.fromkeys(r.policy for r in results))
    by = {(r.policy, r.task): r for r in results}
    lines = ["| task | " + " | ".join(policies) + " |", "|---|" + "---|" * len(policies)]
    for task in tasks:
        cells = []
        for p in policies:
            r = by.get((p, task))
            cells.append(f"{r.success_rate:.0%} ({r.successes}/{r.episodes})" if r else "-")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    progress = [r.progress_line() for r in results if r.progress_line()]
    return "\n".join(lines + (["", *progress] if progress else []))


def expert_and_policy(
    model_dir: str | Path,
    num_parts: int | None = None,
    image_size_px: int = 224,
) -> tuple[Workcell, ScriptedExpert, Policy]:
    """A workcell (``num_parts`` parts per layout; default 2-3), its scripted expert, and a
    checkpoint as a policy in it: for probes that ask both for the next step on the same frame. Close
    the workcell when done."""
    parts = None if num_parts is None else (num_parts, num_parts)
    cell = Workcell(workcell_config(image_size_px, parts, wrist_camera=True))
    expert = ScriptedExpert(cell)
    return cell, expert, vla_policy_factory(model_dir)(cell)
