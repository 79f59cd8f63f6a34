"""policy_node: camera frames + instruction -> OpenVLA step -> twist, gripper command, ActionStep.

A managed (lifecycle) node. ``configure`` loads the model (slow; progress goes to the log),
``activate`` starts acting, ``deactivate`` stops publishing, ``cleanup`` frees the model. With
``autostart`` (default true) it configures and activates itself for simple use.

Conventions of the outputs:
- ``twist_cmd`` (geometry_msgs/TwistStamped): the action's per-step deltas divided by
  ``control_period_s`` (a velocity, not a position), optionally scaled/signed/remapped per axis,
  in ``twist_frame_id``, stamped with the time of publication (MoveIt Servo halts on stale stamps).
- ``gripper_cmd`` (vla_ros/GripperCommand): position 1 = open, 0 = closed; ``close`` thresholded at
  ``gripper_threshold``; ``gripper_invert`` flips the policy's convention (OpenVLA's data: 1 = open).
- ``action_step`` (vla_ros/ActionStep): the raw step, for replay and audit.

A two-view checkpoint (trained with ``--wrist-camera-topic``; config.json ``num_images: 2``) also
reads ``wrist/image_raw``. Each scene frame goes to the model with the wrist frame nearest to it in
time (:class:`~vla_ros.policy.frame_pairing.FramePairer`). The pair must be within
``image_max_age_s``; a scene frame without such a wrist frame is refused (and counted) when the next
scene frame supersedes it, so a dead wrist camera shows on diagnostics and the arm gets no command
from half an observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from vla_ros.action import Policy, camera_views
from vla_ros.control.twist import action_to_twist, gripper_command
from vla_ros.image_codec import ImageCodecError, decode_compressed, image_converter, image_message_to_rgb
from vla_ros.model.options import DEFAULT_PRECISION, PRECISION_CHOICES_TEXT, resolve_device, resolve_precision
from vla_ros.msg import ActionStep, GripperCommand, Instruction
from vla_ros.nodes.common import (
    COMMAND_QOS,
    ERROR,
    OK,
    WARN,
    declare,
    diagnostic_array,
    now_s,
    s_to_stamp,
    sanitize_text,
    spin_node,
    stamp_to_s,
)
from vla_ros.policy.frame_pairing import FramePair, FramePairer, Stamped
from vla_ros.policy.worker import Frame, InferenceWorker, StepResult

# The parameters that make up the OutputConvention.
OUTPUT_PARAMETERS = (
    "control_period_s",
    "twist_frame_id",
    "axis_scale",
    "axis_sign",
    "axis_map",
    "gripper_threshold",
    "gripper_invert",
    "gripper_max_effort",
)


@dataclass(frozen=True)
class OutputConvention:
    """How a 7-D action becomes messages for this robot (see the module docstring)."""

    control_period_s: float = 0.2
    frame_id: str = "panda_link0"
    axis_scale: Sequence[float] = (1.0,) * 6
    axis_sign: Sequence[float] = (1.0,) * 6
    axis_map: Sequence[int] = (0, 1, 2, 3, 4, 5)
    gripper_threshold: float = 0.5
    gripper_invert: bool = False
    gripper_max_effort: float = 0.0


def step_messages(
    result: StepResult, convention: OutputConvention, stamp: Time, identity: dict[str, str]
) -> tuple[TwistStamped, GripperCommand, ActionStep]:
    """The three messages of one policy step, all stamped ``stamp`` (the time of publication)."""
    vector = result.action.vector
    velocity = action_to_twist(
        vector,
        convention.control_period_s,
        axis_scale=convention.axis_scale,
        axis_sign=convention.axis_sign,
        axis_map=convention.axis_map,
    )
    twist = TwistStamped()
    twist.header.stamp = stamp
    twist.header.frame_id = convention.frame_id
    linear, angular = twist.twist.linear, twist.twist.angular
    linear.x, linear.y, linear.z, angular.x, angular.y, angular.z = (float(v) for v in velocity)
    position, close = gripper_command(
        float(vector[6]), threshold=convention.gripper_threshold, invert=convention.gripper_invert
    )
    gripper = GripperCommand(
        position=float(position), close=bool(close), max_effort=convention.gripper_max_effort
    )
    gripper.header = twist.header
    step = ActionStep(
        action=[float(v) for v in vector],
        token_ids=[int(t) for t in result.action.token_ids],
        instruction=result.instruction,
        inference_time_s=float(result.action.inference_time_s),
        step=int(result.step),
        image_stamp=s_to_stamp(result.frame.stamp_s),
        **identity,
    )
    step.header = twist.header
    return twist, gripper, step


class PolicyNode(LifecycleNode):
    def __init__(self, policy: Policy | None = None, **kwargs) -> None:
        super().__init__("policy_node", **kwargs)
        self._injected_policy = policy
        self._declare_parameters()
        self._policy: Policy | None = None
        self._worker: InferenceWorker | None = None
        self._active = False
        self._last_error = ""
        # Why the last configure failed (None: it did not): on /diagnostics until a configure succeeds.
        self.configure_error: Exception | None = None
        self._refusal = ""  # why the last instruction was refused; cleared by the next accepted one
        self._identity: dict[str, str] = {}

        self.twist_pub = self.create_publisher(TwistStamped, "twist_cmd", COMMAND_QOS)
        self.gripper_pub = self.create_publisher(GripperCommand, "gripper_cmd", COMMAND_QOS)
        self.step_pub = self.create_publisher(ActionStep, "action_step", COMMAND_QOS)
        from diagnostic_msgs.msg import DiagnosticArray

        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Image, "image_raw", self._on_image, qos_profile_sensor_data)
        self.create_subscription(
            CompressedImage, "image_raw/compressed", self._on_compressed_image, qos_profile_sensor_data
        )
        self.create_subscription(Image, "wrist/image_raw", self._on_wrist_image, qos_profile_sensor_data)
        # Scene frames (their decoders and headers) with wrist messages (decoded only when used).
        self._pairer = FramePairer()
        self.create_subscription(Instruction, "instruction", self._on_instruction, COMMAND_QOS)
        self.create_subscription(String, "instruction_text", self._on_instruction_text, COMMAND_QOS)
        self.create_timer(1.0, self._publish_diagnostics)
        self._convention = self._output_convention()
        self.add_post_set_parameters_callback(self._on_parameters_set)

        if (
            self.get_parameter("autostart").value
            and self.trigger_configure() == TransitionCallbackReturn.SUCCESS
        ):
            self.trigger_activate()

    def _declare_parameters(self) -> None:
        declare(self, "autostart", True, "configure and activate on start-up")
        declare(self, "policy_backend", "openvla", "openvla (model core) or injected (composed use)")
        declare(
            self,
            "inference_backend",
            "local",
            "local: load model_dir here | remote: ask the `vla-ros serve` policy server at remote_url",
        )
        declare(self, "remote_url", "http://127.0.0.1:8000", "the policy server (inference_backend remote)")
        declare(
            self,
            "remote_timeout_s",
            1.0,
            "a remote step not answered within this gives no action for its frame (the watchdog brakes)",
        )
        declare(
            self,
            "remote_image_format",
            "png",
            "how frames travel: png (lossless) | raw (no encoding or decoding, more bytes) | jpeg (lossy)",
        )
        declare(self, "model_dir", "", "OpenVLA checkpoint directory in the Hugging Face layout")
        declare(self, "adapter_dir", "", "LoRA adapter directory (empty: none)")
        declare(self, "precision", DEFAULT_PRECISION, PRECISION_CHOICES_TEXT)
        declare(self, "quantization", "none", "none | 8bit | 4bit | 4bit-fp4 (bitsandbytes)")
        declare(self, "unnorm_key", "", "dataset statistics key (empty: the only one)")
        # Preprocessing belongs to the checkpoint: "auto" centre-crops exactly the models whose
        # config.json records training on random crops; true/false override it.
        self.declare_parameter(
            "center_crop",
            "auto",
            ParameterDescriptor(
                description="centre-crop images: auto (as config.json records) | true | false",
                dynamic_typing=True,
            ),
        )
        declare(self, "device", "auto", "auto | cpu | cuda")
        declare(
            self,
            "constrain_to_action_tokens",
            True,
            "decode only the 256 action tokens (an untrained or confused model cannot emit others)",
        )
        declare(self, "control_period_s", 0.2, "time one action step spans; twist = delta / period")
        declare(self, "max_rate_hz", 5.0, "upper bound on inference steps per second")
        declare(self, "image_max_age_s", 0.5, "frames older than this when inference starts are refused")
        declare(self, "max_image_pixels", 4096 * 4096, "larger images are refused")
        declare(self, "max_instruction_chars", 512, "longer instructions are refused")
        declare(self, "twist_frame_id", "panda_link0", "frame_id of the published twist")
        declare(self, "axis_scale", [1.0] * 6, "per-axis scale of [vx vy vz wx wy wz]")
        declare(self, "axis_sign", [1.0] * 6, "per-axis sign (+1/-1)")
        declare(self, "axis_map", [0, 1, 2, 3, 4, 5], "output axis i takes policy axis axis_map[i]")
        declare(self, "gripper_threshold", 0.5, "gripper values below this mean close")
        declare(self, "gripper_invert", False, "flip the policy's gripper convention (OpenVLA: 1 = open)")
        declare(self, "gripper_max_effort", 0.0, "GripperCommand.max_effort in newtons (0 = default)")

    def _p(self, name: str):
        return self.get_parameter(name).value

    def _output_convention(self) -> OutputConvention:
        return OutputConvention(
            control_period_s=float(self._p("control_period_s")),
            frame_id=self._p("twist_frame_id"),
            axis_scale=tuple(self._p("axis_scale")),
            axis_sign=tuple(self._p("axis_sign")),
            axis_map=tuple(self._p("axis_map")),
            gripper_threshold=float(self._p("gripper_threshold")),
            gripper_invert=bool(self._p("gripper_invert")),
            gripper_max_effort=float(self._p("gripper_max_effort")),
        )

    def _on_parameters_set(self, parameters) -> None:
        if any(p.name in OUTPUT_PARAMETERS for p in parameters):
            self._convention = self._output_convention()

    # -- lifecycle ------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._policy = self._injected_policy or self._load_policy()
            self._worker = InferenceWorker(
                self._policy,
                on_result=self._publish_step,
                clock_s=lambda: now_s(self),
                image_max_age_s=float(self._p("image_max_age_s")),
                max_rate_hz=float(self._p("max_rate_hz")),
                on_error=self._report_error,
            )
        except Exception as exc:  # a bad checkpoint must leave the node alive and say why
            self.configure_error = exc
            self._report_error(f"configure failed: {type(exc).__name__}: {exc}")
            self._policy = None
            return TransitionCallbackReturn.FAILURE
        views = camera_views(self._policy)
        if views > 2:
            self.configure_error = ValueError(
                f"the model looks at {views} camera views; this node feeds at most two "
                "(image_raw and wrist/image_raw)"
            )
            self._report_error(f"configure failed: {self.configure_error}")
            self._policy = self._worker = None
            return TransitionCallbackReturn.FAILURE
        self.configure_error = None
        # What every ActionStep says about the policy that made it.
        precision = getattr(self._policy, "precision", self._p("precision"))  # what "auto" became
        self._identity = {
            "model_id": str(getattr(self._policy, "name", "")),
            "adapter_id": str(self._p("adapter_dir")),
            "precision": f"{precision}/{self._p('quantization')}",
            "unnorm_key": str(getattr(self._policy, "unnorm_key", "") or self._p("unnorm_key")),
        }
        inputs = "image_raw + wrist/image_raw" if views == 2 else "image_raw"
        self.get_logger().info(
            f"policy ready: {getattr(self._policy, 'name', type(self._policy).__name__)} ({inputs})"
        )
        return TransitionCallbackReturn.SUCCESS

    def _load_policy(self) -> Policy:
        backend = self._p("policy_backend")
        if backend != "openvla":
            raise ValueError(f"policy_backend '{backend}' needs a policy passed in by the composing process")
        inference = self._p("inference_backend")
        if inference == "remote":
            from vla_ros.serving.client import RemotePolicy

            url = self._p("remote_url")
            self.get_logger().info(
                f"acting through the policy server at {url} (model settings are the server's)"
            )
            return RemotePolicy(
                url,
                float(self._p("remote_timeout_s")),
                robot_id=self.get_fully_qualified_name(),
                image_format=self._p("remote_image_format"),
            )
        if inference != "local":
            raise ValueError(f"inference_backend must be local or remote, got '{inference}'")
        model_dir = self._p("model_dir")
        if not model_dir:
            raise ValueError("parameter model_dir is empty: set it to an OpenVLA checkpoint directory")
        from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

        device = resolve_device(self._p("device"))
        precision = resolve_precision(self._p("precision"), device)
        self.get_logger().info(
            f"loading OpenVLA from {model_dir} ({precision} on {device}, "
            f"quantization={self._p('quantization')}); this can take minutes"
        )
        quantization = {"4bit": "4bit-nf4"}.get(self._p("quantization"), self._p("quantization"))
        config = PolicyConfig(
            checkpoint_dir=model_dir,
            adapter_dir=self._p("adapter_dir") or None,
            precision=precision,
            quantization=quantization,
            unnorm_key=self._p("unnorm_key") or None,
            center_crop=center_crop_setting(self._p("center_crop")),
            constrain_to_action_tokens=bool(self._p("constrain_to_action_tokens")),
            device=device,
        )
        policy = VLAPolicy(config)
        self.get_logger().info(f"loaded {model_dir} (unnorm_key={policy.unnorm_key})")
        return policy

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._worker is None:
            return TransitionCallbackReturn.FAILURE
        self._worker.start()
        self._active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._pairer.clear()
        if self._worker is not None:
            self._worker.stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        if self._worker is not None:
            self._worker.stop()
        self._worker = None
        self._policy = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self.on_cleanup(state)

    def destroy_node(self) -> None:
        # Stop inference before the publishers go away under the worker thread.
        self._active = False
        if self._worker is not None:
            self._worker.stop()
        super().destroy_node()

    # -- inputs ---------------------------------------------------------------------------------
    def _rgb(self, msg: Image):
        """An Image message as an RGB array (through cv_bridge where ROS has it; refusing images over
        ``max_image_pixels``)."""
        return image_message_to_rgb(msg, max_pixels=int(self._p("max_image_pixels")))

    def _on_image(self, msg: Image) -> None:
        self._submit(lambda: self._rgb(msg), msg.header)

    def _on_compressed_image(self, msg: CompressedImage) -> None:
        self._submit(
            lambda: decode_compressed(
                msg.format, bytes(msg.data), max_pixels=int(self._p("max_image_pixels"))
            ),
            msg.header,
        )

    def _on_wrist_image(self, msg: Image) -> None:
        for pair in self._pairer.add_wrist(Stamped(msg, stamp_to_s(msg.header.stamp))):
            self._hand_over(pair)

    def _wrist_for(self, pair: FramePair) -> tuple:
        """The wrist view of a pair, or why there is none."""
        if pair.wrist is None:
            raise ImageCodecError(
                "the model looks through a wrist camera too and no frame came on wrist/image_raw yet "
                "(remap it to the gripper camera's topic)"
            )
        gap_s = abs(pair.wrist.stamp_s - pair.scene.stamp_s)
        if gap_s > float(self._p("image_max_age_s")):
            raise ImageCodecError(
                f"the nearest wrist camera frame is {gap_s:.3f} s from the scene frame "
                f"(image_max_age_s={self._p('image_max_age_s')})"
            )
        return (self._rgb(pair.wrist.item),)

    def _submit(self, decode, header) -> None:
        if self._worker is None or not self._active:
            return
        scene = Stamped((decode, header), stamp_to_s(header.stamp))
        if camera_views(self._policy) != 2:
            self._hand_over(FramePair(scene, None))
            return
        for pair in self._pairer.add_scene(scene):
            self._hand_over(pair)

    def _hand_over(self, pair: FramePair) -> None:
        worker = self._worker
        if worker is None or not self._active:
            return
        decode, header = pair.scene.item
        try:
            rgb = decode()
            extra = self._wrist_for(pair) if camera_views(self._policy) == 2 else ()
        except ImageCodecError as exc:
            worker.report_error(f"refused image: {exc}")
            return
        worker.submit_frame(Frame(rgb=rgb, stamp_s=pair.scene.stamp_s, frame_id=header.frame_id, extra=extra))

    def _on_instruction(self, msg: Instruction) -> None:
        if msg.action == "stop":
            self._set_instruction(None, "stop instruction received: acting stops")
            return
        self._set_instruction(msg.text)

    def _on_instruction_text(self, msg: String) -> None:
        self._set_instruction(msg.data)

    def _set_instruction(self, text: str | None, note: str = "") -> None:
        if text is not None:
            try:
                text = sanitize_text(text, int(self._p("max_instruction_chars")))
                self._refusal = ""
            except ValueError as exc:
                self._refusal = f"refused instruction: {exc}"
                if self._worker is not None:
                    self._worker.report_error(self._refusal)  # counted; logged through _report_error
                else:
                    self._report_error(self._refusal)
                text = None
        if self._worker is not None:
            self._worker.set_instruction(text)
        self.get_logger().info(note or f"instruction: {text!r}")

    # -- outputs --------------------------------------------------------------------------------
    def _publish_step(self, result: StepResult) -> None:
        if not self._active:
            return
        stamp = self.get_clock().now().to_msg()
        twist, gripper, step = step_messages(result, self._convention, stamp, self._identity)
        self.twist_pub.publish(twist)
        self.gripper_pub.publish(gripper)
        self.step_pub.publish(step)

    def _report_error(self, message: str) -> None:
        self._last_error = message
        self.get_logger().error(message)

    def _publish_diagnostics(self) -> None:
        worker = self._worker
        if worker is None:
            # The reason it is not configured stays in view; later refusals do not replace it.
            reason = self.configure_error
            values = {
                "configure_error": f"{type(reason).__name__}: {reason}" if reason is not None else "",
                "last_error": self._refusal or self._last_error,
            }
            level, message = ERROR, "not configured" + (f": {reason}" if reason is not None else "")
        else:
            stats = worker.stats()
            values = {
                "active": self._active,
                "inference_backend": self._p("inference_backend"),
                "image_conversion": image_converter(),
                "instruction": worker.instruction or "",
                "steps": stats.steps,
                "rate_hz": stats.rate_hz,
                "inference_latency_p50_s": stats.latency_p50_s,
                "inference_latency_p95_s": stats.latency_p95_s,
                "frames_received": stats.frames_received,
                "frames_dropped": stats.frames_dropped,
                "frames_refused_stale": stats.frames_refused_stale,
                "errors": stats.errors,
                "refused_input": self._refusal,
                "last_error": self._refusal or stats.last_error or self._last_error,
            }
            level = WARN if (self._refusal or stats.errors or stats.frames_refused_stale) else OK
            message = "acting" if self._active and worker.instruction else "idle"
        self.diag_pub.publish(diagnostic_array(self, "policy", level, message, values))


def center_crop_setting(value: object) -> bool | None:
    """The ``center_crop`` parameter as PolicyConfig takes it: None ("auto") follows the checkpoint."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("auto", ""):
        return None
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"center_crop must be auto, true or false, got {value!r}")


def main(args=None) -> int:
    return spin_node(PolicyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
