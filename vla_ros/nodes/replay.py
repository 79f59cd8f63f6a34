"""Live rosbag replay in one process: a bag player, the real policy and controller nodes, a recorder.

:func:`run_live_replay` plays a bag's camera frames, instruction and end-effector poses at recorded
timing into a :class:`~vla_ros.nodes.policy_node.PolicyNode` and a
:class:`~vla_ros.nodes.controller_node.ControllerNode` (``output_mode`` sim), records what they
publish and reports frames dropped, latency and rate (:mod:`vla_ros.eval.live`).
:func:`run_actions_replay` sends the bag's recorded actions straight into the controller instead, to
check the control path without a model. All nodes live in one namespace (``replay`` by default) so
a replay on a machine with a running system does not feed its nodes; ``launch/replay.launch.py`` does
the same with ``ros2 bag play`` and separate processes on a full ROS install.

Bag messages are read with ``rosbags`` and become rclpy messages through CDR: the ``rosbags``
typestore serialises them and ``rclpy.serialization.deserialize_message`` reads the bytes, which
works for every message type both sides know (ours included).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from std_msgs.msg import String

from vla_ros.action import Policy, camera_views, checkpoint_views
from vla_ros.control.twist import action_to_twist, gripper_command
from vla_ros.data.bag import (
    ACTION_STEP_TYPE,
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    INSTRUCTION_TYPE,
    POSE_STAMPED_TYPE,
    STRING_TYPE,
    BagReader,
    TopicRequirement,
    stamp_to_ns,
)
from vla_ros.eval.live import (
    ActionsReplayReport,
    CommandRecord,
    ControllerCounters,
    LiveReplayReport,
    PolicyCounters,
    PublishedFrame,
    ReplayError,
    ReplayOptions,
    StepRecord,
    TwistRecord,
    summarize_actions,
    summarize_live,
)
from vla_ros.msg import ActionStep, GripperCommand
from vla_ros.nodes.common import COMMAND_QOS, stop_executor

# The recorder must not lose outputs while the machine is busy with inference.
_RECORD_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)

# Which topic of the policy / controller each kind of bag message is published on.
_CAMERA_OUT = {IMAGE_TYPE: "image_raw", COMPRESSED_IMAGE_TYPE: "image_raw/compressed"}
_INSTRUCTION_OUT = {INSTRUCTION_TYPE: "instruction", STRING_TYPE: "instruction_text"}


def message_class(msgtype: str) -> type:
    """The rclpy class of ``pkg/msg/Name``."""
    package, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as exc:
        raise ReplayError(
            f"message type {msgtype} is not available to rclpy here: install its interface package "
            "(or source the workspace that builds it)"
        ) from exc


def to_rclpy(msg: Any, msgtype: str, typestore: Any) -> Any:
    """A ``rosbags`` message object as the equivalent rclpy message (through CDR bytes)."""
    raw = typestore.serialize_cdr(msg, msgtype)
    return deserialize_message(bytes(raw), message_class(msgtype))


def _now_ns(node: Node) -> int:
    return node.get_clock().now().nanoseconds


def _ns_to_stamp(ns: int):
    from builtin_interfaces.msg import Time

    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


# ----------------------------------------------------------------------------------------------------------
# Player


@dataclass(frozen=True)
class _Route:
    bag_topic: str
    msgtype: str
    role: str  # camera | instruction | ee_pose | action


def check_replay_bag(bag: str | Path, options: ReplayOptions, mode: str) -> list[_Route]:
    """The bag topics a replay plays, checked before anything starts (errors name what is missing)."""
    o = options
    requirements: list[TopicRequirement] = []
    if mode == "live":
        requirements.append(
            TopicRequirement(o.camera_topic, "camera", (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE), "--camera-topic")
        )
        if o.instruction is None:
            if not o.instruction_topic:
                raise ReplayError(
                    "no instruction: give the bag's instruction topic (--instruction-topic) or a fixed "
                    "instruction (--instruction TEXT)"
                )
            requirements.append(
                TopicRequirement(
                    o.instruction_topic,
                    "instruction",
                    (INSTRUCTION_TYPE, STRING_TYPE),
                    "--instruction-topic, or --instruction TEXT for a fixed one",
                )
            )
        if o.wrist_camera_topic:
            requirements.append(
                TopicRequirement(o.wrist_camera_topic, "wrist_camera", (IMAGE_TYPE,), "--wrist-camera-topic")
            )
    elif mode == "actions":
        requirements.append(TopicRequirement(o.action_topic, "action", (ACTION_STEP_TYPE,), "--action-topic"))
    else:
        raise ValueError(f"mode must be 'live' or 'actions', got {mode!r}")
    with BagReader(bag) as reader:
        reader.require(requirements)
        topics = reader.topics
    routes = [_Route(r.topic, topics[r.topic].msgtype, r.role) for r in requirements]
    pose = topics.get(o.ee_pose_topic) if o.ee_pose_topic else None
    if pose is not None and pose.msgtype == POSE_STAMPED_TYPE and pose.count > 0:
        routes.append(_Route(o.ee_pose_topic, POSE_STAMPED_TYPE, "ee_pose"))
    return routes


class BagPlayer(Node):
    """Publishes a bag's input topics at recorded timing (scaled by ``rate``), restamped to now.

    ``mode="live"`` plays the camera, instruction and end-effector pose topics onto the policy's and
    controller's inputs; ``mode="actions"`` plays the recorded ActionSteps as the policy would publish
    them (TwistStamped ``delta / control_period_s`` on ``twist_cmd``, GripperCommand on
    ``gripper_cmd``) plus the poses. :meth:`play` blocks; run the node in an executor meanwhile (the
    pose hold timer is a ROS timer).
    """

    def __init__(self, bag: str | Path, options: ReplayOptions, mode: str = "live", **kwargs) -> None:
        super().__init__("bag_player", namespace=options.namespace, **kwargs)
        self.bag = Path(bag)
        self.options = options
        self.mode = mode
        self.routes = check_replay_bag(self.bag, options, mode)
        self.frames: list[PublishedFrame] = []
        self.commands: list[CommandRecord] = []
        self.published: dict[str, int] = {}
        self.passes_begun = 0
        self._lock = threading.Lock()
        self._latest_pose: PoseStamped | None = None
        self._last_frame_stamp = (-1, 0)  # (bag stamp, replay stamp) of the last camera frame
        self._outputs: dict[str, Any] = {}
        for route in self.routes:
            self._make_publishers(route)
        if options.instruction is not None:
            self._outputs["fixed_instruction"] = self.create_publisher(
                String, "instruction_text", COMMAND_QOS
            )
        self._outputs["ee_pose"] = self.create_publisher(PoseStamped, "ee_pose", COMMAND_QOS)
        if not any(r.role == "ee_pose" for r in self.routes):
            self.get_logger().info(
                f"no PoseStamped topic {options.ee_pose_topic!r} in the bag: the controller gets the fixed "
                f"pose {options.fixed_ee_pose_m}"
            )
            self._latest_pose = self._fixed_pose()
        self.create_timer(1.0 / options.ee_pose_hold_hz, self._hold_pose)

    # -- set-up ---------------------------------------------------------------------------------
    def _make_publishers(self, route: _Route) -> None:
        if route.role == "camera":
            self._outputs["camera"] = self.create_publisher(
                message_class(route.msgtype), _CAMERA_OUT[route.msgtype], qos_profile_sensor_data
            )
        elif route.role == "wrist_camera":
            self._outputs["wrist_camera"] = self.create_publisher(
                message_class(route.msgtype), "wrist/image_raw", qos_profile_sensor_data
            )
        elif route.role == "instruction":
            self._outputs["instruction"] = self.create_publisher(
                message_class(route.msgtype), _INSTRUCTION_OUT[route.msgtype], COMMAND_QOS
            )
        elif route.role == "action":
            self._outputs["twist"] = self.create_publisher(TwistStamped, "twist_cmd", COMMAND_QOS)
            self._outputs["gripper"] = self.create_publisher(GripperCommand, "gripper_cmd", COMMAND_QOS)

    def _fixed_pose(self) -> PoseStamped:
        msg = PoseStamped()
        msg.header.frame_id = self.options.base_frame_id
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (
            float(v) for v in self.options.fixed_ee_pose_m
        )
        msg.pose.orientation.w = 1.0
        return msg

    def wait_for_subscribers(self, timeout_s: float) -> None:
        """Block until every publisher has a subscriber, so the first messages are not lost."""
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [pub.topic_name for pub in self._outputs.values() if pub.get_subscription_count() == 0]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"nobody subscribed to {', '.join(missing)} within {timeout_s} s: are the policy and "
                    "controller nodes running in the same namespace and ROS domain?"
                )
            time.sleep(0.02)

    # -- playback -------------------------------------------------------------------------------
    def play(self, stop: threading.Event | None = None, on_pass: Callable[[int], None] | None = None) -> int:
        """Play ``options.passes`` times (forever if None) or until ``stop`` is set; returns passes begun."""
        stop = stop or threading.Event()
        passes = self.options.passes
        pass_index = 0
        while (passes is None or pass_index < passes) and not stop.is_set():
            if on_pass is not None:
                on_pass(pass_index)
            self.passes_begun = pass_index + 1
            self._play_once(pass_index, stop)
            pass_index += 1
        return pass_index

    def _play_once(self, pass_index: int, stop: threading.Event) -> None:
        if "fixed_instruction" in self._outputs:
            self._outputs["fixed_instruction"].publish(String(data=self.options.instruction))
        by_topic = {r.bag_topic: r for r in self.routes}
        counters: dict[str, int] = {}
        with BagReader(self.bag) as reader:
            typestore = reader.typestore
            t0_bag: int | None = None
            t0_wall = time.monotonic()
            for item in reader.messages(list(by_topic)):
                if t0_bag is None:
                    t0_bag = item.timestamp_ns
                due = t0_wall + (item.timestamp_ns - t0_bag) * 1e-9 / self.options.rate
                if stop.wait(max(0.0, due - time.monotonic())):
                    return
                route = by_topic[item.topic]
                index = counters.get(route.role, 0)
                counters[route.role] = index + 1
                msg = to_rclpy(item.msg, item.msgtype, typestore)
                self._publish(route, msg, pass_index, index, item.timestamp_ns)

    def _publish(self, route: _Route, msg: Any, pass_index: int, index: int, bag_time_ns: int) -> None:
        now = _now_ns(self)
        original = stamp_to_ns(msg.header.stamp) if hasattr(msg, "header") else bag_time_ns
        if route.role in ("camera", "wrist_camera"):
            # Frames taken together (one stamp in the bag) keep one stamp, so the policy pairs them.
            last_original, last_now = self._last_frame_stamp
            if original == last_original:
                now = last_now
            self._last_frame_stamp = (original, now)
        if hasattr(msg, "header"):
            msg.header.stamp = _ns_to_stamp(now)
        if route.role == "camera":
            self._outputs["camera"].publish(msg)
            with self._lock:
                self.frames.append(PublishedFrame(pass_index, index, bag_time_ns, original, now))
        elif route.role == "wrist_camera":
            self._outputs["wrist_camera"].publish(msg)
        elif route.role == "instruction":
            self._outputs["instruction"].publish(msg)
        elif route.role == "ee_pose":
            with self._lock:
                self._latest_pose = msg
            self._outputs["ee_pose"].publish(msg)
        elif route.role == "action":
            self._publish_action(msg, pass_index, index, bag_time_ns, now)
        with self._lock:
            self.published[route.role] = self.published.get(route.role, 0) + 1

    def _publish_action(self, step: Any, pass_index: int, index: int, bag_time_ns: int, now: int) -> None:
        action = np.asarray(step.action, dtype=np.float64)
        twist = action_to_twist(action, self.options.control_period_s)
        out = TwistStamped()
        out.header.stamp = _ns_to_stamp(now)
        out.header.frame_id = self.options.base_frame_id
        v = [float(x) for x in twist]
        out.twist.linear.x, out.twist.linear.y, out.twist.linear.z = v[0:3]
        out.twist.angular.x, out.twist.angular.y, out.twist.angular.z = v[3:6]
        position: float | None = None
        if np.isfinite(action[6]):
            # The policy node's defaults: threshold 0.5, 1 = open.
            position, close = gripper_command(float(action[6]))
            gripper = GripperCommand(position=float(position), close=bool(close), max_effort=0.0)
            gripper.header = out.header
        self._outputs["twist"].publish(out)
        if position is not None:
            self._outputs["gripper"].publish(gripper)
        with self._lock:
            self.commands.append(
                CommandRecord(
                    pass_index, index, bag_time_ns, now, tuple(float(a) for a in action), tuple(v), position
                )
            )

    def _hold_pose(self) -> None:
        with self._lock:
            pose = self._latest_pose
        if pose is None:
            return
        pose.header.stamp = self.get_clock().now().to_msg()
        self._outputs["ee_pose"].publish(pose)


# ----------------------------------------------------------------------------------------------------------
# Recorder


class ReplayRecorder(Node):
    """Records what the policy and controller publish during a replay, and their /diagnostics."""

    def __init__(self, namespace: str, **kwargs) -> None:
        super().__init__("replay_recorder", namespace=namespace, **kwargs)
        self._lock = threading.Lock()
        self.steps: list[StepRecord] = []
        self.twists: list[TwistRecord] = []
        self.controller_outputs: list[TwistRecord] = []
        self.grippers_out: list[float] = []
        self._diagnostics: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.create_subscription(ActionStep, "action_step", self._on_step, _RECORD_QOS)
        self.create_subscription(TwistStamped, "twist_cmd", self._twist_into(self.twists), _RECORD_QOS)
        for topic in ("sim_twist_out", "servo_twist_out"):
            self.create_subscription(
                TwistStamped, topic, self._twist_into(self.controller_outputs), _RECORD_QOS
            )
        self.create_subscription(GripperCommand, "gripper_out", self._on_gripper_out, _RECORD_QOS)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_step(self, msg: ActionStep) -> None:
        record = StepRecord(
            step=int(msg.step),
            image_stamp_ns=stamp_to_ns(msg.image_stamp),
            stamp_ns=stamp_to_ns(msg.header.stamp),
            received_ns=_now_ns(self),
            inference_time_s=float(msg.inference_time_s),
            action=tuple(float(a) for a in msg.action),
        )
        with self._lock:
            self.steps.append(record)

    def _twist_into(self, bucket: list[TwistRecord]):
        def callback(msg: TwistStamped) -> None:
            t, w = msg.twist.linear, msg.twist.angular
            record = TwistRecord(stamp_to_ns(msg.header.stamp), _now_ns(self), (t.x, t.y, t.z, w.x, w.y, w.z))
            with self._lock:
                bucket.append(record)

        return callback

    def _on_gripper_out(self, msg: GripperCommand) -> None:
        with self._lock:
            self.grippers_out.append(float(msg.position))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        received = _now_ns(self)
        with self._lock:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                self._diagnostics.setdefault(status.hardware_id, []).append((received, values))

    def count(self, name: str) -> int:
        with self._lock:
            return len(getattr(self, name))

    def snapshot(self) -> dict[str, list]:
        with self._lock:
            return {
                "steps": list(self.steps),
                "twists": list(self.twists),
                "controller_outputs": list(self.controller_outputs),
                "grippers_out": list(self.grippers_out),
            }

    def wait_for_diagnostic(self, node: Node, after_ns: int, timeout_s: float) -> dict[str, str]:
        """The first /diagnostics values of ``node`` received after ``after_ns`` (they come at 1 Hz)."""
        fqn = node.get_fully_qualified_name()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for received, values in self._diagnostics.get(fqn, []):
                    if received > after_ns:
                        return values
            time.sleep(0.02)
        raise ReplayError(f"no /diagnostics from {fqn} within {timeout_s} s: is the node still running?")


# ----------------------------------------------------------------------------------------------------------
# Composition


class _Composition:
    """A private rclpy context with an executor spinning in a background thread.

    Single-threaded: every callback here is short (the policy node infers in its own worker thread),
    and on a 2-core machine a MultiThreadedExecutor driven by ``spin_once`` starved the controller's
    output timer and the pose hold timer, so commands settled late or not at all.
    """

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes: list[Node] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="replay-executor", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        # A callback still running must finish before its node goes (see stop_executor).
        for exc in stop_executor(self.executor, timeout_s=2.0):
            if self.nodes:
                self.nodes[0].get_logger().error(f"callback failed: {type(exc).__name__}: {exc}")
        for node in reversed(self.nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _overrides(params: Mapping[str, Any]) -> list[Parameter]:
    return [Parameter(name, value=value) for name, value in params.items()]


def _controller(comp: _Composition, options: ReplayOptions, params: Mapping[str, Any] | None):
    from vla_ros.nodes.controller_node import ControllerNode

    merged = {"output_mode": "sim", "base_frame_id": options.base_frame_id, **(params or {})}
    return comp.add(
        ControllerNode(
            context=comp.context, namespace=options.namespace, parameter_overrides=_overrides(merged)
        )
    )


def _wait_until(predicate: Callable[[], bool], timeout_s: float, period_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period_s)
    return predicate()


def _play(player: BagPlayer, stop: threading.Event | None) -> tuple[int, bool]:
    """Play; Ctrl-C ends playback early but still lets the caller write its report."""
    try:
        return player.play(stop), False
    except KeyboardInterrupt:
        player.get_logger().warn("interrupted: playback stopped, writing the report of what was played")
        return -1, True


def run_live_replay(
    bag: str | Path,
    options: ReplayOptions | None = None,
    *,
    policy: Policy | None = None,
    model_dir: str | Path | None = None,
    policy_params: Mapping[str, Any] | None = None,
    controller_params: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
) -> LiveReplayReport:
    """Replay ``bag`` into a real PolicyNode and ControllerNode (sim output) and report what they did.

    The policy is ``policy`` (composed in-process, e.g. one already loaded) or loaded by the node
    from ``model_dir`` with ``policy_params`` (precision, device, ...). ``stop`` ends a looping replay.
    """
    from vla_ros.nodes.policy_node import PolicyNode

    options = options or ReplayOptions()
    if (policy is None) == (model_dir is None):
        raise ValueError("give exactly one of policy (an object) or model_dir (a checkpoint directory)")
    params: dict[str, Any] = {
        "control_period_s": options.control_period_s,
        "twist_frame_id": options.base_frame_id,
        **({"model_dir": str(model_dir)} if model_dir is not None else {"policy_backend": "injected"}),
        **(policy_params or {}),
    }
    check_replay_bag(bag, options, "live")  # before minutes of model loading
    views = checkpoint_views(model_dir) if model_dir is not None else camera_views(policy)
    if views == 2 and not options.wrist_camera_topic:
        raise ReplayError(
            "the model looks through a wrist camera too: name the bag's wrist camera topic "
            "(--wrist-camera-topic, e.g. /camera/wrist/image_raw)"
        )
    comp = _Composition()
    try:
        recorder = comp.add(ReplayRecorder(options.namespace, context=comp.context))
        policy_node = comp.add(
            PolicyNode(
                policy=policy,
                context=comp.context,
                namespace=options.namespace,
                parameter_overrides=_overrides(params),
            )
        )
        if getattr(policy_node, "_worker", None) is None:
            raise ReplayError(f"the policy node did not start: {getattr(policy_node, '_last_error', '')}")
        controller = _controller(comp, options, controller_params)
        player = comp.add(BagPlayer(bag, options, "live", context=comp.context))
        player.wait_for_subscribers(options.discovery_timeout_s)
        start_ns = _now_ns(player)
        policy_before = PolicyCounters.from_diagnostic(
            recorder.wait_for_diagnostic(policy_node, start_ns, options.discovery_timeout_s)
        )
        controller_before = ControllerCounters.from_diagnostic(
            recorder.wait_for_diagnostic(controller, start_ns, options.discovery_timeout_s)
        )
        t_play = time.monotonic()
        _, interrupted = _play(player, stop)
        played_s = time.monotonic() - t_play
        policy_after = _settle_policy(recorder, policy_node, player, policy_before, options.settle_timeout_s)
        controller_after = ControllerCounters.from_diagnostic(
            recorder.wait_for_diagnostic(controller, _now_ns(player), options.discovery_timeout_s)
        )
        records = recorder.snapshot()
        meta = {
            "bag": str(bag),
            "options": asdict(options),
            "passes_played": player.passes_begun,
            "interrupted": interrupted,
            "played_s": played_s,
            "policy": str(model_dir)
            if model_dir is not None
            else str(getattr(policy, "name", type(policy).__name__)),
            "policy_params": {k: v for k, v in params.items() if k != "policy_backend"},
        }
        with player._lock:
            frames = list(player.frames)
        return summarize_live(
            frames,
            records["steps"],
            records["twists"],
            records["controller_outputs"],
            policy_after.minus(policy_before),
            controller_after.minus(controller_before),
            meta,
        )
    finally:
        comp.close()


def _settle_policy(
    recorder: ReplayRecorder, policy_node: Node, player: BagPlayer, before: PolicyCounters, timeout_s: float
) -> PolicyCounters:
    """Wait until the policy has dealt with every frame it received and its steps were recorded."""
    deadline = time.monotonic() + timeout_s
    while True:
        after = PolicyCounters.from_diagnostic(
            recorder.wait_for_diagnostic(policy_node, _now_ns(player), max(2.0, timeout_s))
        )
        delta = after.minus(before)
        steps = delta.steps
        settled = delta.unaccounted == 0 and _wait_until(
            lambda steps=steps: recorder.count("steps") >= steps, timeout_s=1.0
        )
        if settled or time.monotonic() > deadline:
            return after


def run_actions_replay(
    bag: str | Path,
    options: ReplayOptions | None = None,
    *,
    controller_params: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
    tolerance: float = 1e-6,
) -> ActionsReplayReport:
    """Send the bag's recorded actions through a real ControllerNode; report what its safety path changed."""
    options = options or ReplayOptions()
    check_replay_bag(bag, options, "actions")
    comp = _Composition()
    try:
        recorder = comp.add(ReplayRecorder(options.namespace, context=comp.context))
        controller = _controller(comp, options, controller_params)
        player = comp.add(BagPlayer(bag, options, "actions", context=comp.context))
        player.wait_for_subscribers(options.discovery_timeout_s)
        before = ControllerCounters.from_diagnostic(
            recorder.wait_for_diagnostic(controller, _now_ns(player), options.discovery_timeout_s)
        )
        _, interrupted = _play(player, stop)
        last_window_s = _command_spacing_s(player.commands, options)
        time.sleep(last_window_s + 0.1)  # the last command's window
        after = ControllerCounters.from_diagnostic(
            recorder.wait_for_diagnostic(controller, _now_ns(player), options.discovery_timeout_s)
        )
        records = recorder.snapshot()
        limits = controller.core.limits
        meta = {
            "bag": str(bag),
            "options": asdict(options),
            "passes_played": player.passes_begun,
            "interrupted": interrupted,
            "controller_params": dict(controller_params or {}),
            "limits": {
                "max_linear_speed_m_s": list(limits.max_linear_speed_m_s),
                "max_angular_speed_rad_s": list(limits.max_angular_speed_rad_s),
                "workspace_min_m": list(limits.workspace_min_m),
                "workspace_max_m": list(limits.workspace_max_m),
            },
        }
        with player._lock:
            commands = list(player.commands)
        return summarize_actions(
            commands,
            records["controller_outputs"],
            after.minus(before),
            grippers_forwarded=records["grippers_out"],
            last_window_s=last_window_s,
            tolerance=tolerance,
            meta=meta,
        )
    finally:
        comp.close()


def _command_spacing_s(commands: list[CommandRecord], options: ReplayOptions) -> float:
    """The typical time between commands as played: the length of the last command's window."""
    stamps = np.asarray([c.stamp_ns for c in commands], dtype=np.float64)
    if stamps.size >= 2:
        return float(np.median(np.diff(stamps))) * 1e-9
    return options.control_period_s / options.rate
