"""controller_node: the only node that commands the arm. Every command passes the safety core first.

Inputs: ``twist_cmd`` (TwistStamped, base frame), ``gripper_cmd`` (GripperCommand), ``ee_pose``
(PoseStamped of the end effector in the base frame), ``estop`` (Bool, latched QoS; true latches),
service ``reset_estop`` (std_srvs/Trigger). Every ``1 / output_rate_hz`` seconds the core decides the
twist: e-stop -> zero, watchdog (no fresh command within ``command_timeout_s`` -> zero), stale pose ->
stop, then NaN/inf rejection, per-axis speed and acceleration limits and the workspace box.

The output step keeps its rate whatever arrives: twist commands and end-effector poses are not
executor callbacks but are taken by the output step itself when it runs. Every waiting twist command
is checked by the core, at most ``COMMAND_QUEUE_DEPTH`` per output period (older ones are dropped by
the middleware; the newest always counts, and ``commands_received`` counts what was taken); of the
poses only the newest, which counts as received when the step takes it. A 1 kHz command flood then
costs a few takes per output period instead of one executor round (wait set, task, thread hand-off)
per message, which starved the output timer (0.18 s between outputs against a 20 ms period).

Output adapters (``output_mode``):
- ``servo``: TwistStamped on ``servo_twist_out`` (remap to MoveIt Servo's ``delta_twist_cmds``), freshly
  stamped; on start the node switches Servo to twist commands through ``switch_command_type``
  (Jazzy and later) or ``start_servo`` (Humble) and reports which one answered.
- ``pose``: an integrated PoseStamped target on ``pose_target_out``.
- ``sim``: TwistStamped on ``sim_twist_out`` for the embedded workcell.
Gripper commands are forwarded to ``gripper_out`` unless the e-stop is latched.
"""

from __future__ import annotations

import threading

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import CallbackGroup, MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.subscription import Subscription
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from vla_ros.control.controller import ACCEPTED, Controller
from vla_ros.control.limits import SafetyLimits
from vla_ros.control.twist import PoseIntegrator
from vla_ros.msg import GripperCommand
from vla_ros.nodes.common import (
    COMMAND_QOS,
    ERROR,
    LATCHED_QOS,
    OK,
    WARN,
    declare,
    diagnostic_array,
    now_s,
    spin_node,
    stamp_to_s,
)

OUTPUT_MODES = ("servo", "pose", "sim")
# Twist commands kept for the next output step; older ones are dropped by the middleware.
COMMAND_QUEUE_DEPTH = 10
# Only the newest end-effector pose matters.
NEWEST_ONLY_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


class TakenByOutputStep(CallbackGroup):
    """Subscriptions the executor never runs: the output step takes their messages itself.

    The executor leaves entities of a group that cannot execute out of its wait set, so messages on
    these topics never wake it; they wait in the subscription's queue (its QoS depth) until
    :func:`take_waiting` is called.
    """

    def can_execute(self, entity) -> bool:
        return False

    def beginning_execution(self, entity) -> bool:
        return False

    def ending_execution(self, entity) -> None:
        pass


def take_waiting(subscription: Subscription, limit: int) -> list:
    """Up to ``limit`` messages waiting on ``subscription``, oldest first (empty once it is destroyed)."""
    messages = []
    try:
        with subscription.handle:
            while len(messages) < limit:
                taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
                if taken is None:
                    break
                messages.append(taken[0])
    except InvalidHandle:
        pass  # the node is being destroyed
    return messages


def _ignored(_msg) -> None:
    """Callback of the subscriptions in :class:`TakenByOutputStep`, which the executor never calls."""


class ControllerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("controller_node", **kwargs)
        self.output_mode = declare(self, "output_mode", "servo", "servo | pose | sim")
        if self.output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode '{self.output_mode}' is not one of {OUTPUT_MODES}")
        rate_hz = declare(self, "output_rate_hz", 50.0, "output and safety-check rate")
        limits = SafetyLimits(
            workspace_min_m=declare(
                self, "workspace_min_m", [0.2, -0.45, 0.02], "workspace box min, base frame"
            ),
            workspace_max_m=declare(
                self, "workspace_max_m", [0.8, 0.45, 0.6], "workspace box max, base frame"
            ),
            max_linear_speed_m_s=declare(self, "max_linear_speed_m_s", [0.1, 0.1, 0.1], "per-axis limit"),
            max_angular_speed_rad_s=declare(
                self, "max_angular_speed_rad_s", [0.5, 0.5, 0.5], "per-axis limit"
            ),
            max_linear_accel_m_s2=declare(self, "max_linear_accel_m_s2", 0.5, "per-axis limit"),
            max_angular_accel_rad_s2=declare(self, "max_angular_accel_rad_s2", 2.0, "per-axis limit"),
            command_timeout_s=declare(self, "command_timeout_s", 0.5, "no fresh command -> zero twist"),
            max_command_age_s=declare(self, "command_max_age_s", 0.5, "older command stamps are refused"),
            ee_pose_timeout_s=declare(self, "ee_pose_timeout_s", 0.5, "older end-effector poses -> stop"),
            max_output_interval_s=1.5 / rate_hz,
        )
        self.base_frame_id = declare(self, "base_frame_id", "panda_link0", "frame of outputs and workspace")
        self.core = Controller(limits)
        self.pose_integrator = PoseIntegrator.from_limits(limits)
        self._ee_pose: PoseStamped | None = None
        self._twist_in_other_frame: str | None = None
        # Refusals decided here rather than in the core (counts and the latest reason, for /diagnostics).
        self._commands_rejected_frame = 0
        self._gripper_commands_refused = 0
        self._last_refused_input = ""
        self._last_step_s: float | None = None
        self._servo_status = "not applicable"
        self._lock = threading.Lock()

        self.twist_out = self.create_publisher(TwistStamped, self._twist_out_topic(), COMMAND_QOS)
        self.pose_out = self.create_publisher(PoseStamped, "pose_target_out", COMMAND_QOS)
        self.gripper_out = self.create_publisher(GripperCommand, "gripper_out", COMMAND_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        taken_by_step = TakenByOutputStep()
        command_qos = QoSProfile(depth=COMMAND_QUEUE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self._twist_sub = self.create_subscription(
            TwistStamped, "twist_cmd", _ignored, command_qos, callback_group=taken_by_step
        )
        self._ee_pose_sub = self.create_subscription(
            PoseStamped, "ee_pose", _ignored, NEWEST_ONLY_QOS, callback_group=taken_by_step
        )
        self.create_subscription(GripperCommand, "gripper_cmd", self._on_gripper, COMMAND_QOS)
        self.create_subscription(Bool, "estop", self._on_estop, LATCHED_QOS)
        self.create_service(Trigger, "reset_estop", self._on_reset_estop)
        # The output loop gets its own group so slow callbacks elsewhere never delay a safety step.
        self.create_timer(1.0 / rate_hz, self._step, callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(1.0, self._publish_diagnostics)
        if self.output_mode == "servo":
            self._servo_group = MutuallyExclusiveCallbackGroup()
            self._servo_timer = self.create_timer(
                0.5, self._switch_servo_to_twist, callback_group=self._servo_group
            )
            self._servo_attempts = 0
            self._servo_status = "waiting for MoveIt Servo"

    def _twist_out_topic(self) -> str:
        return "sim_twist_out" if self.output_mode == "sim" else "servo_twist_out"

    # -- inputs ---------------------------------------------------------------------------------
    def _take_twist_commands(self, now: float) -> str | None:
        """Check every waiting twist command (called with the lock held); why the last refused one was."""
        refused = None
        for msg in take_waiting(self._twist_sub, COMMAND_QUEUE_DEPTH):
            if msg.header.frame_id and msg.header.frame_id != self.base_frame_id:
                self._twist_in_other_frame = msg.header.frame_id
                self._commands_rejected_frame += 1
                self._last_refused_input = (
                    f"twist command in frame '{msg.header.frame_id}' refused: expected '{self.base_frame_id}'"
                )
                continue
            t, w = msg.twist.linear, msg.twist.angular
            twist = np.array([t.x, t.y, t.z, w.x, w.y, w.z], dtype=np.float64)
            verdict = self.core.on_command(twist, stamp_to_s(msg.header.stamp), now)
            if verdict != ACCEPTED:
                refused = verdict
        if refused is None:
            return None
        return f"twist command {refused}: {self.core.status(now).last_reason}"

    def _take_ee_pose(self, now: float) -> None:
        """Record the newest waiting end-effector pose (called with the lock held)."""
        waiting = take_waiting(self._ee_pose_sub, NEWEST_ONLY_QOS.depth + 1)
        if waiting:
            self._ee_pose = msg = waiting[-1]
            p = msg.pose.position
            self.core.on_ee_pose(np.array([p.x, p.y, p.z]), now)

    def _log_refusals(self, refusal: str | None) -> None:
        if refusal is not None:
            self.get_logger().warn(refusal, throttle_duration_sec=2.0)
        if self._twist_in_other_frame is not None:
            self.get_logger().warn(
                f"twist in frame '{self._twist_in_other_frame}' refused: expected '{self.base_frame_id}' "
                "(set the policy's twist_frame_id)",
                throttle_duration_sec=5.0,
            )
            self._twist_in_other_frame = None

    def _on_gripper(self, msg: GripperCommand) -> None:
        with self._lock:
            latched = self.core.estop.latched
            if not latched and not np.isfinite(msg.position):
                self._gripper_commands_refused += 1
                self._last_refused_input = f"gripper command with position {msg.position} refused: not finite"
        if latched:
            self.get_logger().warn("gripper command ignored: e-stop latched", throttle_duration_sec=2.0)
            return
        if not np.isfinite(msg.position):
            self.get_logger().warn(
                "gripper command with non-finite position refused", throttle_duration_sec=2.0
            )
            return
        self.gripper_out.publish(msg)

    def _on_estop(self, msg: Bool) -> None:
        with self._lock:
            was_latched = self.core.estop.latched
            self.core.on_estop(bool(msg.data))
            latched = self.core.estop.latched
        if latched and not was_latched:
            # A stop someone asked for (an e-stop button, an operator's "stop", the end of an episode)
            # is the controller doing its job, not a fault: INFO here, while /diagnostics shows the
            # latched state at ERROR level until reset_estop.
            self.get_logger().info("e-stop latched on request: output is zero until reset_estop is called")

    def _on_reset_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            # Commands that arrived before the reset are taken now, while the e-stop still ignores
            # them: they must not move the arm after it.
            self._take_twist_commands(now_s(self))
            response.success = self.core.reset_estop()
            response.message = self.core.status(now_s(self)).last_reason or ""
        if response.success:
            self.get_logger().info(f"{response.message}: commands after this one move the arm again")
        else:
            self.get_logger().warn(response.message)
        return response

    # -- output ---------------------------------------------------------------------------------
    def _step(self) -> None:
        # One clock reading for the inputs taken, the decision and the stamp, so a consumer can check
        # from the stamps alone that nothing moved after the watchdog deadline, however late this ran.
        clock_now = self.get_clock().now()
        now = clock_now.nanoseconds * 1e-9
        with self._lock:
            self._take_ee_pose(now)
            refusal = self._take_twist_commands(now)
            result = self.core.step(now)
        stamp = clock_now.to_msg()
        if self.output_mode == "pose":
            self._publish_pose_target(result.twist, now, stamp)
        else:
            self._publish_twist(result.twist, stamp)
        self._log_refusals(refusal)

    def _publish_twist(self, twist: np.ndarray, stamp) -> None:
        out = TwistStamped()
        out.header.stamp = stamp
        out.header.frame_id = self.base_frame_id
        v = [float(x) for x in twist]
        out.twist.linear.x, out.twist.linear.y, out.twist.linear.z = v[0:3]
        out.twist.angular.x, out.twist.angular.y, out.twist.angular.z = v[3:6]
        self.twist_out.publish(out)

    def _publish_pose_target(self, twist: np.ndarray, now: float, stamp) -> None:
        pose = self._ee_pose
        dt = 0.0 if self._last_step_s is None else now - self._last_step_s
        self._last_step_s = now
        if pose is None:
            return  # no current pose: no target (the arm holds)
        p, q = pose.pose.position, pose.pose.orientation
        target = self.pose_integrator.step(twist, dt, [p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
        out = PoseStamped()
        out.header.stamp = stamp
        out.header.frame_id = self.base_frame_id
        out.pose.position.x, out.pose.position.y, out.pose.position.z = (float(x) for x in target.position_m)
        (out.pose.orientation.x, out.pose.orientation.y, out.pose.orientation.z, out.pose.orientation.w) = (
            float(x) for x in target.orientation_xyzw
        )
        self.pose_out.publish(out)

    def _switch_servo_to_twist(self) -> None:
        """Ask whichever MoveIt Servo is running to accept twist commands (Jazzy+, then Humble)."""
        self._servo_attempts += 1
        try:
            from moveit_msgs.srv import ServoCommandType
        except ImportError:
            ServoCommandType = None  # MoveIt not installed: only Humble's Trigger service can answer
        candidates = []
        if ServoCommandType is not None:
            candidates.append(
                (
                    "switch_command_type",
                    ServoCommandType,
                    lambda: ServoCommandType.Request(command_type=ServoCommandType.Request.TWIST),
                )
            )
        candidates.append(("start_servo", Trigger, Trigger.Request))
        for name, srv_type, make_request in candidates:
            client = self.create_client(srv_type, f"/servo_node/{name}")
            try:
                if client.wait_for_service(timeout_sec=0.2):
                    result = client.call(make_request(), timeout_sec=2.0)
                    ok = bool(result is not None and getattr(result, "success", False))
                    self._servo_status = f"{name} answered success={ok}"
                    self.get_logger().info(f"MoveIt Servo: {self._servo_status}")
                    self._servo_timer.cancel()
                    return
            finally:
                self.destroy_client(client)
        if self._servo_attempts == 10:
            self._servo_status = (
                "neither /servo_node/switch_command_type nor /servo_node/start_servo "
                "answered: is MoveIt Servo running? twists are published regardless"
            )
            self.get_logger().warn(self._servo_status)
        if self._servo_attempts >= 120:
            self._servo_timer.cancel()

    def _publish_diagnostics(self) -> None:
        now = now_s(self)
        with self._lock:
            status = self.core.status(now)
            node_refusals = {
                "commands_rejected_frame": self._commands_rejected_frame,
                "gripper_commands_refused": self._gripper_commands_refused,
                "last_refused_input": self._last_refused_input,
            }
        if status.estop_latched:
            level, message = ERROR, "e-stop latched"
        elif status.watchdog_expired:
            level, message = WARN, "no fresh command: holding zero"
        else:
            level, message = OK, "commanding"
        values = {
            "output_mode": self.output_mode,
            "servo": self._servo_status,
            "estop_latched": status.estop_latched,
            "commands_received": status.commands_received,
            "commands_accepted": status.commands_accepted,
            "commands_rejected_non_finite": status.commands_rejected_non_finite,
            "commands_rejected_stale": status.commands_rejected_stale,
            "commands_rejected_future": status.commands_rejected_future,
            "commands_rejected_out_of_order": status.commands_rejected_out_of_order,
            "commands_ignored_estop": status.commands_ignored_estop,
            "commands_rejected_frame": node_refusals["commands_rejected_frame"],
            "gripper_commands_refused": node_refusals["gripper_commands_refused"],
            "outputs": status.outputs,
            # Cumulative, "flag=count,...": replay reports difference two snapshots.
            "output_flag_counts": ",".join(f"{k}={v}" for k, v in sorted(status.output_flag_counts.items())),
            "time_since_last_command_s": status.time_since_last_command_s,
            "ee_pose_age_s": status.ee_pose_age_s,
            "last_output": list(status.last_output),
            "last_flags": ",".join(status.last_flags),
            "last_reason": status.last_reason or "",
            # A refusal the node decided (frame, gripper value); the core's are in last_reason.
            "last_refused_input": node_refusals["last_refused_input"],
        }
        self.diag_pub.publish(diagnostic_array(self, "controller", level, message, values))


def main(args=None) -> int:
    return spin_node(ControllerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
