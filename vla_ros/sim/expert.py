"""Scripted experts: demonstrations in the policy's own action space, from privileged sim state.

The expert reads part and end-effector positions straight from the workcell (it ignores the image)
and emits the same 7-D action a learned policy would: end-effector deltas per control period,
bounded like a human teleoperator's (at most ``max_step_m`` per step, slower near contact), and a
binary gripper command. It never rotates the hand: every part is graspable from straight above.

Each step recomputes its waypoint from the current state, so a nudged part or a failed grasp is
corrected on the next step (the expert re-approaches after a drop). This also means the expert can
label states a learned policy reaches, which DAgger-style data collection needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_ros.action import Action
from vla_ros.sim.tasks import PUSH_DIRECTIONS, PUSH_SUCCESS_DISTANCE_M, PUSH_TRAVEL_M, push_start_xy
from vla_ros.sim.workcell import Workcell

OPEN, CLOSED = 1.0, 0.0


@dataclass
class ExpertConfig:
    max_step_m: float = 0.04
    # Near contact (final descent, pushing) the expert slows down.
    contact_step_m: float = 0.025
    # Open-gripper travel happens low (hover) and closed-gripper travel high (carry), with the
    # arm first dropping straight down from home to the hover height. A policy that sees only
    # the scene camera can then tell "going to grasp" from "carrying" by the arm's height; with
    # carry just above hover (14 vs 12 cm) 81% of the steps at 11-17 cm were "closed" and a
    # trained policy closed its gripper in mid-air on the way to the part.
    hover_height_m: float = 0.12
    carry_height_m: float = 0.25
    move_to_height_m: float = 0.10
    # A waypoint counts as reached within this distance.
    reached_tolerance_m: float = 0.006
    # Control steps with the gripper closed before lifting (fingers need ~0.2 s to close).
    close_steps: int = 3
    open_steps: int = 2
    # End-effector height while pushing (grasp point; the fingertips are ~1.1 cm lower).
    push_height_m: float = 0.016


class ScriptedExpert:
    """A :class:`~vla_ros.action.Policy` that solves the workcell's current task.

    It follows ``workcell.task`` (privileged); the ``instruction`` argument is not parsed, only
    recorded in the action's extras, so pass the instruction ``reset`` returned.
    """

    name = "scripted_expert"

    def __init__(self, workcell: Workcell, config: ExpertConfig | None = None) -> None:
        self.workcell = workcell
        self.config = config or ExpertConfig()
        self._task_key: object = None
        self._phase = "start"
        self._phase_steps = 0

    @property
    def phase(self) -> str:
        return self._phase

    def reset(self) -> None:
        self._task_key = self.workcell.task
        self._phase = "start"
        self._phase_steps = 0

    def predict_action(self, image: np.ndarray, instruction: str) -> Action:
        # Every reset makes a new Task object. (Not episode_steps: under ROS the arm is driven by
        # apply_twist, which does not count steps, so the count stays 0 for the whole episode.)
        if self._task_key is not self.workcell.task:
            self.reset()
        task = self.workcell.task
        if task.name == "pick_place":
            vector = self._pick_place()
        elif task.name == "push":
            vector = self._push()
        else:
            vector = self._move_to()
        self._phase_steps += 1
        return Action(vector=vector, extras={"phase": self._phase, "instruction": instruction})

    # ------------------------------------------------------------------ tasks
    def _pick_place(self) -> np.ndarray:
        cell, cfg = self.workcell, self.config
        task = cell.task
        part = cell.layout.part(task.part_id)
        location = cell.layout.location(task.location_id)
        ee, _ = cell.ee_pose()
        part_pos = cell.part_position(part.id)
        # Fingertips are ~1.1 cm below the grasp point: keep them just off the table.
        grasp_z = max(part.height_m / 2.0, 0.014)

        if self._phase in ("start", "approach"):
            self._set_phase("approach")
            if ee[2] > cfg.hover_height_m + cfg.reached_tolerance_m:
                # Down to the hover height first, then across (see ExpertConfig).
                return self._toward(ee, np.array([ee[0], ee[1], cfg.hover_height_m]), cfg.max_step_m, OPEN)
            target = np.array([part_pos[0], part_pos[1], cfg.hover_height_m])
            if self._reached(ee, target):
                self._set_phase("descend")
            else:
                return self._toward(ee, target, cfg.max_step_m, OPEN)
        if self._phase == "descend":
            target = np.array([part_pos[0], part_pos[1], grasp_z])
            if self._reached(ee, target):
                self._set_phase("close")
            else:
                return self._toward(ee, target, cfg.contact_step_m, OPEN)
        if self._phase == "close":
            held = cell.holding() == part.id
            if self._phase_steps < cfg.close_steps:
                return self._hold(CLOSED)
            if held:
                self._set_phase("lift")
            else:
                self._set_phase("regrasp")
        if self._phase == "regrasp":
            # The grasp missed: open, rise, approach again.
            target = np.array([ee[0], ee[1], cfg.hover_height_m])
            if self._reached(ee, target):
                self._set_phase("approach")
                return self._pick_place()
            return self._toward(ee, target, cfg.max_step_m, OPEN)
        if cell.holding() != part.id and self._phase in ("lift", "carry", "lower"):
            self._set_phase("regrasp")
            return self._pick_place()
        if self._phase == "lift":
            target = np.array([ee[0], ee[1], cfg.carry_height_m])
            if self._reached(ee, target):
                self._set_phase("carry")
            else:
                return self._toward(ee, target, cfg.max_step_m, CLOSED)
        if self._phase == "carry":
            target = np.array([location.xy_m[0], location.xy_m[1], cfg.carry_height_m])
            if self._reached(ee, target):
                self._set_phase("lower")
            else:
                return self._toward(ee, target, cfg.max_step_m, CLOSED)
        if self._phase == "lower":
            # Bring the part's bottom to just above the table, whatever its offset in the hand.
            drop_z = ee[2] - (part_pos[2] - (part.height_m / 2.0 + 0.006))
            target = np.array([location.xy_m[0], location.xy_m[1], drop_z])
            if self._reached(ee, target):
                self._set_phase("release")
            else:
                return self._toward(ee, target, cfg.max_step_m, CLOSED)
        if self._phase == "release":
            if self._phase_steps < cfg.open_steps:
                return self._hold(OPEN)
            self._set_phase("retreat")
        target = np.array([ee[0], ee[1], cfg.carry_height_m])
        return self._toward(ee, target, cfg.max_step_m, OPEN)

    def _push(self) -> np.ndarray:
        cell, cfg = self.workcell, self.config
        task = cell.task
        part = cell.layout.part(task.part_id)
        unit = np.asarray(PUSH_DIRECTIONS[task.direction])
        lateral = np.array([-unit[1], unit[0]])
        ee, _ = cell.ee_pose()
        part_pos = cell.part_position(part.id)
        start = task.start_part_positions_m[part.id][:2]
        pre_push = push_start_xy(cell.layout, part.id, task.direction)
        # The part may have been nudged since the layout was drawn: follow where it is now.
        pre_push = pre_push + (part_pos[:2] - np.asarray(part.xy_m))
        push_z = min(cfg.push_height_m, part.height_m * 0.6 + 0.005)

        if self._phase in ("start", "approach"):
            self._set_phase("approach")
            target = np.array([pre_push[0], pre_push[1], cfg.hover_height_m])
            if self._reached(ee, target, tolerance=0.01):
                self._set_phase("descend")
            else:
                return self._toward(ee, target, cfg.max_step_m, CLOSED)
        if self._phase == "descend":
            target = np.array([pre_push[0], pre_push[1], push_z])
            if self._reached(ee, target):
                self._set_phase("push")
            else:
                return self._toward(ee, target, cfg.max_step_m, CLOSED)
        if self._phase == "push":
            progress = float(np.dot(part_pos[:2] - start, unit))
            if progress < PUSH_SUCCESS_DISTANCE_M + 0.015:
                # Keep the pusher on the line through the part's centre so the part does not slip aside.
                along = float(np.dot(ee[:2], unit)) + cfg.contact_step_m
                across = float(np.dot(part_pos[:2], lateral))
                xy = along * unit + across * lateral
                target = np.array([xy[0], xy[1], push_z])
                limit = PUSH_TRAVEL_M + part.footprint_radius_m + 0.06
                if float(np.dot(ee[:2] - pre_push, unit)) < limit:
                    return self._toward(ee, target, cfg.contact_step_m, CLOSED)
            self._set_phase("retreat")
        target = np.array([ee[0], ee[1], cfg.hover_height_m]) - np.append(unit * 0.02, 0.0)
        return self._toward(ee, target, cfg.max_step_m, CLOSED)

    def _move_to(self) -> np.ndarray:
        cell, cfg = self.workcell, self.config
        task = cell.task
        # move_to_part follows the part where it is now (a brush of the fingers may have moved it).
        xy = (
            cell.part_position(task.part_id)[:2]
            if task.name == "move_to_part"
            else cell.layout.location(task.location_id).xy_m
        )
        ee, _ = cell.ee_pose()
        self._set_phase("move")
        target = np.array([xy[0], xy[1], cfg.move_to_height_m])
        return self._toward(ee, target, cfg.max_step_m, OPEN)

    # ------------------------------------------------------------------ helpers
    def _set_phase(self, phase: str) -> None:
        if phase != self._phase:
            self._phase = phase
            self._phase_steps = 0

    def _reached(self, ee: np.ndarray, target: np.ndarray, tolerance: float | None = None) -> bool:
        return float(np.linalg.norm(target - ee)) <= (tolerance or self.config.reached_tolerance_m)

    def _toward(self, ee: np.ndarray, target: np.ndarray, max_step_m: float, gripper: float) -> np.ndarray:
        delta = target - ee
        if (distance := float(np.linalg.norm(delta))) > max_step_m:
            delta = delta * (max_step_m / distance)
        return np.array([*delta, 0.0, 0.0, 0.0, gripper])

    def _hold(self, gripper: float) -> np.ndarray:
        return np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, gripper])
