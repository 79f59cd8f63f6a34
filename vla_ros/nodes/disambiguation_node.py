"""disambiguation_node: operator words -> one explicit instruction for the policy, a question, or a refusal.

The thinking is done by :class:`vla_ros.disambiguation.InstructionResolver`; this node only adapts
messages, keeps the dialogue state and enforces the limits on what an operator can send.

Inputs:
- ``operator_text`` (std_msgs/String): what the operator said, English or Chinese.
- ``clarification_answer`` (std_msgs/String): the reply to the latest question.
- ``scene`` (vla_ros/Scene, latched QoS): what is in the cell now, including the held object. Until
  one arrives the scene of ``static_scene_file`` is used (a fixed cell needs nothing else); each
  message replaces the scene in use.

Outputs:
- ``instruction`` (vla_ros/Instruction): only for resolved commands; ``text`` is the canonical
  English sentence the policy is prompted with, ``request_id`` the question it answers (if any).
- ``clarification`` (vla_ros/Clarification): a question when the words fit several things or none.
- ``estop`` (std_msgs/Bool, latched QoS): ``True`` on any stop word, on either input topic, pending
  question or not. An Instruction with ``action: stop`` follows so the policy stops acting too.
- ``feedback`` (std_msgs/String): refusals, timeouts and refused inputs, in the operator's language.
- ``/diagnostics`` at 1 Hz: counts, last reason, scene age, the pending request.

Dialogue rules:
- One question is pending at a time; answers go to it. It expires after ``clarification_timeout_s``:
  nothing is forwarded and the operator is told.
- A new instruction while a question is pending replaces the question: the operator has moved on, and
  an answer meant for the old question must not complete a command nobody is waiting for any more.
- Dialogue state (:class:`vla_ros.disambiguation.DialogueState`, ROS-free, given this node's clock):
  what the last ``history_length`` forwarded commands (not stop or home) acted on, by id, so "put it
  in the bin" later refers to what was done, not to how it was first phrased; the held object; the
  pending question; corrections ("no, the other one" replaces the last command).
- Inputs longer than ``max_input_chars`` are refused, but stop words in them still stop the arm.
  Control characters are removed by the core. Whatever arrives, the node answers and keeps running.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Bool, String

from vla_ros.disambiguation import (
    DialogueState,
    InstructionResolver,
    Resolution,
    Scene,
    SceneFormatError,
    load_vocabulary,
)
from vla_ros.disambiguation.scene import load_scene_file
from vla_ros.disambiguation.text import clean_text, detect_language
from vla_ros.msg import Clarification, Instruction
from vla_ros.msg import Scene as SceneMsg
from vla_ros.nodes.common import (
    COMMAND_QOS,
    LATCHED_QOS,
    OK,
    WARN,
    declare,
    diagnostic_array,
    now_s,
    spin_node,
    stamp_to_s,
)
from vla_ros.nodes.scene_convert import scene_msg_to_dict

# Actions whose canonical sentence is worth remembering for "it", "again", "the other one".
# Diagnostics stay WARN this long after an internal error or a refused scene message.
_RECENT_ERROR_S = 60.0


class StaticSceneError(SceneFormatError):
    """The static scene file cannot be read as a scene."""


def scene_from_msg(msg: SceneMsg) -> Scene:
    """A vla_ros/Scene message as the core's Scene (validated by the core)."""
    return Scene.from_dict(scene_msg_to_dict(msg))


def load_static_scene(path: str | Path) -> Scene:
    """The scene of ``static_scene_file``, held to the documented format like every scene file."""
    try:
        return load_scene_file(path)
    except SceneFormatError as exc:
        raise StaticSceneError(f"static_scene_file {exc}") from exc


class DisambiguationNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("disambiguation_node", **kwargs)
        self.max_input_chars = int(
            declare(
                self, "max_input_chars", 1000, "longer operator messages are refused (stop words still stop)"
            )
        )
        self.clarification_timeout_s = float(
            declare(
                self, "clarification_timeout_s", 30.0, "unanswered questions expire; nothing is forwarded"
            )
        )
        self.history_length = int(
            declare(self, "history_length", 8, "forwarded commands remembered for pronouns and 'again'")
        )
        static_scene_file = declare(
            self, "static_scene_file", "", "YAML/JSON scene of a fixed cell (empty: wait for the scene topic)"
        )
        base_vocabulary = declare(
            self,
            "vocabulary_file",
            "",
            "base vocabulary YAML (empty: the shipped config/disambiguation.yaml)",
        )
        extra_vocabulary = self.declare_parameter(
            "vocabulary_files",
            Parameter.Type.STRING_ARRAY,
            ParameterDescriptor(description="extra vocabulary YAML files merged after the base one"),
        ).value
        if self.max_input_chars < 1 or self.clarification_timeout_s <= 0.0 or self.history_length < 0:
            raise ValueError(
                "max_input_chars must be >= 1, clarification_timeout_s > 0 and history_length >= 0"
            )

        vocabulary = load_vocabulary(
            [base_vocabulary] if base_vocabulary else None, extra_paths=list(extra_vocabulary or [])
        )
        self.resolver = InstructionResolver(vocabulary)
        # The dictionaries load in the background: the node answers at once, and the first Chinese
        # instruction does not wait a second or two for them.
        threading.Thread(target=self.resolver.warm_up, name="resolver-warm-up", daemon=True).start()
        self._scene = load_static_scene(static_scene_file) if static_scene_file else Scene()
        self._scene_source = f"static file {static_scene_file}" if static_scene_file else "none yet"
        self._scene_stamp_s: float | None = None
        self._dialogue = DialogueState(
            max_turns=self.history_length, clarification_timeout_s=self.clarification_timeout_s
        )
        self._counts = dict.fromkeys(
            ("resolved", "clarify", "reject", "stop", "timeouts", "refused_inputs", "errors", "bad_scenes"), 0
        )
        self._last_reason = ""
        self._last_error_s: float | None = None

        self.instruction_pub = self.create_publisher(Instruction, "instruction", COMMAND_QOS)
        self.clarification_pub = self.create_publisher(Clarification, "clarification", COMMAND_QOS)
        self.estop_pub = self.create_publisher(Bool, "estop", LATCHED_QOS)
        self.feedback_pub = self.create_publisher(String, "feedback", COMMAND_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(String, "operator_text", self._on_operator_text, COMMAND_QOS)
        self.create_subscription(String, "clarification_answer", self._on_answer, COMMAND_QOS)
        self.create_subscription(SceneMsg, "scene", self._on_scene, LATCHED_QOS)
        # All callbacks share the node's default (mutually exclusive) group: dialogue state needs no lock.
        self.create_timer(0.1, self._expire_pending)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f"ready: scene from {self._scene_source} ({len(self._scene.objects)} objects, "
            f"{len(self._scene.locations)} locations)"
        )

    # -- inputs ---------------------------------------------------------------------------------
    def _on_operator_text(self, msg: String) -> None:
        self._guarded(self._handle_instruction, msg.data)

    def _on_answer(self, msg: String) -> None:
        self._guarded(self._handle_answer, msg.data)

    def _on_scene(self, msg: SceneMsg) -> None:
        try:
            scene = scene_from_msg(msg)
        except (SceneFormatError, ValueError, TypeError) as exc:
            self._counts["bad_scenes"] += 1
            self._last_error_s = now_s(self)
            self._note(f"scene message refused, keeping the previous scene: {exc}", error=True)
            return
        self._scene = scene
        self._scene_source = "scene topic"
        self._scene_stamp_s = stamp_to_s(msg.header.stamp) if msg.header.stamp.sec else now_s(self)

    def _guarded(self, handler, text: Any) -> None:
        """Nothing an operator types may take the node down: errors are reported, never raised."""
        try:
            handler(text if isinstance(text, str) else str(text))
        except Exception as exc:  # the node must survive any input
            self._counts["errors"] += 1
            self._last_error_s = now_s(self)
            self._note(f"internal error handling input: {type(exc).__name__}: {exc}", error=True)
            self._feedback("internal error: nothing was forwarded; please rephrase")

    # -- dialogue -------------------------------------------------------------------------------
    def _handle_instruction(self, text: str) -> None:
        if len(text) > self.max_input_chars:
            self._refuse_long(text)
            return
        if self._ignore_if_empty(text):
            return
        self._dialogue.set_time(now_s(self))
        result = self.resolver.resolve(text, self._scene, self._dialogue, holding=self._scene.holding)
        if result.action != "stop" and self._dialogue.pending is not None:
            dropped = self._dialogue.clear_pending()
            self.get_logger().info(f"question {dropped.request_id} dropped: a new instruction replaces it")
        self._act_on(result, request_id="")

    def _handle_answer(self, text: str) -> None:
        pending = self._dialogue.pending
        if len(text) > self.max_input_chars:
            self._refuse_long(text)
            return
        if self._ignore_if_empty(text):
            return
        if pending is None:
            result = self.resolver.resolve(text, self._scene, self._dialogue)
            if result.action == "stop":
                self._act_on(result, request_id="")
                return
            self._note("answer received but no question is pending")
            self._feedback_localized(
                detect_language(text),
                "no question is pending: send instructions on operator_text",
                "当前没有待回答的问题，请直接下达指令",
            )
            return
        result = self.resolver.answer(pending.resolution, text, self._scene)
        self._act_on(result, request_id=pending.request_id)

    def _act_on(self, result: Resolution, request_id: str) -> None:
        """Publish what a resolution means: instruction (+ e-stop), question, or refusal."""
        if result.status == "resolved" and result.action == "stop":
            self._stop(result, request_id)
        elif result.status == "resolved":
            self._dialogue.record(result, now_s(self), request_id)
            self._counts["resolved"] += 1
            self._publish_instruction(result, request_id)
            self.get_logger().info(f"forwarded: {result.instruction!r} (from {result.raw_text!r})")
        elif result.status == "clarify":
            self._counts["clarify"] += 1
            self._ask(result, request_id or self._new_request_id())
        else:
            self._dialogue.record(result, now_s(self), request_id)
            self._counts["reject"] += 1
            self._note(f"refused {result.raw_text[:80]!r}: {result.reason}", warn=True)
            self._feedback(result.reason)  # the core words refusals in the operator's language

    def _stop(self, result: Resolution, request_id: str) -> None:
        """Stop bypasses the dialogue: e-stop first, then tell the policy, then forget the question."""
        self.estop_pub.publish(Bool(data=True))
        self._publish_instruction(result, request_id)
        self._dialogue.record(result, now_s(self), request_id)
        self._counts["stop"] += 1
        # The operator asked for it: the node doing its job, not an error.
        self._note(f"stop from {result.raw_text[:80]!r}: e-stop published")

    def _ask(self, result: Resolution, request_id: str) -> None:
        self._dialogue.record(result, now_s(self), request_id)
        msg = Clarification()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.request_id = request_id
        msg.question = result.question
        msg.language = result.language
        msg.raw_text = result.raw_text
        msg.candidate_ids = list(result.candidates)
        msg.candidate_names = [self._name_of(c) for c in result.candidates]
        msg.timeout_s = float(self.clarification_timeout_s)
        self.clarification_pub.publish(msg)
        self._last_reason = result.reason or result.question
        self.get_logger().info(f"asking ({request_id}): {result.question}")

    def _expire_pending(self) -> None:
        pending = self._dialogue.expire(now_s(self))
        if pending is None:
            return
        self._counts["timeouts"] += 1
        self._note(
            f"question {pending.request_id} unanswered for {self.clarification_timeout_s:g} s: dropped"
        )
        self._feedback_localized(
            pending.resolution.language,
            f"no answer within {self.clarification_timeout_s:g} s: nothing was done "
            f"(for '{pending.resolution.raw_text[:80]}')",
            f"{self.clarification_timeout_s:g} 秒内没有回答：未执行（“{pending.resolution.raw_text[:80]}”）",
        )

    def _ignore_if_empty(self, text: str) -> bool:
        """Empty or control-only messages change nothing (no question, no dropped question)."""
        if clean_text(text)[0]:
            return False
        self._counts["refused_inputs"] += 1
        self._note("empty input ignored (nothing left after removing control characters)", warn=True)
        self._feedback("empty input ignored: nothing was done")
        return True

    def _refuse_long(self, text: str) -> None:
        """Too long to read, but a stop word anywhere the core scans still stops the arm."""
        result = self.resolver.resolve(text, self._scene)
        if result.status == "resolved" and result.action == "stop":
            self._stop(result, request_id="")
            return
        self._counts["refused_inputs"] += 1
        language = detect_language(text[: self.max_input_chars])
        self._note(
            f"input of {len(text)} characters refused (max_input_chars={self.max_input_chars})", warn=True
        )
        self._feedback_localized(
            language,
            f"input too long ({len(text)} characters; limit {self.max_input_chars}): nothing was done",
            f"输入太长（{len(text)}个字符，上限{self.max_input_chars}）：未执行",
        )

    # -- outputs --------------------------------------------------------------------------------
    def _publish_instruction(self, result: Resolution, request_id: str) -> None:
        msg = Instruction()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.text = result.instruction
        msg.raw_text = result.raw_text
        msg.language = result.language
        msg.action = result.action or ""
        msg.object_id = result.object_id or ""
        msg.target_id = result.target_id or ""
        msg.direction = result.direction or ""
        msg.confidence = float(result.confidence)
        msg.request_id = request_id
        self.instruction_pub.publish(msg)

    def _feedback_localized(self, language: str, english: str, chinese: str) -> None:
        self._feedback(chinese if language == "zh" else english)

    def _feedback(self, text: str) -> None:
        self.feedback_pub.publish(String(data=text))

    def _note(self, message: str, error: bool = False, warn: bool = False) -> None:
        self._last_reason = message
        # rclpy ties a severity to each call site, so each severity gets its own line.
        if error:
            self.get_logger().error(message)
        elif warn:
            self.get_logger().warn(message)
        else:
            self.get_logger().info(message)

    def _name_of(self, entity_id: str) -> str:
        entity = self._scene.entity(entity_id)
        return entity.name if entity is not None else entity_id

    def _new_request_id(self) -> str:
        return f"clarify-{uuid.uuid4().hex[:12]}"

    def _publish_diagnostics(self) -> None:
        scene_age_s = -1.0 if self._scene_stamp_s is None else max(0.0, now_s(self) - self._scene_stamp_s)
        if self._last_error_s is not None and now_s(self) - self._last_error_s < _RECENT_ERROR_S:
            level, message = WARN, "an input or scene was refused in the last minute (see last_reason)"
        elif not self._scene.objects and not self._scene.locations:
            level, message = WARN, "no scene yet: every instruction will be asked about"
        else:
            level, message = OK, "ready"
        values = {
            **self._counts,
            "pending_request_id": self._dialogue.pending.request_id if self._dialogue.pending else "",
            "history_length": len(self._dialogue.turns()),
            "scene_source": self._scene_source,
            "scene_age_s": scene_age_s,
            "scene_objects": len(self._scene.objects),
            "scene_locations": len(self._scene.locations),
            "holding": self._scene.holding or "",
            "last_reason": self._last_reason,
        }
        self.diag_pub.publish(diagnostic_array(self, "disambiguation", level, message, values))


def main(args=None) -> int:
    return spin_node(DisambiguationNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
