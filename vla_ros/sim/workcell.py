"""The embedded simulated workcell: a Franka Panda on a table with parts and target regions (PyBullet).

The workcell is driven in the policy's own action space: end-effector deltas per control period
plus a gripper opening (:meth:`Workcell.apply_action`), or an end-effector twist held for a
duration (:meth:`Workcell.apply_twist`, what the controller's output adapter sends). Either way the
commanded end-effector pose is integrated at the physics rate and turned into joint targets by
inverse kinematics every physics step, so the arm moves the way a Cartesian servo would move it.

Frames and units: the world frame is the robot base frame of shared/disambiguation/FORMAT.md
(metres, +x away from the robot, +y to its left, +z up; the table top is z = 0). Quaternions are
``(x, y, z, w)``. Gripper opening is in [0, 1] with 1 = open (OpenVLA's convention).

Each instance owns its own PyBullet client in DIRECT mode, so several workcells can live in one
process (tests, batched evaluation). Images come from the CPU TinyRenderer.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pybullet as pb
import pybullet_data

from vla_ros.sim.layout import PART_COLORS_RGBA, Layout, LocationSpec, PartSpec, sample_layout
from vla_ros.sim.tasks import TASK_NAMES, SimState, Task, sample_task

PANDA_URDF = "franka_panda/panda.urdf"
ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
EE_LINK = 11  # panda_grasptarget: between the finger pads, ~1.1 cm above the fingertips
HAND_LINK = 8
ARM_FORCES_N = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
# Position-control gain: 1.0 makes the arm reach each physics step's IK target (tight tracking).
ARM_POSITION_GAIN = 1.0
FINGER_MAX_OPENING_M = 0.04  # per finger; 8 cm between the pads when open
# Rest posture for the IK null space: elbow up, hand pointing down.
REST_POSTURE = (0.0, -0.4, 0.0, -2.4, 0.0, 2.0, 0.785, 0.04, 0.04)
GRIPPER_DOWN_QUAT = tuple(pb.getQuaternionFromEuler((np.pi, 0.0, 0.0)))


@dataclass
class WorkcellConfig:
    """Every knob of the workcell. Defaults are what the expert and the benchmark were tuned on."""

    image_width: int = 224
    image_height: int = 224
    wrist_camera: bool = False
    physics_hz: float = 240.0
    # One policy step; OpenVLA's data advice is 5-10 Hz.
    control_period_s: float = 0.1
    # Box the commanded end-effector position (grasp target point) is clamped to.
    workspace_min_m: tuple[float, float, float] = (0.25, -0.40, 0.012)
    workspace_max_m: tuple[float, float, float] = (0.80, 0.40, 0.45)
    # Most the commanded gripper z-axis may tilt away from pointing straight down.
    max_tilt_rad: float = 0.6
    # The commanded pose is kept this close to the measured one, so a blocked arm does not wind up.
    max_tracking_offset_m: float = 0.06
    home_ee_position_m: tuple[float, float, float] = (0.45, 0.0, 0.30)
    gripper_force_n: float = 40.0
    finger_friction: float = 2.0
    part_friction: float = 1.0
    table_friction: float = 0.5
    # Time the parts get to settle after a reset (not counted as an episode step).
    settle_time_s: float = 0.1
    # Fixed third-person camera, looking at the workspace from in front of the robot.
    camera_eye_m: tuple[float, float, float] = (0.95, 0.0, 0.85)
    camera_target_m: tuple[float, float, float] = (0.47, 0.0, 0.0)
    camera_fov_deg: float = 50.0
    wrist_camera_fov_deg: float = 75.0
    # Draw the Panda with its coarse collision meshes: TinyRenderer gets ~3x faster (the visual meshes
    # have ~100k triangles), at the cost of a blockier-looking arm. Physics is unaffected.
    light_robot_meshes: bool = True
    num_parts: tuple[int, int] = (2, 3)
    num_locations: tuple[int, int] = (2, 3)


@dataclass
class JointStates:
    names: list[str]
    positions: np.ndarray
    velocities: np.ndarray


@dataclass
class _Built:
    part_bodies: dict[str, int] = field(default_factory=dict)
    location_bodies: dict[str, int] = field(default_factory=dict)


class Workcell:
    """A Panda, a table, a few parts and target regions, driven by end-effector commands."""

    def __init__(self, config: WorkcellConfig | None = None) -> None:
        self.config = config or WorkcellConfig()
        self._client = pb.connect(pb.DIRECT)
        self._physics_dt_s = 1.0 / self.config.physics_hz
        self._sim_time_s = 0.0
        self._episode_steps = 0
        self._seed: int | None = None
        self._layout = Layout()
        self._task: Task | None = None
        self._built = _Built()
        self._gripper_opening = 1.0
        self._target_pos = np.asarray(self.config.home_ee_position_m, dtype=np.float64)
        self._target_quat = np.asarray(GRIPPER_DOWN_QUAT, dtype=np.float64)
        self._build_static_world()
        self._home_joints = self._solve_home_joints()
        self._set_joints(self._home_joints)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._client >= 0:
            pb.disconnect(physicsClientId=self._client)
            self._client = -1

    def __enter__(self) -> Workcell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self, seed: int, task: str | None = None) -> str:
        """Lay out a new scene from ``seed``, choose the task, put the arm home; returns the instruction.

        ``task`` is one of :data:`TASK_NAMES`, or None to let the seed choose. The same seed and task
        always give the same layout, task and initial state. Sim time keeps running across resets
        (it is the /clock), only :attr:`episode_steps` restarts.
        """
        rng = np.random.default_rng(seed)
        if task is None:
            task = TASK_NAMES[int(rng.integers(len(TASK_NAMES)))]
        if task not in TASK_NAMES:
            raise ValueError(f"unknown task {task!r}; choose one of {TASK_NAMES}")
        chosen: Task | None = None
        for _ in range(100):
            layout = sample_layout(rng, self.config.num_parts, self.config.num_locations)
            chosen = sample_task(task, layout, rng)
            if chosen is not None:
                break
        if chosen is None:
            raise RuntimeError(f"no layout from seed {seed} could host task {task!r}; widen the part area")
        self._layout = layout
        self._build_static_world()
        self._built = _Built()
        for part in layout.parts:
            self._built.part_bodies[part.id] = self._build_part(part)
        for location in layout.locations:
            self._built.location_bodies[location.id] = self._build_location(location)
        self._set_joints(self._home_joints)
        self._gripper_opening = 1.0
        self._target_pos = np.asarray(self.config.home_ee_position_m, dtype=np.float64)
        self._target_quat = np.asarray(GRIPPER_DOWN_QUAT, dtype=np.float64)
        self._step_physics(max(1, round(self.config.settle_time_s * self.config.physics_hz)), track=True)
        chosen.start_part_positions_m = {pid: self.part_position(pid) for pid in self._built.part_bodies}
        self._task = chosen
        self._seed = seed
        self._episode_steps = 0
        return chosen.instruction

    # ------------------------------------------------------------------ commands
    def apply_action(self, action: np.ndarray) -> None:
        """One control period of the policy's action ``[dx, dy, dz, droll, dpitch, dyaw, gripper]``.

        Translations in metres and rotations in radians (a small rotation vector in the base frame)
        for this control period; gripper in [0, 1], 1 = open. Also accepts an ``Action``.
        """
        vector = np.asarray(getattr(action, "vector", action), dtype=np.float64).reshape(-1)
        if vector.shape != (7,):
            raise ValueError(
                f"an action has 7 values [dx, dy, dz, droll, dpitch, dyaw, gripper], got {vector.shape}"
            )
        if not np.all(np.isfinite(vector)):
            raise ValueError(f"action has non-finite values {vector}; the controller should have rejected it")
        period = self.config.control_period_s
        self.set_gripper(float(vector[6]))
        self.apply_twist(vector[:6] / period, period)
        self._episode_steps += 1

    def apply_twist(self, twist: np.ndarray, dt_s: float) -> None:
        """Hold the end-effector velocity ``[vx, vy, vz, wx, wy, wz]`` (m/s, rad/s, base frame) for ``dt_s``.

        Physics advances by ``dt_s`` rounded to whole physics steps (at least one).
        """
        twist = np.asarray(twist, dtype=np.float64).reshape(-1)
        if twist.shape != (6,) or not np.all(np.isfinite(twist)):
            raise ValueError(f"a twist is 6 finite values [vx, vy, vz, wx, wy, wz], got {twist}")
        steps = max(1, round(dt_s * self.config.physics_hz))
        self._anchor_target()
        linear_step = twist[:3] * self._physics_dt_s
        angular_step = twist[3:] * self._physics_dt_s
        for _ in range(steps):
            self._target_pos = np.clip(
                self._target_pos + linear_step, self.config.workspace_min_m, self.config.workspace_max_m
            )
            self._target_quat = self._rotated_within_tilt(self._target_quat, angular_step)
            self._step_physics(1, track=True)

    def set_gripper(self, opening: float) -> None:
        """Command the gripper: 1 = fully open (8 cm), 0 = closed (force-limited on a part)."""
        if not np.isfinite(opening):
            raise ValueError(f"gripper opening must be finite, got {opening}")
        self._gripper_opening = float(np.clip(opening, 0.0, 1.0))

    def hold(self, dt_s: float) -> None:
        """Let time pass with the arm holding its commanded pose."""
        self.apply_twist(np.zeros(6), dt_s)

    # ------------------------------------------------------------------ state
    @property
    def control_period_s(self) -> float:
        return self.config.control_period_s

    @property
    def sim_time_s(self) -> float:
        """Physics time since the workcell was created (monotonic across resets: the /clock)."""
        return self._sim_time_s

    @property
    def episode_steps(self) -> int:
        """Control steps (:meth:`apply_action` calls) since the last reset."""
        return self._episode_steps

    @property
    def seed(self) -> int | None:
        """The seed of the last reset (None before the first)."""
        return self._seed

    @property
    def layout(self) -> Layout:
        return self._layout

    @property
    def task(self) -> Task:
        if self._task is None:
            raise RuntimeError("no task yet: call reset(seed, task) first")
        return self._task

    @property
    def instruction(self) -> str:
        return self.task.instruction

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured end-effector (grasp point) position and orientation quaternion (x, y, z, w)."""
        state = pb.getLinkState(
            self._robot, EE_LINK, computeForwardKinematics=True, physicsClientId=self._client
        )
        return np.asarray(state[4], dtype=np.float64), np.asarray(state[5], dtype=np.float64)

    def ee_target_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """The pose the arm is being driven to (the integrated command)."""
        return self._target_pos.copy(), self._target_quat.copy()

    def joint_states(self) -> JointStates:
        joints = (*ARM_JOINTS, *FINGER_JOINTS)
        states = pb.getJointStates(self._robot, joints, physicsClientId=self._client)
        return JointStates(
            names=list(self._joint_names),
            positions=np.asarray([s[0] for s in states], dtype=np.float64),
            velocities=np.asarray([s[1] for s in states], dtype=np.float64),
        )

    def gripper_opening(self) -> float:
        """Measured opening in [0, 1] (finger separation over its maximum)."""
        states = pb.getJointStates(self._robot, FINGER_JOINTS, physicsClientId=self._client)
        return float(np.clip((states[0][0] + states[1][0]) / (2 * FINGER_MAX_OPENING_M), 0.0, 1.0))

    @property
    def commanded_gripper_opening(self) -> float:
        return self._gripper_opening

    def part_position(self, part_id: str) -> np.ndarray:
        body = self._part_body(part_id)
        pos, _ = pb.getBasePositionAndOrientation(body, physicsClientId=self._client)
        return np.asarray(pos, dtype=np.float64)

    def part_pose(self, part_id: str) -> tuple[np.ndarray, np.ndarray]:
        body = self._part_body(part_id)
        pos, quat = pb.getBasePositionAndOrientation(body, physicsClientId=self._client)
        return np.asarray(pos, dtype=np.float64), np.asarray(quat, dtype=np.float64)

    def holding(self) -> str | None:
        """Id of the part squeezed between both fingers with the gripper commanded closed, else None."""
        if self._gripper_opening > 0.5:
            return None
        for part_id, body in self._built.part_bodies.items():
            touching = [
                pb.getContactPoints(self._robot, body, linkIndexA=finger, physicsClientId=self._client)
                for finger in FINGER_JOINTS
            ]
            if all(touching):
                return part_id
        return None

    def state(self) -> SimState:
        return SimState(
            part_positions_m={pid: self.part_position(pid) for pid in self._built.part_bodies},
            ee_position_m=self.ee_pose()[0],
            holding=self.holding(),
        )

    def success(self) -> bool:
        return self.task.success(self.state(), self._layout)

    def scene(self) -> dict:
        """Objects and locations in shared/disambiguation/FORMAT.md's ``scene`` format."""
        objects = []
        for part in self._layout.parts:
            position = self.part_position(part.id)
            objects.append(
                {
                    "id": part.id,
                    "name": part.name,
                    "kind": part.kind,
                    "category": part.category,
                    "color": part.color,
                    "size": part.size,
                    "position": [round(float(v), 4) for v in position],
                    "length_mm": part.length_mm,
                }
            )
        locations = []
        for location in self._layout.locations:
            entry: dict = {
                "id": location.id,
                "name": location.name,
                "category": location.category,
                "position": [round(location.xy_m[0], 4), round(location.xy_m[1], 4), 0.0],
            }
            if location.role:
                entry["role"] = location.role
            if location.accepts:
                entry["accepts"] = list(location.accepts)
            locations.append(entry)
        return {"objects": objects, "locations": locations, "holding": self.holding()}

    # ------------------------------------------------------------------ cameras
    @property
    def camera_names(self) -> tuple[str, ...]:
        return ("scene", "wrist") if self.config.wrist_camera else ("scene",)

    def render(self, camera: str = "scene") -> np.ndarray:
        """An RGB image (height x width x 3, uint8) from the fixed scene camera or the wrist camera."""
        rgba = self._camera_image(camera, segmentation=False)[2]
        height, width = self.config.image_height, self.config.image_width
        return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def render_part_labels(self, camera: str = "scene") -> np.ndarray:
        """Which part each pixel of :meth:`render`'s image shows: ``1 + i`` for ``layout.parts[i]``,
        0 for anything else (height x width, uint8).

        Ground truth for asking what a policy's image features know about where the parts are
        (``benchmarks/probe_patch_positions.py``); rendered separately because the segmentation pass
        costs about as much as the image itself.
        """
        bodies = self._visible_bodies(camera)
        labels = np.zeros(bodies.shape, dtype=np.uint8)
        for index, part in enumerate(self.layout.parts):
            labels[bodies == self._part_body(part.id)] = index + 1
        return labels

    def render_object_mask(self, object_id: str, camera: str = "scene") -> np.ndarray:
        """The pixels of :meth:`render`'s image that show part or location ``object_id`` (height x
        width, bool; pixels where the arm hides it are False).

        Ground truth for where the thing an instruction names lies in the image: recorded beside the
        camera frames (``record-demos``) so training can ask the policy to look there
        (``vla-ros train --target-attention-weight``).
        """
        body = self._built.part_bodies.get(object_id, self._built.location_bodies.get(object_id))
        if body is None:
            raise KeyError(
                f"no part or location {object_id!r} in the workcell; parts are "
                f"{list(self._built.part_bodies)}, locations {list(self._built.location_bodies)}"
            )
        return self._visible_bodies(camera) == body

    def _visible_bodies(self, camera: str) -> np.ndarray:
        """The body each pixel of the camera's image shows (height x width); a segmentation pass costs
        about as much as the image itself."""
        segmentation = self._camera_image(camera, segmentation=True)[4]
        height, width = self.config.image_height, self.config.image_width
        return np.asarray(segmentation, dtype=np.int64).reshape(height, width)

    def _camera_image(self, camera: str, segmentation: bool) -> tuple:
        width, height = self.config.image_width, self.config.image_height
        if camera == "scene":
            view = pb.computeViewMatrix(
                self.config.camera_eye_m,
                self.config.camera_target_m,
                (0.0, 0.0, 1.0),
                physicsClientId=self._client,
            )
            fov = self.config.camera_fov_deg
        elif camera == "wrist" and self.config.wrist_camera:
            view = self._wrist_view_matrix()
            fov = self.config.wrist_camera_fov_deg
        else:
            raise ValueError(
                f"no camera {camera!r}; this workcell has {self.camera_names} (set wrist_camera=True)"
            )
        projection = pb.computeProjectionMatrixFOV(
            fov, width / height, 0.02, 3.0, physicsClientId=self._client
        )
        return pb.getCameraImage(
            width,
            height,
            view,
            projection,
            renderer=pb.ER_TINY_RENDERER,
            flags=0 if segmentation else pb.ER_NO_SEGMENTATION_MASK,
            shadow=0,
            physicsClientId=self._client,
        )

    # ------------------------------------------------------------------ test and setup helpers
    def place_part(self, part_id: str, position_m: np.ndarray) -> None:
        """Teleport a part (zero velocity). For constructing states in tests and demos."""
        body = self._part_body(part_id)
        _, quat = pb.getBasePositionAndOrientation(body, physicsClientId=self._client)
        pb.resetBasePositionAndOrientation(
            body, list(map(float, position_m)), quat, physicsClientId=self._client
        )
        pb.resetBaseVelocity(body, (0, 0, 0), (0, 0, 0), physicsClientId=self._client)

    def place_ee(self, position_m: np.ndarray) -> None:
        """Teleport the arm so the end effector points down at ``position_m``. For tests and demos."""
        target = np.clip(
            np.asarray(position_m, dtype=np.float64), self.config.workspace_min_m, self.config.workspace_max_m
        )
        self._set_joints(self._solve_joints_for(target, np.asarray(GRIPPER_DOWN_QUAT)))
        self._target_pos = target
        self._target_quat = np.asarray(GRIPPER_DOWN_QUAT, dtype=np.float64)

    # ------------------------------------------------------------------ internals
    def _part_body(self, part_id: str) -> int:
        try:
            return self._built.part_bodies[part_id]
        except KeyError:
            raise KeyError(
                f"no part {part_id!r} in the workcell; parts are {list(self._built.part_bodies)}"
            ) from None

    def _build_static_world(self) -> None:
        c = self._client
        pb.resetSimulation(physicsClientId=c)
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
        pb.setGravity(0.0, 0.0, -9.81, physicsClientId=c)
        pb.setTimeStep(self._physics_dt_s, physicsClientId=c)
        table_half = (0.55, 0.70, 0.025)
        table = pb.createMultiBody(
            baseMass=0.0,
            baseCollisionShapeIndex=pb.createCollisionShape(
                pb.GEOM_BOX, halfExtents=table_half, physicsClientId=c
            ),
            baseVisualShapeIndex=pb.createVisualShape(
                pb.GEOM_BOX, halfExtents=table_half, rgbaColor=(0.72, 0.62, 0.50, 1.0), physicsClientId=c
            ),
            basePosition=(0.40, 0.0, -table_half[2]),
            physicsClientId=c,
        )
        pb.changeDynamics(table, -1, lateralFriction=self.config.table_friction, physicsClientId=c)
        floor_half = (3.0, 3.0, 0.01)
        pb.createMultiBody(
            baseMass=0.0,
            baseVisualShapeIndex=pb.createVisualShape(
                pb.GEOM_BOX, halfExtents=floor_half, rgbaColor=(0.35, 0.37, 0.40, 1.0), physicsClientId=c
            ),
            basePosition=(0.0, 0.0, -0.75),
            physicsClientId=c,
        )
        urdf = _light_panda_urdf() if self.config.light_robot_meshes else PANDA_URDF
        self._robot = pb.loadURDF(urdf, (0.0, 0.0, 0.0), useFixedBase=True, physicsClientId=c)
        if self.config.light_robot_meshes:
            # The collision meshes carry no materials: white links, dark flange and fingers.
            for link in range(-1, pb.getNumJoints(self._robot, physicsClientId=c)):
                rgba = (0.25, 0.25, 0.28, 1.0) if link in (6, *FINGER_JOINTS) else (0.93, 0.93, 0.93, 1.0)
                pb.changeVisualShape(self._robot, link, rgbaColor=rgba, physicsClientId=c)
        self._joint_names = [
            pb.getJointInfo(self._robot, j, physicsClientId=c)[1].decode()
            for j in (*ARM_JOINTS, *FINGER_JOINTS)
        ]
        limits = [
            pb.getJointInfo(self._robot, j, physicsClientId=c)[8:10] for j in (*ARM_JOINTS, *FINGER_JOINTS)
        ]
        self._lower = [lo for lo, _ in limits]
        self._upper = [hi for _, hi in limits]
        self._ranges = [hi - lo for lo, hi in limits]
        for finger in FINGER_JOINTS:
            pb.changeDynamics(
                self._robot,
                finger,
                lateralFriction=self.config.finger_friction,
                spinningFriction=0.01,
                frictionAnchor=True,
                physicsClientId=c,
            )
        # Couple the two fingers (as the real Panda's mechanism does) so a grasp stays centred.
        gear = pb.createConstraint(
            self._robot,
            FINGER_JOINTS[0],
            self._robot,
            FINGER_JOINTS[1],
            jointType=pb.JOINT_GEAR,
            jointAxis=(1, 0, 0),
            parentFramePosition=(0, 0, 0),
            childFramePosition=(0, 0, 0),
            physicsClientId=c,
        )
        pb.changeConstraint(gear, gearRatio=-1, erp=0.1, maxForce=50, physicsClientId=c)

    def _build_part(self, part: PartSpec) -> int:
        c = self._client
        geometry = part.geometry
        rgba = PART_COLORS_RGBA[part.color]
        height = part.height_m
        if geometry["shape"] == "box":
            half = geometry["half_extents_m"]
            collision = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=c)
            visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=c)
        elif geometry["shape"] == "hex_bar":
            vertices, indices = _prism_mesh(_regular_polygon(geometry["radius_m"], 6), geometry["length_m"])
            # Extrude along x, a flat face down: (u, v, w) -> (w, u, v) keeps the triangles' winding.
            vertices = [[w, u, v] for u, v, w in vertices]
            collision = pb.createCollisionShape(pb.GEOM_MESH, vertices=vertices, physicsClientId=c)
            visual = pb.createVisualShape(
                pb.GEOM_MESH, vertices=vertices, indices=indices, rgbaColor=rgba, physicsClientId=c
            )
        elif geometry["shape"] == "hex":
            vertices, indices = _prism_mesh(_regular_polygon(geometry["radius_m"], 6), height)
            collision = pb.createCollisionShape(pb.GEOM_MESH, vertices=vertices, physicsClientId=c)
            visual = pb.createVisualShape(
                pb.GEOM_MESH, vertices=vertices, indices=indices, rgbaColor=rgba, physicsClientId=c
            )
        else:
            radius = geometry["radius_m"]
            collision = pb.createCollisionShape(
                pb.GEOM_CYLINDER, radius=radius, height=height, physicsClientId=c
            )
            if part.category == "gear":
                vertices, indices = _prism_mesh(_gear_outline(radius), height)
                visual = pb.createVisualShape(
                    pb.GEOM_MESH, vertices=vertices, indices=indices, rgbaColor=rgba, physicsClientId=c
                )
            else:
                visual = pb.createVisualShape(
                    pb.GEOM_CYLINDER, radius=radius, length=height, rgbaColor=rgba, physicsClientId=c
                )
        body = pb.createMultiBody(
            baseMass=geometry["mass_kg"],
            baseCollisionShapeIndex=collision,
            baseVisualShapeIndex=visual,
            basePosition=(part.xy_m[0], part.xy_m[1], height / 2.0 + 0.001),
            baseOrientation=pb.getQuaternionFromEuler((0.0, 0.0, part.yaw_rad)),
            physicsClientId=c,
        )
        pb.changeDynamics(
            body,
            -1,
            lateralFriction=self.config.part_friction,
            spinningFriction=0.001,
            rollingFriction=0.0005,
            physicsClientId=c,
        )
        return body

    def _build_location(self, location: LocationSpec) -> int:
        """A flat coloured square with a darker rim: visual only, so parts slide over it freely."""
        c = self._client
        half = location.half_size_m
        rim = 0.006
        rim_rgba = (*(0.6 * v for v in location.rgba[:3]), 1.0)
        shapes = [((half, half, 0.0008), (0.0, 0.0, 0.0008), location.rgba)]
        for sx, sy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            extents = (rim, half, 0.0012) if sx else (half, rim, 0.0012)
            shapes.append((extents, (sx * (half - rim), sy * (half - rim), 0.0012), rim_rgba))
        visual = pb.createVisualShapeArray(
            shapeTypes=[pb.GEOM_BOX] * len(shapes),
            halfExtents=[s[0] for s in shapes],
            visualFramePositions=[s[1] for s in shapes],
            rgbaColors=[s[2] for s in shapes],
            physicsClientId=c,
        )
        return pb.createMultiBody(
            baseMass=0.0,
            baseVisualShapeIndex=visual,
            basePosition=(location.xy_m[0], location.xy_m[1], 0.0),
            physicsClientId=c,
        )

    def _set_joints(self, positions: np.ndarray) -> None:
        for joint, value in zip((*ARM_JOINTS, *FINGER_JOINTS), positions, strict=True):
            pb.resetJointState(self._robot, joint, float(value), 0.0, physicsClientId=self._client)

    def _solve_joints_for(self, position: np.ndarray, quat: np.ndarray) -> np.ndarray:
        """Accurate IK by iterating on teleported joint states (setup only, not at run time)."""
        saved = [
            s[0]
            for s in pb.getJointStates(
                self._robot, (*ARM_JOINTS, *FINGER_JOINTS), physicsClientId=self._client
            )
        ]
        self._set_joints(REST_POSTURE)
        solution = np.asarray(REST_POSTURE, dtype=np.float64)
        for _ in range(20):
            solution = np.asarray(self._ik(position, quat), dtype=np.float64)
            solution[7:] = FINGER_MAX_OPENING_M
            self._set_joints(solution)
        self._set_joints(saved)
        return solution

    def _solve_home_joints(self) -> np.ndarray:
        return self._solve_joints_for(
            np.asarray(self.config.home_ee_position_m), np.asarray(GRIPPER_DOWN_QUAT)
        )

    def _ik(self, position: np.ndarray, quat: np.ndarray) -> list[float]:
        return pb.calculateInverseKinematics(
            self._robot,
            EE_LINK,
            list(map(float, position)),
            list(map(float, quat)),
            lowerLimits=self._lower,
            upperLimits=self._upper,
            jointRanges=self._ranges,
            restPoses=list(REST_POSTURE),
            maxNumIterations=20,
            residualThreshold=1e-4,
            physicsClientId=self._client,
        )

    def _anchor_target(self) -> None:
        """Pull the commanded position back towards the measured one if the arm fell behind (blocked)."""
        measured, _ = self.ee_pose()
        offset = self._target_pos - measured
        distance = float(np.linalg.norm(offset))
        limit = self.config.max_tracking_offset_m
        if distance > limit:
            self._target_pos = measured + offset * (limit / distance)

    def _rotated_within_tilt(self, quat: np.ndarray, rotation_vector: np.ndarray) -> np.ndarray:
        angle = float(np.linalg.norm(rotation_vector))
        if angle < 1e-12:
            return quat
        delta = pb.getQuaternionFromAxisAngle(list(rotation_vector / angle), angle)
        _, rotated = pb.multiplyTransforms((0, 0, 0), delta, (0, 0, 0), list(quat))
        z_axis = np.asarray(pb.getMatrixFromQuaternion(rotated)).reshape(3, 3)[:, 2]
        tilt = float(np.arccos(np.clip(-z_axis[2], -1.0, 1.0)))
        if tilt > self.config.max_tilt_rad:
            return quat
        return np.asarray(rotated, dtype=np.float64)

    def _step_physics(self, steps: int, track: bool) -> None:
        c = self._client
        finger_target = self._gripper_opening * FINGER_MAX_OPENING_M
        for _ in range(steps):
            if track:
                joints = self._ik(self._target_pos, self._target_quat)
                pb.setJointMotorControlArray(
                    self._robot,
                    ARM_JOINTS,
                    pb.POSITION_CONTROL,
                    targetPositions=joints[:7],
                    forces=ARM_FORCES_N,
                    positionGains=[ARM_POSITION_GAIN] * len(ARM_JOINTS),
                    physicsClientId=c,
                )
            for finger in FINGER_JOINTS:
                pb.setJointMotorControl2(
                    self._robot,
                    finger,
                    pb.POSITION_CONTROL,
                    targetPosition=finger_target,
                    force=self.config.gripper_force_n,
                    maxVelocity=0.2,
                    physicsClientId=c,
                )
            pb.stepSimulation(physicsClientId=c)
            self._sim_time_s += self._physics_dt_s

    def _wrist_view_matrix(self) -> list[float]:
        state = pb.getLinkState(
            self._robot, HAND_LINK, computeForwardKinematics=True, physicsClientId=self._client
        )
        position, quat = np.asarray(state[4]), state[5]
        axes = np.asarray(pb.getMatrixFromQuaternion(quat)).reshape(3, 3)
        eye = position + 0.05 * axes[:, 0] + 0.02 * axes[:, 2]
        target = eye + 0.2 * axes[:, 2]
        return pb.computeViewMatrix(list(eye), list(target), list(axes[:, 0]), physicsClientId=self._client)


_LIGHT_URDF_DIR: Path | None = None


def _light_panda_urdf() -> str:
    """pybullet_data's Panda URDF with each visual mesh swapped for the link's collision mesh.

    Written once per process into a temporary directory (removed at exit); mesh paths are absolute.
    """
    global _LIGHT_URDF_DIR
    if _LIGHT_URDF_DIR is None:
        source = Path(pybullet_data.getDataPath()) / "franka_panda"
        text = (source / "panda.urdf").read_text()
        collision_dir = f"{source / 'meshes' / 'collision'}/"
        text = text.replace("package://meshes/visual/", collision_dir).replace(
            "package://meshes/collision/", collision_dir
        )
        directory = Path(tempfile.mkdtemp(prefix="vla_ros_panda_"))
        (directory / "panda_light.urdf").write_text(text)
        atexit.register(shutil.rmtree, directory, True)
        _LIGHT_URDF_DIR = directory
    return str(_LIGHT_URDF_DIR / "panda_light.urdf")


def _regular_polygon(radius: float, sides: int) -> np.ndarray:
    angles = np.arange(sides) * 2 * np.pi / sides
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _gear_outline(radius: float, teeth: int = 12) -> np.ndarray:
    """A toothed outline (visual only; the gear collides as a cylinder of the same outer radius)."""
    points = []
    for i in range(teeth * 4):
        angle = i * 2 * np.pi / (teeth * 4)
        r = radius if (i % 4) in (1, 2) else 0.82 * radius
        points.append((r * np.cos(angle), r * np.sin(angle)))
    return np.asarray(points)


def _prism_mesh(outline: np.ndarray, height: float) -> tuple[list[list[float]], list[int]]:
    """Extrude a star-shaped outline (around the origin) into a closed triangle mesh centred at z=0."""
    n = len(outline)
    half = height / 2.0
    vertices = [[float(x), float(y), half] for x, y in outline] + [
        [float(x), float(y), -half] for x, y in outline
    ]
    vertices += [[0.0, 0.0, half], [0.0, 0.0, -half]]
    top_centre, bottom_centre = 2 * n, 2 * n + 1
    indices: list[int] = []
    for i in range(n):
        j = (i + 1) % n
        indices += [top_centre, i, j]
        indices += [bottom_centre, n + j, n + i]
        indices += [i, n + i, n + j, i, n + j, j]
    return vertices, indices


def workcell_config(
    image_size_px: int, num_parts: tuple[int, int] | None = None, wrist_camera: bool = False
) -> WorkcellConfig:
    """The workcell that demonstrations are recorded in and policies evaluated in: evaluate in the
    one you recorded in (same image size and parts per layout; the wrist camera for a policy that
    looks through it)."""
    config = WorkcellConfig(image_width=image_size_px, image_height=image_size_px, wrist_camera=wrist_camera)
    if num_parts is not None:
        low, high = num_parts
        if not 1 <= low <= high:
            raise ValueError(f"parts per layout must be a range 1 <= low <= high, got {num_parts}")
        config.num_parts = (low, high)
    return config
