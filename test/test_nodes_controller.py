"""controller_node over real DDS: watchdog, e-stop latch, limits on what reaches the arm."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

TIMEOUT_S = 0.5
RATE_HZ = 50.0


def _controller(ros, **overrides):
    from rclpy.parameter import Parameter

    from vla_ros.nodes.controller_node import ControllerNode

    params = {
        "output_mode": "sim",
        "output_rate_hz": RATE_HZ,
        "command_timeout_s": TIMEOUT_S,
        "command_max_age_s": 0.5,
        "max_linear_speed_m_s": [0.1, 0.1, 0.1],
        "max_linear_accel_m_s2": 1.0,
        **overrides,
    }
    node = ControllerNode(
        context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
    )
    return ros.add(node)


class Arm:
    """Plays the arm: publishes the end-effector pose and records what the controller commands."""

    def __init__(self, ros, position=(0.5, 0.0, 0.3)) -> None:
        from geometry_msgs.msg import PoseStamped, TwistStamped

        self.node = ros.node("fake_arm_io")
        self.outputs: list[tuple[float, np.ndarray]] = []
        self._lock = threading.Lock()
        self.node.create_subscription(TwistStamped, "sim_twist_out", self._on_twist, 50)
        self.pose_pub = self.node.create_publisher(PoseStamped, "ee_pose", 10)
        self.position = position
        self.node.create_timer(0.02, self._publish_pose)

    def _publish_pose(self) -> None:
        from geometry_msgs.msg import PoseStamped

        msg = PoseStamped()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = "panda_link0"
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = self.position
        msg.pose.orientation.w = 1.0
        self.pose_pub.publish(msg)

    def _on_twist(self, msg) -> None:
        t = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        v = np.array(
            [
                msg.twist.linear.x,
                msg.twist.linear.y,
                msg.twist.linear.z,
                msg.twist.angular.x,
                msg.twist.angular.y,
                msg.twist.angular.z,
            ]
        )
        with self._lock:
            self.outputs.append((t, v))

    def since(self, t0: float) -> list[tuple[float, np.ndarray]]:
        with self._lock:
            return [(t, v) for t, v in self.outputs if t >= t0]


class Policy:
    def __init__(self, ros, name: str = "fake_policy") -> None:
        from geometry_msgs.msg import TwistStamped

        # Publishes only: kept out of the executor, so that it can be destroyed like a dying process.
        self.node = ros.node(name, spin=False)
        self.pub = self.node.create_publisher(TwistStamped, "twist_cmd", 10)

    def send(self, vx: float) -> float:
        from geometry_msgs.msg import TwistStamped

        msg = TwistStamped()
        now = self.node.get_clock().now()
        msg.header.stamp = now.to_msg()
        msg.header.frame_id = "panda_link0"
        msg.twist.linear.x = vx
        self.pub.publish(msg)
        return now.nanoseconds * 1e-9


def _drive(policy: Policy, vx: float, duration_s: float, period_s: float = 0.1) -> float:
    last = 0.0
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        last = policy.send(vx)
        time.sleep(period_s)
    return last


def _drive_until(policy: Policy, vx: float, done, timeout_s: float = 10.0, period_s: float = 0.1) -> bool:
    """Command ``vx`` until ``done()``: a publisher can see its subscriber before the subscriber has
    matched it back, so the first commands of a new peer may be lost on a busy machine."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        policy.send(vx)
        if done():
            return True
        time.sleep(period_s)
    return done()


def test_controller_stops_when_commands_stop_arriving(ros) -> None:
    controller = _controller(ros)
    arm = Arm(ros)
    policy = Policy(ros)
    assert ros.wait_for(lambda: policy.pub.get_subscription_count() > 0)
    assert ros.wait_for(lambda: len(arm.outputs) > 5)
    start = policy.send(0.08)
    # Within a timeout, not a fixed second: on a loaded machine the first commands can be late.
    followed = _drive_until(policy, 0.08, lambda: any(v[0] > 0.05 for _, v in arm.since(start)))
    assert followed, "the arm never followed the command"
    last_stamp = _drive(policy, 0.08, 0.3)
    # Each output is stamped with the clock reading its value was decided at, so the safety
    # property is checked on stamps: nothing stamped at or after the deadline moves, however this
    # shared machine schedules the controller's timer. How soon the first zero is published is a
    # scheduling matter (exact-at-the-deadline is covered by the core's tests); here it only has
    # to happen.
    deadline = last_stamp + TIMEOUT_S
    assert ros.wait_for(lambda: any(t >= deadline for t, _ in arm.since(last_stamp)), timeout_s=10.0)
    time.sleep(0.2)
    after = arm.since(last_stamp)
    late = [(t - last_stamp, v) for t, v in after if t >= deadline and np.any(v)]
    assert not late, f"the arm was commanded to move after the watchdog deadline: {late[:3]}"
    # Once stopped, it stays stopped: checked from the arrival of the last command the controller
    # took. Before that, a zero is right too when the commands in flight are late (the watchdog ran
    # out on the one before), and so is moving again when a late one arrives still fresh.
    arrived = controller.core.watchdog.received_s
    assert arrived is not None
    first_zero = next(t for t, v in after if t >= arrived and not np.any(v))
    print(
        f"watchdog: zero twist {first_zero - last_stamp:.3f} s after the last command "
        f"(command_timeout_s={TIMEOUT_S}, output period={1 / RATE_HZ:.3f} s; "
        f"the controller's last command arrived {arrived - last_stamp:.3f} s after the last one was sent)"
    )
    assert all(not np.any(v) for t, v in after if t > first_zero), "the arm moved again without a command"


def test_estop_latches_and_survives_a_policy_restart(ros) -> None:
    from std_msgs.msg import Bool
    from std_srvs.srv import Trigger

    from vla_ros.nodes.common import LATCHED_QOS

    controller = _controller(ros)
    arm = Arm(ros)
    policy = Policy(ros)
    operator = ros.node("operator")
    estop_pub = operator.create_publisher(Bool, "estop", LATCHED_QOS)
    assert ros.wait_for(
        lambda: policy.pub.get_subscription_count() > 0 and estop_pub.get_subscription_count() > 0
    )
    assert _drive_until(policy, 0.08, lambda: any(v[0] > 0.05 for _, v in arm.since(0.0)))

    # Each press and release is waited for: with a depth-1 latched topic, a release published before
    # the press was taken would replace it, and this test is about what a delivered press does.
    estop_pub.publish(Bool(data=True))
    assert ros.wait_for(lambda: controller.core.estop.latched)
    estop_pub.publish(Bool(data=False))  # releasing the button does not clear the latch
    assert ros.wait_for(lambda: not controller.core.estop.engaged)
    assert controller.core.estop.latched
    # The policy process restarts (old publisher gone, a new one appears) and keeps commanding.
    ros.destroy(policy.node)
    restarted = Policy(ros, name="fake_policy_restarted")
    assert ros.wait_for(lambda: restarted.pub.get_subscription_count() > 0)
    t0 = restarted.send(0.08)
    _drive(restarted, 0.08, 1.0)
    latched = arm.since(t0 + 0.05)
    assert latched and all(not np.any(v) for _, v in latched), "output must stay zero while latched"

    client = operator.create_client(Trigger, "reset_estop")
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(Trigger.Request())
    assert ros.wait_for(future.done)
    assert future.result().success, future.result().message
    t_reset = restarted.send(0.08)
    assert _drive_until(restarted, 0.08, lambda: any(v[0] > 0.05 for _, v in arm.since(t_reset))), (
        "after reset, commands move the arm again"
    )


def test_nan_and_huge_commands_never_exceed_the_limits(ros) -> None:
    _controller(ros)
    arm = Arm(ros)
    policy = Policy(ros)
    assert ros.wait_for(lambda: policy.pub.get_subscription_count() > 0)
    t0 = policy.send(0.0)
    for vx in (1e9, float("nan"), -1e9, float("inf"), 5.0):
        _drive(policy, vx, 0.3)
    outputs = arm.since(t0)
    assert outputs
    speeds = np.array([v for _, v in outputs])
    assert np.all(np.isfinite(speeds))
    assert np.max(np.abs(speeds[:, :3])) <= 0.1 + 1e-9
    times = np.array([t for t, _ in outputs])
    gaps, changes = np.diff(times), np.abs(np.diff(speeds[:, 0]))
    # Each output is stamped with the time the filter decided it at, so between two consecutive
    # outputs the change is at most accel * min(gap, max_output_interval = 1.5 periods). A gap of two
    # periods or more may hide outputs this subscriber missed (the controller's reliable writer keeps
    # the last 10, and this shared machine can stall the test's executor): across such a gap the limit
    # is checked over its duration. (The cap on a genuine stall is the safety filter's unit tests'.)
    period = 1.0 / RATE_HZ
    allowed = 1.0 * np.where(gaps >= 1.9 * period, gaps, np.minimum(gaps, 1.5 * period))
    worst = int(np.argmax(changes - allowed))
    # 1e-6: stamps near 1.8e9 s carry about 2e-7 s of float64 rounding.
    assert np.all(changes <= allowed + 1e-6), (changes[worst], gaps[worst])


def test_refusals_of_the_node_itself_show_on_diagnostics(ros) -> None:
    """A command in another frame and a gripper command with a NaN position are refused by the node,
    not the core: they too are counted on /diagnostics, with the reason."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import TwistStamped

    from vla_ros.msg import GripperCommand

    _controller(ros)
    Arm(ros)
    reports: list[dict[str, str]] = []
    watcher = ros.node("diagnostics_watcher")
    watcher.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda msg: reports.extend(
            {kv.key: kv.value for kv in s.values} for s in msg.status if s.name.endswith("controller")
        ),
        10,
    )
    policy = Policy(ros)
    gripper_pub = policy.node.create_publisher(GripperCommand, "gripper_cmd", 10)
    assert ros.wait_for(
        lambda: policy.pub.get_subscription_count() > 0 and gripper_pub.get_subscription_count() > 0
    )

    def counted(key: str) -> bool:
        return bool(reports) and int(reports[-1].get(key, "0")) > 0

    # Sent until counted: the first messages of a new peer can be lost on a busy machine.
    def twist_in_the_camera_frame() -> bool:
        msg = TwistStamped()
        msg.header.frame_id = "camera"
        msg.header.stamp = policy.node.get_clock().now().to_msg()
        policy.pub.publish(msg)
        return counted("commands_rejected_frame")

    def gripper_at_nan() -> bool:
        gripper_pub.publish(GripperCommand(position=float("nan")))
        return counted("gripper_commands_refused")

    assert ros.wait_for(twist_in_the_camera_frame, timeout_s=10.0, period_s=0.2)
    assert "frame 'camera' refused: expected 'panda_link0'" in reports[-1]["last_refused_input"]
    assert ros.wait_for(gripper_at_nan, timeout_s=10.0, period_s=0.2)
    assert "gripper command with position nan refused" in reports[-1]["last_refused_input"]


def test_servo_mode_switches_a_humble_servo_to_twist_commands(ros) -> None:
    """Without moveit_msgs (Jazzy's switch_command_type), Humble's start_servo Trigger is called."""
    from std_srvs.srv import Trigger

    calls: list[int] = []
    servo_node = ros.node("fake_moveit_servo")

    def start_servo(request, response):
        calls.append(1)
        response.success = True
        response.message = "servo started"
        return response

    servo_node.create_service(Trigger, "/servo_node/start_servo", start_servo)
    controller = _controller(ros, output_mode="servo")
    assert ros.wait_for(lambda: bool(calls), timeout_s=15.0), "the controller never asked Servo to start"
    assert ros.wait_for(
        lambda: controller._servo_status == "start_servo answered success=True", timeout_s=5.0
    )
    assert len(calls) == 1, "Servo is switched once, not on every timer tick"


# A policy gone wrong, in its own process: see the script's docstring.
FLOOD_SCRIPT = Path(__file__).parent / "flood_twist_commands.py"


def test_controller_keeps_its_output_rate_under_a_1khz_command_flood(ros, tmp_path) -> None:
    """A flood from another process must not starve the output step, nor get past the limits or the
    watchdog.

    Not a timing benchmark (benchmarks/bench_controller_flood.py is): the bound only catches a
    starved output step. Outputs must never pause for as long as the command timeout, the time the
    watchdog has to stop the arm. On this shared 2-core machine, 20-period pauses were seen without
    any flood, so a tighter bound would fail for reasons that are not the controller's.
    """
    import json
    import subprocess
    import sys

    _controller(ros)
    arm = Arm(ros)
    assert ros.wait_for(lambda: len(arm.outputs) > 5)
    flood = subprocess.run(
        [sys.executable, str(FLOOD_SCRIPT), "2.0"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert flood.returncode == 0, flood.stderr
    sent = json.loads(flood.stdout.strip().splitlines()[-1])
    first, last = sent["first"], sent["last"]
    assert sent["sent"] > 500, f"the flood itself did not run: {sent}"
    time.sleep(0.2)

    during = [(t, v) for t, v in arm.since(first) if t <= last]
    period = 1.0 / RATE_HZ
    stamps = np.array([t for t, _ in during])
    gaps = np.diff(np.concatenate(([first], stamps, [last]))) / period
    print(
        f"flood: {sent['sent']} commands in {last - first:.2f} s; {len(during)} outputs "
        f"({(last - first) / period:.0f} periods); largest gap {gaps.max():.2f} periods, "
        f"p99 {np.percentile(gaps, 99):.2f}"
    )
    assert gaps.max() * period < TIMEOUT_S, (
        f"the output step starved: {gaps.max():.1f} periods without an output"
    )
    speeds = np.array([v for _, v in during])
    assert np.all(np.isfinite(speeds))
    assert np.max(np.abs(speeds[:, :3])) <= 0.1 + 1e-9
    assert np.max(np.abs(speeds[:, 3:])) <= 0.5 + 1e-9
    # And the watchdog still stops the arm once the flood is over.
    deadline = last + TIMEOUT_S
    assert ros.wait_for(lambda: any(t >= deadline for t, _ in arm.since(deadline)), timeout_s=10.0)
    late = [(t - last, v) for t, v in arm.since(deadline) if np.any(v)]
    assert not late, f"the arm was commanded to move after the watchdog deadline: {late[:3]}"
