"""The closed loop in one process: operator words -> disambiguation -> policy -> controller -> sim.

Every stage is the real node class, composed in one MultiThreadedExecutor and talking over DDS,
all with ``use_sim_time`` (sim_node publishes /clock), with the parameters of config/sim.yaml::

    operator_text --> disambiguation --instruction--> policy_node --twist_cmd/gripper_cmd-->
        controller_node (output_mode sim) --sim_twist_out/gripper_out--> sim_node --image_raw, ee_pose-->

The disambiguation stage is the real :class:`~vla_ros.nodes.disambiguation_node.DisambiguationNode`
(so "stop" latches the controller's e-stop, as on a real cell). A :class:`LoopDriver` node plays the operator
and the test bench: it resets the sim, speaks the operator's words, counts the policy's steps, asks
the sim whether the task is done, and says "stop" at the end of an episode.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
import yaml
from geometry_msgs.msg import TwistStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from vla_ros.action import Action, Policy, checkpoint_views
from vla_ros.errors import UserInputError
from vla_ros.model.options import DEFAULT_PRECISION, resolve_device, resolve_precision
from vla_ros.msg import ActionStep, Clarification, Instruction, Scene
from vla_ros.nodes.common import COMMAND_QOS, LATCHED_QOS, now_s, stamp_to_s, stop_executor
from vla_ros.nodes.controller_node import ControllerNode
from vla_ros.nodes.disambiguation_node import DisambiguationNode
from vla_ros.nodes.episode_recorder import EpisodeRecorder, Recording
from vla_ros.nodes.policy_node import PolicyNode
from vla_ros.nodes.sim_node import SimNode
from vla_ros.sim import ScriptedExpert, Task
from vla_ros.sim.closed_loop import EpisodeReport
from vla_ros.sim.layout import Layout
from vla_ros.srv import ResetEpisode

# The topic layout of launch/vla.launch.py (and so the data tools' default topics): the vla_ros nodes in
# /vla, the camera on /camera/image_raw, the arm's end-effector pose on /ee_pose.
NAMESPACE = "vla"
CAMERA_TOPIC = "/camera/image_raw"
EE_POSE_TOPIC = "/ee_pose"
REMAPS: dict[str, dict[str, str]] = {
    "sim_node": {
        "image_raw": CAMERA_TOPIC,
        "wrist/image_raw": "/camera/wrist/image_raw",
        "ee_pose": EE_POSE_TOPIC,
        "joint_states": "/joint_states",
    },
    "policy_node": {"image_raw": CAMERA_TOPIC, "wrist/image_raw": "/camera/wrist/image_raw"},
    "controller_node": {"ee_pose": EE_POSE_TOPIC},
    "episode_recorder": {"image_raw": CAMERA_TOPIC, "ee_pose": EE_POSE_TOPIC},
}
SIM_CONFIG = "sim.yaml"
CONFIG_DIR_ENV = "VLA_ROS_CONFIG_DIR"


# How often a thread waiting for the interpreter lock gets it (see ClosedLoop.__init__).
CLOSED_LOOP_SWITCH_INTERVAL_S = 2e-4


class ClosedLoopError(RuntimeError):
    """The loop could not run an episode (a node did not answer, a reset failed)."""


class PolicyLoadError(ClosedLoopError, UserInputError):
    """The policy node could not load the checkpoint it was given (missing, broken, refused)."""


# What the operator says, decided once the sim has laid out the episode (the demo words its request
# from the layout it sees), and how the operator answers a clarification question.
OperatorWords = Callable[[Task, Layout], str]
OperatorAnswer = Callable[[str], str]
# Questions an operator answers per episode before the loop gives up on the request.
MAX_ANSWERS = 2


@dataclass
class Dialogue:
    """What was said in one episode before the policy acted: questions asked and the answers given."""

    turns: list[str] = field(default_factory=list)


@dataclass
class ClosedLoopOptions:
    policy: str = "expert"  # expert | model
    model_dir: str = ""
    device: str = "cpu"
    precision: str = DEFAULT_PRECISION  # auto: bf16 on a GPU, fp32 on the CPU
    center_crop: bool | None = None  # None: as the checkpoint's config.json records
    quantization: str = "none"  # none | 8bit | 4bit (bitsandbytes NF4) for policy "model"
    real_time_factor: float = 1.0
    max_steps: int = 90
    keep_frames: bool = True
    episode_timeout_s: float = 180.0  # wall clock, a guard against a stuck loop


# ----------------------------------------------------------------------------------------------------------
# Configuration


def find_config_file(name: str) -> Path:
    """config/<name> from $VLA_ROS_CONFIG_DIR, an installed share/vla_ros/config, or the source tree."""
    candidates: list[Path] = []
    if env := os.environ.get(CONFIG_DIR_ENV):
        candidates.append(Path(env))
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "vla_ros" / "config")
    candidates.append(Path(__file__).resolve().parents[2] / "config")
    for directory in candidates:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"cannot find config/{name}; looked in {', '.join(map(str, candidates))}: run `make build` "
        f"(installs share/vla_ros/config) or set {CONFIG_DIR_ENV}"
    )


def load_node_parameters(path: Path, node_name: str) -> dict[str, Any]:
    """The ``ros__parameters`` a ROS params file gives ``node_name`` (``/**`` and ``/**/name`` keys too)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    params: dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}", f"/**/{node_name}"):
        params.update((data.get(key) or {}).get("ros__parameters") or {})
    return params


def _overrides(params: dict[str, Any]) -> list[Parameter]:
    return [Parameter(name, value=value) for name, value in params.items()]


def _remap_args(node_name: str) -> list[str]:
    args = ["--ros-args"]
    for src, dst in REMAPS.get(node_name, {}).items():
        args += ["-r", f"{src}:={dst}"]
    return args


# ----------------------------------------------------------------------------------------------------------
# Pieces


class WorkcellLockedPolicy:
    """The scripted expert reads the workcell (privileged state) from the policy's inference thread;
    this makes it take the sim node's workcell lock so physics never steps under it."""

    def __init__(self, policy: Policy, lock: threading.RLock) -> None:
        self.policy = policy
        self.lock = lock
        self.name = policy.name

    def predict_action(self, image, instruction: str) -> Action:
        with self.lock:
            return self.policy.predict_action(image, instruction)


class LoopDriver(Node):
    """The operator and the bench: speaks, listens to what the loop does, calls the sim's services."""

    def __init__(self, **kwargs) -> None:
        super().__init__("sim_loop_driver", **kwargs)
        self._cv = threading.Condition()
        self.instructions: list[Instruction] = []
        self.clarifications: list[Clarification] = []
        self.step_stamps_s: list[float] = []
        self.scene_stamp_s = -1.0
        self.operator_pub = self.create_publisher(String, "operator_text", COMMAND_QOS)
        self.answer_pub = self.create_publisher(String, "clarification_answer", COMMAND_QOS)
        self.twist_pub = self.create_publisher(TwistStamped, "twist_cmd", COMMAND_QOS)
        self.create_subscription(Instruction, "instruction", self._on_instruction, COMMAND_QOS)
        self.create_subscription(Clarification, "clarification", self._on_clarification, COMMAND_QOS)
        self.create_subscription(ActionStep, "action_step", self._on_step, COMMAND_QOS)
        self.create_subscription(Scene, "scene", self._on_scene, LATCHED_QOS)
        self.reset_client = self.create_client(ResetEpisode, "reset")
        self.success_client = self.create_client(Trigger, "check_success")
        self.estop_pub = self.create_publisher(Bool, "estop", LATCHED_QOS)
        self.reset_estop_client = self.create_client(Trigger, "reset_estop")

    def _on_instruction(self, msg: Instruction) -> None:
        with self._cv:
            self.instructions.append(msg)
            self._cv.notify_all()

    def _on_clarification(self, msg: Clarification) -> None:
        with self._cv:
            self.clarifications.append(msg)
            self._cv.notify_all()

    def _on_step(self, msg: ActionStep) -> None:
        with self._cv:
            self.step_stamps_s.append(stamp_to_s(msg.header.stamp))

    def _on_scene(self, msg: Scene) -> None:
        with self._cv:
            self.scene_stamp_s = stamp_to_s(msg.header.stamp)
            self._cv.notify_all()

    def wait(self, predicate, timeout_s: float) -> bool:
        with self._cv:
            return self._cv.wait_for(predicate, timeout=timeout_s)

    def say(self, text: str) -> None:
        self.operator_pub.publish(String(data=text))

    def answer(self, text: str) -> None:
        self.answer_pub.publish(String(data=text))

    def hold(self, frame_id: str) -> None:
        """A zero twist, so the controller stops now instead of after its command timeout."""
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = frame_id
        self.twist_pub.publish(msg)

    def steps_between(self, start_s: float, end_s: float = float("inf")) -> int:
        with self._cv:
            return sum(1 for s in self.step_stamps_s if start_s <= s <= end_s)

    def call(self, client, request, timeout_s: float = 10.0):
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise ClosedLoopError(f"service {client.srv_name} is not available: is sim_node running?")
        response = client.call(request, timeout_sec=timeout_s)
        if response is None:
            raise ClosedLoopError(f"service {client.srv_name} did not answer within {timeout_s} s")
        return response


# ----------------------------------------------------------------------------------------------------------
# The loop


class ClosedLoop:
    """Builds the nodes once; :meth:`run_episode` runs one episode through them. Use as a context manager."""

    def __init__(
        self, options: ClosedLoopOptions | None = None, task: str = "pick_place", seed: int = 0
    ) -> None:
        self.options = options = options or ClosedLoopOptions()
        if options.policy not in ("expert", "model"):
            raise ValueError(f"policy must be 'expert' or 'model', got {options.policy!r}")
        if options.policy == "model" and not options.model_dir:
            raise ValueError("--policy model needs --model DIR (an OpenVLA checkpoint directory)")
        config = find_config_file(SIM_CONFIG)
        # Every node runs in this one process, and the policy's decoding (thousands of small torch calls,
        # each giving up the interpreter lock and taking it back) waits at each call for the simulator's
        # and the executor's threads to hand the lock over, by default after up to 5 ms. That made one
        # step 1.4-8.5 s instead of 0.04 s, and the demo's episodes slow and flaky; handing over every
        # 0.2 ms made a step 0.33 s. Restored on close.
        self._switch_interval_s = sys.getswitchinterval()
        sys.setswitchinterval(CLOSED_LOOP_SWITCH_INTERVAL_S)
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self._nodes: list[Node] = []
        try:
            self.sim = self._add(
                SimNode,
                "sim_node",
                {
                    **load_node_parameters(config, "sim_node"),
                    "task": task,
                    "seed": int(seed),
                    "real_time_factor": float(options.real_time_factor),
                    # A two-view checkpoint looks through the gripper camera too.
                    **(
                        {"wrist_camera": True}
                        if options.policy == "model" and checkpoint_views(options.model_dir) > 1
                        else {}
                    ),
                },
            )
            self.disambiguation = self._make_disambiguation()
            policy_params = load_node_parameters(config, "policy_node")
            if options.policy == "expert":
                injected = WorkcellLockedPolicy(ScriptedExpert(self.sim.workcell), self.sim.workcell_lock)
                policy_params["policy_backend"] = "injected"
                self.policy_label = (
                    "scripted expert (privileged sim state, the upper bound; not a learned policy)"
                )
            else:
                injected = None
                policy_params.update(
                    model_dir=str(options.model_dir),
                    device=options.device,
                    precision=options.precision,
                    center_crop="auto" if options.center_crop is None else bool(options.center_crop),
                    quantization=options.quantization,
                )
                device = resolve_device(options.device)
                precision = resolve_precision(options.precision, device)
                dtype = (
                    precision if options.quantization == "none" else f"{options.quantization}, {precision}"
                )
                self.policy_label = f"OpenVLA checkpoint {options.model_dir} ({dtype}, {device})"
            self.policy = self._add(PolicyNode, "policy_node", policy_params, policy=injected)
            if self.policy._worker is None:
                error = self.policy.configure_error
                if isinstance(error, UserInputError):
                    raise PolicyLoadError(f"policy_node cannot load {options.model_dir}: {error}") from error
                raise ClosedLoopError(f"policy_node failed to configure: {self.policy._last_error}")
            controller_params = load_node_parameters(config, "controller_node")
            self.controller = self._add(ControllerNode, "controller_node", controller_params)
            self.frame_id = str(controller_params.get("base_frame_id", "panda_link0"))
            self.recorder = self._add(
                EpisodeRecorder, "episode_recorder", {}, keep_frames=options.keep_frames
            )
            self.driver = self._add(LoopDriver, "sim_loop_driver", {})
        except BaseException:
            self._teardown()
            raise
        self.executor = MultiThreadedExecutor(num_threads=6, context=self.context)
        for node in self._nodes:
            self.executor.add_node(node)
        self._stopping = threading.Event()
        self._spin_thread = threading.Thread(target=self._spin, name="closed-loop-executor", daemon=True)
        self._spin_thread.start()

    def _add(self, node_class, name: str, params: dict[str, Any], **kwargs) -> Any:
        """Construct a node in the loop's namespace, with its remaps, parameters and sim time."""
        node = node_class(
            context=self.context,
            namespace=NAMESPACE,
            cli_args=_remap_args(name),
            parameter_overrides=_overrides({**params, "use_sim_time": True}),
            **kwargs,
        )
        self._nodes.append(node)
        return node

    def _make_disambiguation(self) -> Node:
        params = load_node_parameters(find_config_file("disambiguation_node.yaml"), "disambiguation_node")
        # The workcell's own instruction wording (config/sim.yaml -> disambiguation_sim.yaml).
        params.update(load_node_parameters(find_config_file(SIM_CONFIG), "disambiguation_node"))
        return self._add(DisambiguationNode, "disambiguation_node", params)

    def _spin(self) -> None:
        while self.context.ok() and not self._stopping.is_set():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception as exc:
                if not self.context.ok() or self._stopping.is_set():
                    return
                # One failing callback must not stop every node of the loop: report it and go on.
                self.driver.get_logger().error(f"callback failed: {type(exc).__name__}: {exc}")

    def __enter__(self) -> ClosedLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop acting and spinning (running callbacks finish), then destroy the nodes and the workcell."""
        if getattr(self, "policy", None) is not None and self.policy._worker is not None:
            self.policy._worker.stop()
        executor = getattr(self, "executor", None)
        if executor is not None:
            self._stopping.set()
            self._spin_thread.join(timeout=5.0)
            # Callbacks already dispatched finish before their nodes are destroyed.
            for exc in stop_executor(executor, timeout_s=5.0):
                self.driver.get_logger().error(f"callback failed: {type(exc).__name__}: {exc}")
        self._teardown()

    def _teardown(self) -> None:
        if getattr(self, "policy", None) is not None and self.policy._worker is not None:
            self.policy._worker.stop()
        for node in reversed(self._nodes):
            node.destroy_node()
        self._nodes = []
        if getattr(self, "sim", None) is not None:
            self.sim.workcell.close()
        rclpy.try_shutdown(context=self.context)
        sys.setswitchinterval(self._switch_interval_s)

    # -- one episode ------------------------------------------------------------------------------
    def run_episode(
        self,
        episode: int,
        seed: int,
        task: str | None = None,
        operator_text: str | OperatorWords | None = None,
        bag_path: Path | None = None,
        storage: str = "mcap",
        answer: OperatorAnswer | None = None,
        dialogue: Dialogue | None = None,
    ) -> tuple[EpisodeReport, Recording]:
        """Reset the sim to ``seed``/``task``, say ``operator_text`` (default: the sim's own instruction;
        a callable words it from the episode's task and layout), answer each clarification question the
        disambiguation node asks with ``answer`` (up to MAX_ANSWERS; without it a question ends the
        episode), and let the loop act until the sim reports success or ``max_steps`` policy steps pass.
        ``dialogue`` collects the questions and answers."""
        driver, options = self.driver, self.options
        wall_start = time.perf_counter()
        reset_s = now_s(driver)
        response = driver.call(driver.reset_client, ResetEpisode.Request(task=task or "", seed=int(seed)))
        if not response.success:
            raise ClosedLoopError(f"sim reset failed: {response.message}")
        if not driver.wait(lambda: driver.scene_stamp_s >= reset_s, timeout_s=10.0):
            raise ClosedLoopError("sim_node published no scene after reset")
        task_name = self.sim.workcell.task.name
        self.recorder.start(since_s=reset_s, path=bag_path, storage=storage)
        try:
            if callable(operator_text):
                text = operator_text(self.sim.workcell.task, self.sim.workcell.layout)
            else:
                text = operator_text or response.instruction
            n_instructions, n_clarifications = len(driver.instructions), len(driver.clarifications)
            driver.say(text)
            for answers in range(MAX_ANSWERS + 1):
                answered = driver.wait(
                    lambda n=n_clarifications: (
                        len(driver.instructions) > n_instructions or len(driver.clarifications) > n
                    ),
                    timeout_s=10.0,
                )
                asked = driver.clarifications[n_clarifications:]
                if len(driver.instructions) > n_instructions or not asked or answer is None:
                    break
                if answers == MAX_ANSWERS:
                    break
                reply = answer(asked[-1].question)
                if dialogue is not None:
                    dialogue.turns += [asked[-1].question, reply]
                n_clarifications = len(driver.clarifications)
                driver.answer(reply)
            forwarded = driver.instructions[n_instructions:]
            resolution = "resolved" if forwarded else ("clarify" if answered else "timeout")
            instruction = forwarded[0].text if forwarded else ""
            start_s = now_s(driver)
            success, steps = False, 0
            sim_limit_s = options.max_steps * self.sim.workcell.control_period_s * 3.0 + 2.0
            while forwarded:
                time.sleep(0.05)
                steps = driver.steps_between(start_s)
                success = bool(driver.call(driver.success_client, Trigger.Request()).success)
                elapsed_sim = now_s(driver) - start_s
                if (
                    success
                    or steps >= options.max_steps
                    or elapsed_sim > sim_limit_s
                    or time.perf_counter() - wall_start > options.episode_timeout_s
                ):
                    break
            end_s = now_s(driver)
            if forwarded:
                steps = driver.steps_between(start_s, end_s)
            # Let the episode's messages still in flight reach the recorder: every action step the
            # driver saw (a fixed pause lost the last one on a loaded machine), then a moment for the
            # best-effort topics.
            seen = driver.steps_between(start_s) if forwarded else 0
            deadline = time.monotonic() + 5.0
            while self.recorder.count("action_step") < seen and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.1)
        finally:
            recording = self.recorder.stop()
        self._stop_acting()
        report = EpisodeReport(
            episode=episode,
            seed=int(seed),
            task=task_name,
            operator_text=text,
            instruction=instruction,
            resolution=resolution,
            success=success,
            steps=steps,
            sim_time_s=max(0.0, end_s - start_s) if forwarded else 0.0,
            wall_time_s=time.perf_counter() - wall_start,
            bag_path=str(bag_path or ""),
        )
        return report, recording

    def _stop_acting(self) -> None:
        """Operator says "stop" (through disambiguation, like any instruction), then a zero twist."""
        driver = self.driver
        n = len(driver.instructions)
        driver.say("stop")
        stopped = driver.wait(lambda: any(i.action == "stop" for i in driver.instructions[n:]), timeout_s=5.0)
        time.sleep(0.1)  # a policy step already under way may still publish
        if not stopped:  # with the stop forwarded the e-stop is latched and output zero already
            driver.hold(self.frame_id)
        t0, deadline = now_s(driver), time.monotonic() + 5.0
        while now_s(driver) - t0 < 0.2 and time.monotonic() < deadline:
            time.sleep(0.02)
        # "stop" latched the controller's e-stop (the disambiguation node treats it as an emergency
        # stop). Before the next episode the operator releases the button and resets it explicitly.
        driver.estop_pub.publish(Bool(data=False))
        for _ in range(20):
            if driver.call(driver.reset_estop_client, Trigger.Request()).success:
                break
            time.sleep(0.05)
        else:
            raise ClosedLoopError("the controller refused to reset its e-stop after the episode")
