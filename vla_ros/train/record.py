"""Expert demonstrations in the embedded workcell, recorded as rosbag2 like a real cell's teleop data.

One bag per episode (``{task}_seed{seed:06d}``), holding what a user would record on a real arm: the
camera (``sensor_msgs/Image``), the instruction (``vla_ros/Instruction``), the action taken
(``vla_ros/ActionStep``, stamped with the frame it was computed from), the end-effector pose
(``geometry_msgs/PoseStamped``), the gripper command and the scene, and which pixels of each frame
show the part or location the step heads for (:data:`TARGET_MASK_TOPIC`; only simulation knows
that). Training then reads these bags through :mod:`vla_ros.data.dataset` exactly as it would read
bags recorded on hardware.

Each bag is written under a temporary name and renamed when complete, so an interrupted recording
leaves only whole bags; running the same command again skips the bags that exist.

DAgger (``learner``): a trained policy drives the arm (the expert takes over a step with probability
``beta``) and every step is labelled with what the expert would have done there. A policy trained
on expert trajectories only has never seen the states its own small errors lead to; these bags show
it how to recover from them. They are kept whether or not the episode succeeded: the labels are
right either way.

Random starts (``random_start``): the expert moves in straight lines from home, so along a
home-started demonstration the arm's own position says which way the next step goes (away from
home), without a look at the target. A policy trained on those alone learns that shortcut: it keeps
going in the direction of its first step and leaves the workspace through an edge
(``benchmarks/probe_shortcut.py`` measures it). Starting each demonstration from a random place
above the table breaks that link; the only thing that then tells the way is the target.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_ros.action import Action, Policy, camera_views, predict
from vla_ros.data.bag import BagWriter
from vla_ros.data.dataset import DEFAULT_TARGET_MASK_TOPIC
from vla_ros.sim import MAX_EPISODE_STEPS, TASK_NAMES, ScriptedExpert, Workcell, run_episode, workcell_config
from vla_ros.sim.layout import PART_AREA_MAX_M, PART_AREA_MIN_M

CAMERA_TOPIC = "/camera/image_raw"
# The gripper-mounted camera (``--wrist-camera``), stamped like the scene frame it was taken with;
# the same name the sim node publishes it under.
WRIST_CAMERA_TOPIC = "/camera/wrist/image_raw"
INSTRUCTION_TOPIC = "/vla/instruction"
ACTION_STEP_TOPIC = "/vla/action_step"
EE_POSE_TOPIC = "/ee_pose"
GRIPPER_TOPIC = "/vla/gripper_cmd"
SCENE_TOPIC = "/vla/scene"
# Which pixels of each frame show the thing the current step heads for (see target_of): a PNG
# (sensor_msgs/CompressedImage), 255 on its visible pixels, stamped like the frame.
TARGET_MASK_TOPIC = DEFAULT_TARGET_MASK_TOPIC
# Bag time starts here (1 s) plus the workcell's sim time, so stamps are positive and monotonic.
_EPOCH_NS = 1_000_000_000
# Random starts: the part area widened by this much on each side, at these heights (grasp point).
RANDOM_START_MARGIN_M = 0.08
RANDOM_START_HEIGHT_M = (0.08, 0.30)


@dataclass
class RecordingSummary:
    """What one recording run produced."""

    written: list[Path] = field(default_factory=list)
    skipped_existing: list[Path] = field(default_factory=list)
    # Expert episodes that did not succeed within max_steps (not written unless keep_failures).
    failed_seeds: dict[str, list[int]] = field(default_factory=dict)
    steps_written: int = 0
    failures_kept: bool = False
    # Episodes whose task held before the first step (a random start above the part): no bag.
    done_at_start: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        failed = sum(len(v) for v in self.failed_seeds.values())
        kept = "kept" if self.failures_kept else "not kept"
        lines = [
            f"{len(self.written)} bag(s) written ({self.steps_written} steps), "
            f"{len(self.skipped_existing)} already there, {failed} failed episode(s) {kept}"
        ]
        if self.done_at_start:
            lines.append(f"  {len(self.done_at_start)} episode(s) done before the first step, not written")
        lines.extend(f"  {task}: failed seeds {seeds}" for task, seeds in self.failed_seeds.items() if seeds)
        return "\n".join(lines)


def bag_name(task: str, seed: int) -> str:
    return f"{task}_seed{seed:06d}"


def random_start_position(seed: int) -> np.ndarray:
    """Where the arm starts a random-start episode of layout ``seed`` (the same place every time).

    Drawn from its own generator, so the layout and task of ``seed`` stay those of a home start."""
    rng = np.random.default_rng([seed, 11])
    low = np.asarray(PART_AREA_MIN_M) - RANDOM_START_MARGIN_M
    high = np.asarray(PART_AREA_MAX_M) + RANDOM_START_MARGIN_M
    return np.array([*rng.uniform(low, high), rng.uniform(*RANDOM_START_HEIGHT_M)])


def target_of(cell: Workcell) -> str | None:
    """The part or location the current step heads for: the named part until the gripper holds it,
    then the named location (the location alone for move_to); None for a task that names neither."""
    task = cell.task
    if task.part_id and cell.holding() != task.part_id:
        return task.part_id
    return task.location_id or (task.part_id or None)


class DAggerPolicy:
    """Executes the learner's action (the expert's with probability ``beta``); the expert's action is
    the label, in ``extras["label"]``.

    It looks at as many camera views as the learner (``num_images``), so a two-view learner gets the
    wrist frame it was trained with; the expert needs none.
    """

    name = "dagger"

    def __init__(
        self, expert: ScriptedExpert, learner: Policy, beta: float, rng: np.random.Generator
    ) -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta is a probability, got {beta}")
        self.expert, self.learner, self.beta, self.rng = expert, learner, beta, rng
        self.num_images = camera_views(learner)

    def predict_action(
        self, image: np.ndarray, instruction: str, extra_images: Sequence[np.ndarray] = ()
    ) -> Action:
        label = self.expert.predict_action(image, instruction)
        by_expert = bool(self.rng.random() < self.beta)
        if by_expert:
            executed = label.vector
        else:
            executed = predict(self.learner, image, instruction, extra_images).vector
        if not np.all(np.isfinite(executed)):
            executed, by_expert = label.vector, True
        return Action(
            vector=np.asarray(executed, dtype=np.float64),
            extras={**label.extras, "label": label.vector, "executed_by_expert": by_expert},
        )


def record_episode(
    workcell: Workcell,
    bag_path: str | Path,
    seed: int,
    task: str,
    max_steps: int = MAX_EPISODE_STEPS,
    storage: str = "mcap",
    keep_failures: bool = False,
    learner: Policy | None = None,
    beta: float = 0.0,
    random_start: bool = False,
) -> tuple[bool, int]:
    """Run the scripted expert (or, with ``learner``, DAgger) on ``seed``/``task`` and write the
    episode to ``bag_path``.

    Returns (succeeded, steps). A failed expert episode is not written unless ``keep_failures``; a
    DAgger episode always is, and an episode with no step (one done at the start) never is.
    The bag appears at ``bag_path`` only once it is complete.
    ``random_start`` starts the arm at :func:`random_start_position` instead of home.
    """
    bag_path = Path(bag_path)
    expert = ScriptedExpert(workcell)
    policy: Policy = expert
    if learner is not None:
        policy = DAggerPolicy(expert, learner, beta, np.random.default_rng([seed, 7]))
    steps: list[tuple[int, np.ndarray, Action, np.ndarray, np.ndarray, dict, np.ndarray | None]] = []
    wrist_images: list[np.ndarray] = []
    with_wrist = "wrist" in workcell.camera_names

    def target_mask(cell: Workcell) -> np.ndarray | None:
        target = target_of(cell)
        return None if target is None else cell.render_object_mask(target)

    def on_step(step: int, image: np.ndarray, action: Action, cell: Workcell) -> None:
        position, quat = cell.ee_pose()
        stamp = _EPOCH_NS + round(cell.sim_time_s * 1e9)
        label = Action(vector=action.extras.get("label", action.vector))
        scene = cell.scene() if step == 0 else {}
        steps.append((stamp, image, label, position, quat, scene, target_mask(cell)))
        if with_wrist:
            wrist_images.append(cell.render("wrist"))

    start = random_start_position(seed) if random_start else None
    result = run_episode(
        workcell, policy, seed, task, max_steps=max_steps, render=True, on_step=on_step, start_ee_m=start
    )
    if not result.success and not keep_failures and learner is None:
        return False, result.steps
    if not steps:  # e.g. done before the first step (a random start above the part): nothing to learn
        return result.success, 0
    final_position, final_quat = workcell.ee_pose()
    final_stamp = _EPOCH_NS + round(workcell.sim_time_s * 1e9)

    tmp = bag_path.with_name(f".{bag_path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    task_spec = workcell.task
    with BagWriter(tmp, storage=storage) as bag:
        first_stamp = steps[0][0] if steps else final_stamp
        bag.write_instruction(
            INSTRUCTION_TOPIC,
            first_stamp - 1_000_000,
            result.instruction,
            action=task,
            object_id=task_spec.part_id,
            target_id=task_spec.location_id,
            direction=task_spec.direction,
        )
        for k, (stamp, image, action, position, quat, scene, mask) in enumerate(steps):
            if scene:
                bag.write_scene(
                    SCENE_TOPIC,
                    stamp,
                    scene["objects"],
                    scene["locations"],
                    holding=scene.get("holding") or "",
                )
            if mask is not None:
                rgb = np.repeat(mask[..., None].astype(np.uint8) * np.uint8(255), 3, axis=2)
                bag.write_compressed_image(TARGET_MASK_TOPIC, stamp, rgb, frame_id="camera")
            bag.write_image(CAMERA_TOPIC, stamp, image)
            if with_wrist:
                bag.write_image(WRIST_CAMERA_TOPIC, stamp, wrist_images[k], frame_id="wrist_camera")
            bag.write_pose(EE_POSE_TOPIC, stamp, position, quat)
            bag.write_gripper(GRIPPER_TOPIC, stamp + 500_000, action.gripper)
            bag.write_action_step(
                ACTION_STEP_TOPIC,
                stamp + 1_000_000,
                action.vector,
                image_stamp_ns=stamp,
                instruction=result.instruction,
                model_id=expert.name,
                step=k,
            )
        # The pose after the last action, so an ee_pose-sourced dataset recovers the last delta too.
        bag.write_pose(EE_POSE_TOPIC, final_stamp, final_position, final_quat)
    os.replace(tmp, bag_path)
    return result.success, result.steps


def record_demonstrations(
    out_dir: str | Path,
    tasks: Sequence[str] = ("pick_place",),
    episodes: int = 10,
    seed_start: int = 0,
    image_size_px: int = 224,
    max_steps: int = MAX_EPISODE_STEPS,
    storage: str = "mcap",
    keep_failures: bool = False,
    progress: bool = True,
    learner_factory: Callable[[Workcell], Policy] | None = None,
    beta: float = 0.0,
    random_start: bool = False,
    num_parts: tuple[int, int] | None = None,
    wrist_camera: bool = False,
) -> RecordingSummary:
    """Record ``episodes`` expert episodes per task on seeds ``seed_start .. seed_start+episodes-1``
    (DAgger episodes with ``learner_factory``, see the module docstring).

    Evaluate on other seeds (see :mod:`vla_ros.eval.closed_loop`): a seed is a layout.
    ``num_parts`` (inclusive range) changes how many parts a layout holds (default: the workcell's
    2-3); one part is a curriculum step, where finding the part needs no name.
    ``wrist_camera`` also records the gripper-mounted camera (:data:`WRIST_CAMERA_TOPIC`), for
    policies trained on two views (``vla-ros train --wrist-camera-topic``).
    """
    for task in tasks:
        if task not in TASK_NAMES:
            raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASK_NAMES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = RecordingSummary(failures_kept=keep_failures or learner_factory is not None)
    jobs = [(task, seed) for task in tasks for seed in range(seed_start, seed_start + episodes)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="recording demos", unit="episode")
    with Workcell(workcell_config(image_size_px, num_parts, wrist_camera)) as cell:
        learner = learner_factory(cell) if learner_factory is not None else None
        if learner is not None and camera_views(learner) > 1 and not wrist_camera:
            raise ValueError(
                f"the DAgger learner looks at {camera_views(learner)} camera views; record with the "
                "wrist camera (--wrist-camera) so it sees what it was trained on"
            )
        for task, seed in jobs:
            summary.failed_seeds.setdefault(task, [])
            path = out_dir / bag_name(task, seed)
            if path.exists():
                summary.skipped_existing.append(path)
            else:
                ok, steps = record_episode(
                    cell,
                    path,
                    seed,
                    task,
                    max_steps,
                    storage,
                    keep_failures,
                    learner=learner,
                    beta=beta,
                    random_start=random_start,
                )
                if not ok:
                    summary.failed_seeds[task].append(seed)
                if ok and steps == 0:
                    summary.done_at_start.append(path)
                elif steps and (ok or keep_failures or learner is not None):
                    summary.written.append(path)
                    summary.steps_written += steps
            if bar is not None:
                bar.update(1)
                bar.set_postfix(written=len(summary.written), steps=summary.steps_written)
    if bar is not None:
        bar.close()
    return summary
