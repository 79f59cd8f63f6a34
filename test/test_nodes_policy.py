"""policy_node over real DDS with a tiny OpenVLA checkpoint loaded through the real loader."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

PERIOD_S = 0.2


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from vla_ros.model.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


def _policy_node(ros, **overrides):
    from rclpy.parameter import Parameter

    from vla_ros.nodes.policy_node import PolicyNode

    params = {
        "precision": "fp32",
        "device": "cpu",
        "center_crop": False,
        "control_period_s": PERIOD_S,
        "max_rate_hz": 50.0,
        "image_max_age_s": 5.0,
        **overrides,
    }
    node = PolicyNode(
        context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
    )
    return ros.add(node)


class Operator:
    """Publishes camera frames and instructions; records everything the policy node publishes."""

    def __init__(self, ros) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import TwistStamped
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from vla_ros.msg import ActionStep, GripperCommand

        self.node = ros.node("camera_and_operator")
        self.lock = threading.Lock()
        self.twists: list = []
        self.grippers: list = []
        self.steps: list = []
        self.diagnostics: list = []
        self.node.create_subscription(TwistStamped, "twist_cmd", self._keep(self.twists), 50)
        self.node.create_subscription(GripperCommand, "gripper_cmd", self._keep(self.grippers), 50)
        self.node.create_subscription(ActionStep, "action_step", self._keep(self.steps), 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._keep(self.diagnostics), 50)
        self.image_pub = self.node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.text_pub = self.node.create_publisher(String, "instruction_text", 10)

    def _keep(self, bucket):
        def callback(msg) -> None:
            with self.lock:
                bucket.append(msg)

        return callback

    def say(self, text: str) -> None:
        from std_msgs.msg import String

        self.text_pub.publish(String(data=text))

    def frame(self, rgb: np.ndarray | None = None, age_s: float = 0.0, **fields) -> None:
        from sensor_msgs.msg import Image

        rgb = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8) if rgb is None else rgb
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3)
        msg.data = rgb.tobytes()
        for key, value in fields.items():
            setattr(msg, key, value)
        stamp_ns = self.node.get_clock().now().nanoseconds - int(age_s * 1e9)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        msg.header.frame_id = "camera"
        self.image_pub.publish(msg)

    def count(self, bucket) -> int:
        with self.lock:
            return len(bucket)


def _ready(ros, operator: Operator) -> None:
    assert ros.wait_for(
        lambda: (
            operator.image_pub.get_subscription_count() > 0 and operator.text_pub.get_subscription_count() > 0
        )
    )
    operator.say("pick up the red gear")
    time.sleep(0.3)


def test_frames_in_twist_gripper_and_action_step_out(ros, tiny_checkpoint) -> None:
    _policy_node(ros, model_dir=str(tiny_checkpoint))
    operator = Operator(ros)
    _ready(ros, operator)

    def got_outputs() -> bool:
        operator.frame()
        time.sleep(0.1)
        return operator.count(operator.steps) >= 2 and operator.count(operator.twists) >= 2

    assert ros.wait_for(got_outputs, timeout_s=60.0)
    with operator.lock:
        step, twist, gripper = operator.steps[0], operator.twists[0], operator.grippers[0]
    action = np.asarray(step.action)
    assert np.all(np.isfinite(action))
    published = np.array(
        [
            twist.twist.linear.x,
            twist.twist.linear.y,
            twist.twist.linear.z,
            twist.twist.angular.x,
            twist.twist.angular.y,
            twist.twist.angular.z,
        ]
    )
    np.testing.assert_allclose(published, action[:6] / PERIOD_S, rtol=1e-6, atol=1e-9)
    assert twist.header.frame_id == "panda_link0"
    assert len(step.token_ids) == 7 and all(31744 <= t <= 31999 for t in step.token_ids)
    assert step.instruction == "pick up the red gear"
    assert step.inference_time_s > 0
    assert gripper.close == (action[6] < 0.5)
    assert gripper.position == pytest.approx(float(np.clip(action[6], 0.0, 1.0)), abs=1e-6)
    # The twist is stamped when it is published, not with the (older) camera stamp.
    stamp = lambda t: t.sec + t.nanosec * 1e-9  # noqa: E731
    assert stamp(twist.header.stamp) >= stamp(step.image_stamp)


def test_the_output_convention_follows_a_parameter_change_at_run_time(ros, tiny_checkpoint) -> None:
    from rclpy.parameter import Parameter

    node = _policy_node(ros, model_dir=str(tiny_checkpoint))
    operator = Operator(ros)
    _ready(ros, operator)
    node.set_parameters(
        [Parameter("twist_frame_id", value="tool0"), Parameter("control_period_s", value=0.5)]
    )
    with operator.lock:
        seen = len(operator.steps)

    def got_new_step() -> bool:
        operator.frame()
        time.sleep(0.1)
        with operator.lock:
            return len(operator.steps) > seen + 1

    assert ros.wait_for(got_new_step, timeout_s=60.0)
    with operator.lock:
        step = operator.steps[-2]
        (twist,) = [t for t in operator.twists if t.header.stamp == step.header.stamp]
    assert twist.header.frame_id == "tool0"
    np.testing.assert_allclose(twist.twist.linear.x, step.action[0] / 0.5, rtol=1e-6, atol=1e-9)


def test_stale_frames_are_refused_and_a_burst_leaves_no_backlog(ros, tiny_checkpoint) -> None:
    node = _policy_node(ros, model_dir=str(tiny_checkpoint), image_max_age_s=0.5, max_rate_hz=5.0)
    operator = Operator(ros)
    _ready(ros, operator)
    for _ in range(3):
        operator.frame(age_s=10.0)
        time.sleep(0.3)
    assert operator.count(operator.steps) == 0
    assert node._worker.stats().frames_refused_stale >= 1

    for _ in range(100):
        operator.frame()
    # Sensor-data QoS is best effort with a shallow queue: DDS itself may drop part of a burst.
    time.sleep(2.0)
    settled = node._worker.stats()
    time.sleep(1.5)
    stats = node._worker.stats()
    print(
        f"burst of 100 frames: {stats.frames_received - 3} delivered, {stats.steps} steps, "
        f"{stats.frames_dropped} dropped by the worker, {stats.frames_refused_stale - 3} refused stale"
    )
    assert stats.frames_received > 3
    assert stats.steps <= 12, "frames must not queue up behind a slow model"
    assert stats.steps == settled.steps, "no backlog: nothing left to process once the burst is over"
    # Every delivered frame is accounted for once: acted on, replaced by a newer one, or (on a loaded
    # machine, when it waited past image_max_age_s) refused as stale. None is still waiting.
    accounted = stats.steps + stats.frames_dropped + stats.frames_refused_stale + stats.errors
    assert accounted == stats.frames_received, stats


def test_bad_inputs_are_reported_and_the_node_keeps_running(ros, tiny_checkpoint) -> None:
    node = _policy_node(ros, model_dir=str(tiny_checkpoint), max_image_pixels=640 * 480)
    operator = Operator(ros)
    _ready(ros, operator)
    bad_frames = [
        {"encoding": "32FC1"},
        {"step": 7},
        {"data": b""},
        {"height": 4000, "width": 4000, "step": 12000},  # too large, and data does not match
    ]
    for fields in bad_frames:
        operator.frame(**fields)
        time.sleep(0.2)
    operator.say("")
    operator.say("x" * 10_000)
    time.sleep(0.5)
    assert ros.wait_for(lambda: node._worker.stats().errors >= len(bad_frames), timeout_s=5.0)
    last_error = node._worker.stats().last_error
    assert "refused" in last_error
    assert operator.count(operator.steps) == 0, "bad frames and refused instructions must not act"
    # Still alive: a good instruction and frame produce a step.
    operator.say("push the bolt to the left")
    time.sleep(0.3)

    def acted() -> bool:
        operator.frame()
        time.sleep(0.2)
        return operator.count(operator.steps) > 0

    assert ros.wait_for(acted, timeout_s=30.0)
    assert ros.wait_for(lambda: operator.count(operator.diagnostics) > 0, timeout_s=5.0)
    with operator.lock:
        values = {kv.key: kv.value for kv in operator.diagnostics[-1].status[0].values}
    assert int(values["errors"]) >= len(bad_frames)


def test_precision_defaults_to_the_shared_auto_and_loads_fp32_on_the_cpu(ros, tiny_checkpoint) -> None:
    from rclpy.parameter import Parameter

    from vla_ros.model.options import DEFAULT_PRECISION
    from vla_ros.nodes.policy_node import PolicyNode

    params = {"model_dir": str(tiny_checkpoint), "device": "cpu", "center_crop": False}
    node = ros.add(
        PolicyNode(
            context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
        )
    )
    assert node.get_parameter("precision").value == DEFAULT_PRECISION == "auto"
    assert node._policy.precision == "fp32"  # what every ActionStep and /diagnostics report
    assert node._identity["precision"] == "fp32/none"


def test_missing_model_directory_is_reported_and_the_node_stays_up(ros) -> None:
    node = _policy_node(ros, model_dir="/nonexistent/openvla-7b")
    operator = Operator(ros)
    assert node._worker is None
    assert "/nonexistent/openvla-7b" in node._last_error

    def reports() -> list:
        with operator.lock:
            return [s for d in operator.diagnostics for s in d.status if s.name.endswith("policy")]

    assert ros.wait_for(lambda: any(s.message.startswith("not configured") for s in reports()), timeout_s=5.0)
    operator.frame()  # frames to an unconfigured node are ignored, not a crash
    time.sleep(0.3)
    assert operator.count(operator.steps) == 0
    # A refused instruction does not hide why the node cannot act.
    assert ros.wait_for(lambda: operator.text_pub.get_subscription_count() > 0)
    operator.say("")
    assert ros.wait_for(lambda: "refused instruction" in node._refusal, timeout_s=5.0)
    seen = len(reports())
    assert ros.wait_for(lambda: len(reports()) > seen, timeout_s=5.0)
    latest = reports()[-1]
    values = {kv.key: kv.value for kv in latest.values}
    assert (
        "/nonexistent/openvla-7b" in latest.message and "/nonexistent/openvla-7b" in values["configure_error"]
    )
    assert "refused instruction" in values["last_error"]


def test_a_two_view_checkpoint_acts_only_on_scene_and_wrist_frames_together(ros, tmp_path) -> None:
    """A checkpoint whose config says num_images 2 gets each scene frame with the wrist frame nearest to
    it; a scene frame without one is refused once the next scene frame comes, so the arm gets no
    command from half an observation."""
    import json

    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from vla_ros.model.tiny import make_tiny_checkpoint
    from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

    checkpoint = make_tiny_checkpoint(tmp_path / "two_view", seed=1)
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "num_images": 2}))
    node = _policy_node(ros, model_dir=str(checkpoint), image_max_age_s=1.0)
    assert node._policy.num_images == 2
    operator = Operator(ros)
    wrist_pub = operator.node.create_publisher(Image, "wrist/image_raw", qos_profile_sensor_data)
    assert ros.wait_for(lambda: wrist_pub.get_subscription_count() > 0)
    _ready(ros, operator)
    scene = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    operator.frame(scene)
    time.sleep(0.3)
    assert node._worker.stats().errors == 0  # it may still get its wrist frame...
    operator.frame(scene)  # ...until a newer scene frame comes first
    assert ros.wait_for(lambda: node._worker.stats().errors >= 1, timeout_s=5.0)
    assert "wrist/image_raw" in node._worker.stats().last_error
    assert operator.count(operator.steps) == 0

    wrist = np.zeros((64, 64, 3), dtype=np.uint8)
    wrist[:, 32:] = 255

    def acted() -> bool:
        msg = Image(height=64, width=64, encoding="rgb8", step=64 * 3, data=wrist.tobytes())
        msg.header.stamp = operator.node.get_clock().now().to_msg()
        wrist_pub.publish(msg)
        time.sleep(0.05)
        operator.frame(scene)
        time.sleep(0.2)
        return operator.count(operator.steps) >= 1

    assert ros.wait_for(acted, timeout_s=60.0)
    with operator.lock:
        tokens = tuple(operator.steps[0].token_ids)
    # The node's step is the model's answer to this scene frame with this wrist frame.
    offline = VLAPolicy(PolicyConfig(checkpoint, precision="fp32", constrain_to_action_tokens=True))
    assert tokens == offline.predict_action(scene, "pick up the red gear", extra_images=(wrist,)).token_ids
    # ...which the wrist frame changes (so the comparison above tells which frame the node used).
    assert tokens != offline.predict_action(scene, "pick up the red gear", extra_images=(scene,)).token_ids

    # A wrist frame stamped further from the scene frame than image_max_age_s is not paired with it.
    # The last scene frame sent while waiting for the first step may still wait for its wrist frame:
    # one more wrist frame settles it, and then nothing is pending.
    fresh = Image(height=64, width=64, encoding="rgb8", step=64 * 3, data=wrist.tobytes())
    fresh.header.stamp = operator.node.get_clock().now().to_msg()
    wrist_pub.publish(fresh)
    time.sleep(0.5)
    errors, steps = node._worker.stats().errors, operator.count(operator.steps)
    stale = Image(height=64, width=64, encoding="rgb8", step=64 * 3, data=wrist.tobytes())
    stale_ns = operator.node.get_clock().now().nanoseconds - 3_000_000_000
    stale.header.stamp.sec, stale.header.stamp.nanosec = divmod(stale_ns, 1_000_000_000)
    wrist_pub.publish(stale)
    time.sleep(0.3)
    operator.frame(scene)
    time.sleep(0.1)
    operator.frame(scene)
    assert ros.wait_for(lambda: node._worker.stats().errors > errors, timeout_s=5.0)
    assert "from the scene frame" in node._worker.stats().last_error
    time.sleep(0.5)
    assert operator.count(operator.steps) == steps


def test_remote_backend_acts_through_a_policy_server_and_stops_when_it_goes_away(
    ros, tiny_checkpoint, free_port
):
    """A real Ray Serve policy server on this machine; the node loads no model of its own."""
    from vla_ros.policy.runtime import PolicyConfig
    from vla_ros.serving.server import build_app, policy_config_dict, start_server, stop_server

    app = build_app(policy_config_dict(PolicyConfig(checkpoint_dir=tiny_checkpoint, precision="fp32")))
    try:
        url = start_server(app, port=free_port(), num_cpus=2)
        _policy_node(ros, inference_backend="remote", remote_url=url, remote_timeout_s=10.0)
        operator = Operator(ros)
        _ready(ros, operator)

        def acting() -> bool:
            operator.frame()
            time.sleep(0.1)
            return operator.count(operator.twists) >= 2

        assert ros.wait_for(acting, timeout_s=60.0)
    finally:
        stop_server()  # the server goes away mid-run

    def reported() -> bool:
        operator.frame()
        time.sleep(0.1)
        with operator.lock:
            reports = [s for d in operator.diagnostics for s in d.status if s.name.endswith("policy")]
        values = {v.key: v.value for v in reports[-1].values} if reports else {}
        return "policy server" in values.get("last_error", "") and int(values.get("errors", 0)) > 0

    assert ros.wait_for(reported, timeout_s=60.0), "diagnostics never said the policy server is gone"
    count = operator.count(operator.twists)
    for _ in range(10):
        operator.frame()
        time.sleep(0.1)
    assert operator.count(operator.twists) == count, "the node kept publishing without a server"


def test_a_refused_instruction_shows_on_diagnostics_until_a_good_one_arrives(ros, tiny_checkpoint) -> None:
    node = _policy_node(ros, model_dir=str(tiny_checkpoint))
    operator = Operator(ros)
    _ready(ros, operator)
    operator.frame(encoding="32FC1")  # an older error, which must not mask the refusal below
    assert ros.wait_for(lambda: node._worker.stats().errors >= 1, timeout_s=5.0)
    errors = node._worker.stats().errors

    def latest_policy_status() -> dict[str, str]:
        with operator.lock:
            reports = [s for d in operator.diagnostics for s in d.status if s.name.endswith("policy")]
        return {v.key: v.value for v in reports[-1].values} if reports else {}

    operator.say("x" * 10_000)
    assert ros.wait_for(
        lambda: "refused instruction" in latest_policy_status().get("last_error", ""), timeout_s=5.0
    )
    status = latest_policy_status()
    assert "limit is 512" in status["refused_input"]
    assert int(status["errors"]) > errors, "a refusal counts as an error"

    operator.say("pick up the red gear")
    assert ros.wait_for(lambda: latest_policy_status().get("refused_input", "x") == "", timeout_s=5.0)
