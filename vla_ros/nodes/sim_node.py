"""sim_node: the embedded PyBullet workcell behind the same topics a real arm or Gazebo offers.

The node owns a :class:`~vla_ros.sim.Workcell` and is the clock of the whole system: it steps physics
from a steady (wall) timer at ``real_time_factor`` times real time and publishes ``/clock`` from the
workcell's sim time, so every other node runs with ``use_sim_time:=true``. All stamps it publishes
are sim time.

Outputs: ``/clock`` (rosgraph_msgs/Clock), ``image_raw`` (sensor_msgs/Image rgb8, sensor-data QoS,
every ``1 / camera_rate_hz`` sim seconds; ``wrist/image_raw`` too with ``wrist_camera``), ``ee_pose``
(PoseStamped of the grasp point in the base frame) and ``joint_states`` every ``1 / state_rate_hz``,
``scene`` (vla_ros/Scene, latched) at each reset and every ``1 / scene_rate_hz``.
Inputs: ``sim_twist_out`` (TwistStamped from controller_node's sim output; applied at every physics
step, zero once older than ``twist_timeout_s`` of sim time) and ``gripper_out`` (GripperCommand).
Services: ``reset`` (vla_ros/ResetEpisode: empty task keeps the current one, seed < 0 takes the next
seed) and ``check_success`` (std_srvs/Trigger).

The Workcell is not thread-safe: only the physics tick and the services touch it, each in its own
mutually exclusive callback group (one group would let the always-ready physics timer starve the
services), and always holding :attr:`SimNode.workcell_lock`, which a composing process also takes
when it lets a privileged policy (the scripted expert) read the workcell from another thread.
Command callbacks only store the latest twist and gripper value for the next tick.
"""

from __future__ import annotations

import array
import math
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger

from vla_ros.image_codec import rgb_to_image_fields
from vla_ros.msg import GripperCommand, Scene
from vla_ros.nodes.common import (
    COMMAND_QOS,
    LATCHED_QOS,
    OK,
    WARN,
    declare,
    diagnostic_array,
    s_to_stamp,
    spin_node,
)
from vla_ros.nodes.scene_convert import scene_dict_to_msg
from vla_ros.sim import TASK_NAMES, Workcell, WorkcellConfig
from vla_ros.srv import ResetEpisode

CLOCK_QOS = QoSProfile(depth=1)


class SimNode(Node):
    def __init__(self, workcell: Workcell | None = None, **kwargs) -> None:
        super().__init__("sim_node", **kwargs)
        task = declare(self, "task", "pick_place", f"task of the first episode: {' | '.join(TASK_NAMES)}")
        seed = declare(self, "seed", 0, "layout seed of the first episode")
        declare(self, "real_time_factor", 1.0, "sim seconds per wall second (changeable at run time)")
        declare(self, "paused", False, "stop physics and the clock (changeable at run time)")
        tick_rate_hz = declare(self, "tick_rate_hz", 100.0, "wall rate of physics stepping and /clock")
        self.max_steps_per_tick = declare(
            self, "max_physics_steps_per_tick", 24, "cap per tick; beyond it the sim falls behind"
        )
        self.camera_period_s = 1.0 / declare(self, "camera_rate_hz", 10.0, "camera frames per sim second")
        self.state_period_s = 1.0 / declare(self, "state_rate_hz", 50.0, "ee_pose/joint_states per sim s")
        self.scene_period_s = 1.0 / declare(self, "scene_rate_hz", 2.0, "scene updates per sim second")
        self.twist_timeout_s = declare(self, "twist_timeout_s", 0.1, "older twist (sim time) -> zero")
        self.base_frame_id = declare(self, "base_frame_id", "panda_link0", "frame of poses and the scene")
        self.camera_frame_id = declare(self, "camera_frame_id", "scene_camera", "frame_id of image_raw")
        width = declare(self, "image_width", 224, "camera image width (pixels)")
        height = declare(self, "image_height", 224, "camera image height (pixels)")
        wrist = declare(self, "wrist_camera", False, "also publish wrist/image_raw")

        self.workcell = workcell or Workcell(
            WorkcellConfig(image_width=width, image_height=height, wrist_camera=wrist)
        )
        self.workcell_lock = threading.RLock()
        self._command_lock = threading.Lock()
        self._twist = np.zeros(6)
        self._gripper: float | None = None
        self._clock_s = self.workcell.sim_time_s  # the last /clock published
        self._twist_received_s = -math.inf
        self._budget_s = 0.0
        self._last_wall_s: float | None = None
        self._lagging_ticks = 0
        self._wall_start_s = time.monotonic()
        self._sim_start_s = self.workcell.sim_time_s
        self._next_camera_s = self._next_state_s = self._next_scene_s = 0.0

        self.clock_pub = self.create_publisher(ClockMsg, "/clock", CLOCK_QOS)
        self.image_pub = self.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.wrist_pub = (
            self.create_publisher(Image, "wrist/image_raw", qos_profile_sensor_data) if wrist else None
        )
        self.pose_pub = self.create_publisher(PoseStamped, "ee_pose", COMMAND_QOS)
        self.joint_pub = self.create_publisher(JointState, "joint_states", 10)
        self.scene_pub = self.create_publisher(Scene, "scene", LATCHED_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

        # Physics gets its own group: its timer is ready again almost as soon as a tick ends, and would
        # starve commands and services sharing a group with it. Commands only store values; the
        # physics tick applies them.
        physics, services, inputs = (MutuallyExclusiveCallbackGroup() for _ in range(3))
        self.create_subscription(
            TwistStamped, "sim_twist_out", self._on_twist, COMMAND_QOS, callback_group=inputs
        )
        self.create_subscription(
            GripperCommand, "gripper_out", self._on_gripper, COMMAND_QOS, callback_group=inputs
        )
        self.create_service(ResetEpisode, "reset", self._on_reset, callback_group=services)
        self.create_service(Trigger, "check_success", self._on_check_success, callback_group=services)
        # Physics follows the wall clock (scaled), never the ROS clock: this node *is* the clock.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0 / tick_rate_hz, self._tick, callback_group=physics, clock=steady)
        self.create_timer(1.0, self._publish_diagnostics, callback_group=services, clock=steady)

        self._reset(int(seed), task or None)

    # -- services ---------------------------------------------------------------------------------
    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response):
        task = request.task or (self.workcell.task.name if self.workcell.seed is not None else None)
        if request.seed >= 0:
            seed = int(request.seed)
        else:
            seed = 0 if self.workcell.seed is None else self.workcell.seed + 1
        try:
            response.instruction = self._reset(seed, task)
        except (ValueError, RuntimeError) as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success = True
        response.message = (
            f"seed {seed}, task {self.workcell.task.name}, sim time {self.workcell.sim_time_s:.3f} s"
        )
        self.get_logger().info(f"reset: {response.message}: {response.instruction!r}")
        return response

    def _reset(self, seed: int, task: str | None) -> str:
        with self.workcell_lock:
            instruction = self.workcell.reset(seed, task)
            with self._command_lock:
                self._twist = np.zeros(6)
                self._twist_received_s = -math.inf
                self._gripper = None
            now = self.workcell.sim_time_s
            self._next_camera_s = self._next_state_s = self._next_scene_s = now
            self._publish_clock()
            self._publish_due(now)
        return instruction

    def _on_check_success(self, request: Trigger.Request, response: Trigger.Response):
        with self.workcell_lock:
            response.success = bool(self.workcell.success())
            task = self.workcell.task
        response.message = f"{task.name}: {task.instruction!r} {'done' if response.success else 'not done'}"
        return response

    # -- inputs -----------------------------------------------------------------------------------
    def _on_twist(self, msg: TwistStamped) -> None:
        t, w = msg.twist.linear, msg.twist.angular
        twist = np.array([t.x, t.y, t.z, w.x, w.y, w.z], dtype=np.float64)
        if not np.all(np.isfinite(twist)):
            self.get_logger().warn("non-finite twist ignored", throttle_duration_sec=2.0)
            return
        with self._command_lock:
            self._twist = twist
            self._twist_received_s = self._clock_s

    def _on_gripper(self, msg: GripperCommand) -> None:
        if math.isfinite(msg.position):
            with self._command_lock:
                self._gripper = float(msg.position)

    # -- physics ----------------------------------------------------------------------------------
    def _tick(self) -> None:
        wall = time.monotonic()
        elapsed, self._last_wall_s = (0.0 if self._last_wall_s is None else wall - self._last_wall_s), wall
        if self.get_parameter("paused").value:
            return
        physics_dt = 1.0 / self.workcell.config.physics_hz
        self._budget_s += elapsed * max(0.0, float(self.get_parameter("real_time_factor").value))
        steps = int(self._budget_s / physics_dt + 1e-9)
        if steps > self.max_steps_per_tick:
            # Slower than asked: drop the debt instead of trying to catch up (which would only lag more).
            steps, self._budget_s = self.max_steps_per_tick, 0.0
            self._lagging_ticks += 1
        else:
            self._budget_s -= steps * physics_dt
        if steps == 0:
            return
        with self._command_lock:
            # Staleness is judged against the last /clock published: the controller cannot answer
            # before it sees it, however many physics steps this tick takes.
            stale = self._clock_s - self._twist_received_s > self.twist_timeout_s
            twist = np.zeros(6) if stale else self._twist
            gripper, self._gripper = self._gripper, None
        with self.workcell_lock:
            if gripper is not None:
                self.workcell.set_gripper(gripper)
            while steps > 0:
                now = self.workcell.sim_time_s
                due = min(self._next_camera_s, self._next_state_s, self._next_scene_s)
                chunk = min(steps, max(1, math.ceil((due - now) / physics_dt - 1e-6)))
                self.workcell.apply_twist(twist, chunk * physics_dt)
                steps -= chunk
                self._publish_due(self.workcell.sim_time_s)
            self._publish_clock()

    # -- outputs (callers hold the lock) ----------------------------------------------------------
    def _publish_clock(self) -> None:
        self._clock_s = self.workcell.sim_time_s
        self.clock_pub.publish(ClockMsg(clock=s_to_stamp(self._clock_s)))

    def _publish_due(self, now: float) -> None:
        eps = 1e-6
        stamp = s_to_stamp(now)
        if now + eps >= self._next_state_s:
            self._publish_state(stamp)
            self._next_state_s = _next_deadline(self._next_state_s, self.state_period_s, now)
        if now + eps >= self._next_scene_s:
            self.scene_pub.publish(scene_dict_to_msg(self.workcell.scene(), stamp, self.base_frame_id))
            self._next_scene_s = _next_deadline(self._next_scene_s, self.scene_period_s, now)
        if now + eps >= self._next_camera_s:
            self.image_pub.publish(self._image(self.workcell.render("scene"), stamp, self.camera_frame_id))
            if self.wrist_pub is not None:
                self.wrist_pub.publish(self._image(self.workcell.render("wrist"), stamp, "wrist_camera"))
            self._next_camera_s = _next_deadline(self._next_camera_s, self.camera_period_s, now)

    def _publish_state(self, stamp) -> None:
        position, quat = self.workcell.ee_pose()
        pose = PoseStamped()
        pose.header.stamp = stamp
        pose.header.frame_id = self.base_frame_id
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in position)
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quat)
        self.pose_pub.publish(pose)
        joints = self.workcell.joint_states()
        msg = JointState(name=joints.names, position=joints.positions.tolist())
        msg.velocity = joints.velocities.tolist()
        msg.header.stamp = stamp
        self.joint_pub.publish(msg)

    @staticmethod
    def _image(rgb: np.ndarray, stamp, frame_id: str) -> Image:
        fields = rgb_to_image_fields(rgb)
        msg = Image(
            height=fields["height"], width=fields["width"], encoding=fields["encoding"], step=fields["step"]
        )
        msg.data = array.array("B", fields["data"])
        msg.header.stamp = stamp
        msg.header.frame_id = frame_id
        return msg

    def _publish_diagnostics(self) -> None:
        wall = time.monotonic() - self._wall_start_s
        sim = self.workcell.sim_time_s - self._sim_start_s
        achieved = sim / wall if wall > 0 else 0.0
        level = WARN if self._lagging_ticks else OK
        message = f"sim time {self.workcell.sim_time_s:.2f} s"
        values = {
            "sim_time_s": self.workcell.sim_time_s,
            "achieved_real_time_factor": achieved,
            "requested_real_time_factor": float(self.get_parameter("real_time_factor").value),
            "lagging_ticks": self._lagging_ticks,
            "seed": self.workcell.seed,
        }
        self.diag_pub.publish(diagnostic_array(self, "sim", level, message, values))


def _next_deadline(previous_s: float, period_s: float, now_s: float) -> float:
    """The next multiple of the period after ``previous_s``; skips ahead rather than bursting."""
    nxt = previous_s + period_s
    return nxt if nxt > now_s + 1e-6 else now_s + period_s


def main(args=None) -> int:
    return spin_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
