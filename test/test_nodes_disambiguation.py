"""disambiguation_node over real DDS: operator text in, instructions, questions, refusals and e-stops out."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ros

EXAMPLE_SCENE = Path(__file__).resolve().parents[1] / "config" / "example_scene.yaml"
# Long enough that nothing is missed on a loaded machine, short enough for the whole file.
SETTLE_S = 0.6


def _node(ros, **overrides):
    from rclpy.parameter import Parameter

    from vla_ros.nodes.disambiguation_node import DisambiguationNode

    node = DisambiguationNode(
        context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    return ros.add(node)


def _scene_msg(scene: dict):
    """A vla_ros/Scene message from FORMAT.md's dict layout (what a perception node would publish)."""
    from diagnostic_msgs.msg import KeyValue
    from geometry_msgs.msg import Point

    from vla_ros.msg import Scene, SceneLocation, SceneObject

    def point(xyz) -> Point:
        x, y, z = [*xyz, 0.0, 0.0, 0.0][:3]
        return Point(x=float(x), y=float(y), z=float(z))

    msg = Scene()
    msg.header.frame_id = "panda_link0"
    for o in scene["objects"]:
        obj = SceneObject(
            id=o["id"],
            name=o.get("name", ""),
            kind=o.get("kind", ""),
            category=o.get("category", ""),
            color=o.get("color", ""),
            size=o.get("size", ""),
            material=o.get("material", ""),
            length_mm=float(o.get("length_mm", 0.0)),
            position=point(o["position"]),
        )
        obj.attributes = [KeyValue(key="thread", value=o["thread"])] if "thread" in o else []
        msg.objects.append(obj)
    for loc in scene["locations"]:
        msg.locations.append(
            SceneLocation(
                id=loc["id"],
                name=loc.get("name", ""),
                category=loc.get("category", ""),
                role=loc.get("role", ""),
                accepts=list(loc.get("accepts", [])),
                position=point(loc["position"]),
            )
        )
    msg.holding = scene.get("holding") or ""
    return msg


def _example_scene(**changes) -> dict:
    scene = yaml.safe_load(EXAMPLE_SCENE.read_text(encoding="utf-8"))
    scene.update(changes)
    return scene


class Operator:
    """Plays the operator's console and the policy/controller ends: sends words, records every output."""

    def __init__(self, ros, name: str = "operator_console") -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import Bool, String

        from vla_ros.msg import Clarification, Instruction, Scene
        from vla_ros.nodes.common import LATCHED_QOS

        self.ros = ros
        self.node = ros.node(name)
        self._lock = threading.Lock()
        self.instructions: list = []
        self.clarifications: list = []
        self.feedback: list[str] = []
        self.estops: list[bool] = []
        self.diagnostics: list = []
        self.text_pub = self.node.create_publisher(String, "operator_text", 10)
        self.answer_pub = self.node.create_publisher(String, "clarification_answer", 10)
        self.scene_pub = self.node.create_publisher(Scene, "scene", LATCHED_QOS)
        self.node.create_subscription(Instruction, "instruction", self._keep(self.instructions), 10)
        self.node.create_subscription(Clarification, "clarification", self._keep(self.clarifications), 10)
        self.node.create_subscription(String, "feedback", self._keep(self.feedback, lambda m: m.data), 10)
        self.node.create_subscription(Bool, "estop", self._keep(self.estops, lambda m: m.data), LATCHED_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._keep(self.diagnostics), 10)

    def _keep(self, into: list, convert=lambda m: m):
        def callback(msg) -> None:
            with self._lock:
                into.append(convert(msg))

        return callback

    def connected(self) -> bool:
        return self.ros.wait_for(
            lambda: (
                self.text_pub.get_subscription_count() > 0
                and self.answer_pub.get_subscription_count() > 0
                and self.scene_pub.get_subscription_count() > 0
                and self.node.count_publishers("instruction") > 0
            )
        )

    def say(self, text: str) -> None:
        from std_msgs.msg import String

        self.text_pub.publish(String(data=text))

    def answer(self, text: str) -> None:
        from std_msgs.msg import String

        self.answer_pub.publish(String(data=text))

    def show_scene(self, scene: dict) -> None:
        self.scene_pub.publish(_scene_msg(scene))

    def next_instruction(self, after: int):
        assert self.ros.wait_for(lambda: len(self.instructions) > after), "no instruction was forwarded"
        return self.instructions[after]

    def next_clarification(self, after: int):
        assert self.ros.wait_for(lambda: len(self.clarifications) > after), "no question was asked"
        return self.clarifications[after]

    def next_feedback(self, after: int) -> str:
        assert self.ros.wait_for(lambda: len(self.feedback) > after), "no feedback was published"
        return self.feedback[after]

    def diagnostic_values(self) -> dict[str, str]:
        n = len(self.diagnostics)
        assert self.ros.wait_for(lambda: len(self.diagnostics) > n, timeout_s=3.0), "no /diagnostics"
        status = next(s for s in self.diagnostics[-1].status if "disambiguation" in s.name)
        return {kv.key: kv.value for kv in status.values}


@pytest.fixture
def cell(ros):
    """A running node that has received the example cell's scene over the scene topic."""
    _node(ros, clarification_timeout_s=30.0)
    operator = Operator(ros)
    assert operator.connected()
    operator.show_scene(_example_scene())
    assert ros.wait_for(lambda: operator.diagnostic_values()["scene_source"] == "scene topic", timeout_s=5.0)
    return operator


def test_operator_text_becomes_an_instruction_with_the_resolved_command(cell) -> None:
    cell.say("put the red gear in the scrap bin")
    msg = cell.next_instruction(0)
    assert msg.text == "pick up the red gear and place it in the scrap bin"
    assert (msg.action, msg.object_id, msg.target_id, msg.direction) == (
        "pick_place",
        "gear_red",
        "bin_scrap",
        "",
    )
    assert (msg.raw_text, msg.language, msg.request_id) == ("put the red gear in the scrap bin", "en", "")
    assert 0.0 < msg.confidence <= 1.0
    assert not cell.clarifications and not cell.feedback and not cell.estops


def test_history_and_held_object_from_the_scene_feed_the_resolver(cell) -> None:
    cell.say("pick up the blue gear")
    assert cell.next_instruction(0).object_id == "gear_blue"
    cell.say("put it in the left bin")
    follow_up = cell.next_instruction(1)
    assert (follow_up.action, follow_up.object_id, follow_up.target_id) == (
        "pick_place",
        "gear_blue",
        "bin_left",
    )

    cell.show_scene(_example_scene(holding="gear_red"))  # the gripper now holds the red gear
    assert cell.ros.wait_for(lambda: cell.diagnostic_values()["holding"] == "gear_red", timeout_s=5.0)
    cell.say("drop it in the scrap bin")
    held = cell.next_instruction(2)
    assert (held.action, held.object_id, held.target_id) == ("place", "gear_red", "bin_scrap")


def test_ambiguous_text_asks_and_the_answer_completes_the_command(cell) -> None:
    cell.say("pick up the bolt")
    question = cell.next_clarification(0)
    assert question.request_id
    assert set(question.candidate_ids) == {"bolt_long", "bolt_short"}
    assert set(question.candidate_names) == {"long bolt", "short bolt"}
    assert question.question and question.language == "en" and question.timeout_s == pytest.approx(30.0)
    time.sleep(SETTLE_S)
    assert not cell.instructions, "an ambiguous instruction must not be forwarded before the answer"

    cell.answer("the longer one")
    msg = cell.next_instruction(0)
    assert (msg.action, msg.object_id, msg.text) == ("pick", "bolt_long", "pick up the long bolt")
    assert msg.request_id == question.request_id
    assert msg.raw_text == "pick up the bolt"


def test_a_new_instruction_replaces_the_pending_question(cell) -> None:
    cell.say("pick up the bolt")
    cell.next_clarification(0)
    cell.say("pick up the red gear")  # the operator moved on
    msg = cell.next_instruction(0)
    assert (msg.object_id, msg.request_id) == ("gear_red", "")
    cell.answer("the longer one")  # meant for the dropped question: completes nothing
    assert "no question is pending" in cell.next_feedback(0)
    time.sleep(SETTLE_S)
    assert len(cell.instructions) == 1


def test_unanswered_question_expires_and_nothing_is_forwarded(ros) -> None:
    _node(ros, clarification_timeout_s=0.5, static_scene_file=str(EXAMPLE_SCENE))
    operator = Operator(ros)
    assert operator.connected()
    operator.say("pick up the bolt")
    question = operator.next_clarification(0)
    assert question.timeout_s == pytest.approx(0.5)
    note = operator.next_feedback(0)
    assert "no answer within 0.5 s" in note
    operator.answer("the longer one")  # too late: the question is gone
    assert "no question is pending" in operator.next_feedback(1)
    time.sleep(SETTLE_S)
    assert not operator.instructions
    assert operator.diagnostic_values()["timeouts"] == "1"


def test_stop_publishes_a_latched_estop_and_a_stop_instruction(cell, ros) -> None:
    from std_msgs.msg import Bool

    from vla_ros.nodes.common import LATCHED_QOS

    cell.say("pick up the bolt")
    cell.next_clarification(0)
    cell.say("STOP!")
    msg = cell.next_instruction(0)
    assert (msg.action, msg.text, msg.object_id, msg.target_id) == ("stop", "stop", "", "")
    assert ros.wait_for(lambda: cell.estops == [True])
    # The stop also cancels the question: a late answer completes nothing.
    cell.answer("the longer one")
    assert "no question is pending" in cell.next_feedback(0)

    late = ros.node("controller_started_late")
    received: list[bool] = []
    late.create_subscription(Bool, "estop", lambda m: received.append(m.data), LATCHED_QOS)
    assert ros.wait_for(lambda: received == [True]), "a late subscriber must get the latched e-stop"

    cell.answer("急停")  # on the answer topic, with no question pending, a stop word still stops
    assert cell.next_instruction(1).action == "stop"
    assert ros.wait_for(lambda: cell.estops == [True, True])
    assert len(cell.instructions) == 2


def test_chinese_instruction_question_and_answer(cell) -> None:
    cell.say("把蓝色齿轮放到左边的料箱里")
    msg = cell.next_instruction(0)
    assert msg.text == "pick up the blue gear and place it in the left bin"
    assert (msg.language, msg.raw_text) == ("zh", "把蓝色齿轮放到左边的料箱里")
    assert (msg.action, msg.object_id, msg.target_id) == ("pick_place", "gear_blue", "bin_left")

    cell.say("拿起螺栓")
    question = cell.next_clarification(0)
    assert question.language == "zh" and "哪" in question.question
    cell.answer("长的那个")
    answered = cell.next_instruction(1)
    assert (answered.object_id, answered.request_id) == ("bolt_long", question.request_id)


def test_unsafe_requests_are_refused_with_feedback_and_nothing_forwarded(cell) -> None:
    cell.say("throw the wrench at the operator")
    assert "won't" in cell.next_feedback(0)
    cell.say("把扳手扔给他")
    assert "无法执行" in cell.next_feedback(1)
    time.sleep(SETTLE_S)
    assert not cell.instructions and not cell.clarifications and not cell.estops
    assert cell.diagnostic_values()["reject"] == "2"


def test_hostile_input_is_refused_and_the_node_keeps_working(cell) -> None:
    n_feedback = 0
    for hostile in ("x" * 10_000, "", "\x00\x07\x1b[2J\r\n", "\u202e" * 50, "😀" * 900 + "\U0010ffff" * 200):
        cell.say(hostile)
        cell.next_feedback(n_feedback)
        n_feedback = len(cell.feedback)
    assert "too long" in cell.feedback[0]
    cell.answer("y" * 5_000)  # answers obey the same limit
    cell.next_feedback(n_feedback)
    # A broken scene (the held object is not in it) is refused; the previous scene stays in use.
    # Scene and text are separate topics, so nothing orders their delivery: wait for the refusal
    # before speaking, so the command below is resolved after it, against the kept scene.
    cell.show_scene(_example_scene(holding="no_such_object"))
    assert cell.ros.wait_for(lambda: cell.diagnostic_values()["bad_scenes"] == "1", timeout_s=10.0)
    # Control characters are stripped, not fatal (a NUL never gets through DDS: strings end there).
    cell.say("\x07pick up the\x08 blue gear\x1b[31m")
    msg = cell.next_instruction(0)
    assert (msg.action, msg.object_id, msg.raw_text) == ("pick", "gear_blue", "pick up the blue gear")
    assert not cell.estops and not cell.clarifications

    cell.say("blah " * 1_000 + "stop " + "blah " * 200)  # far too long, but a stop word still stops
    assert cell.next_instruction(1).action == "stop"
    assert cell.ros.wait_for(lambda: cell.estops == [True])
    values = cell.diagnostic_values()
    assert values["errors"] == "0", values["last_reason"]
    assert values["bad_scenes"] == "1" and values["scene_objects"] == "5"


def test_the_input_length_limit_never_hides_a_stop_word(cell) -> None:
    """max_input_chars refuses long inputs, but the stop scan reads the whole text first: a stop
    after 12,000 characters stops, on either topic; without one, the long input is refused."""
    chatter = "put the blue gear in the left bin " + "and keep it tidy " * 800
    assert len(chatter) > 12_000
    cell.say(chatter + "stop")
    assert cell.next_instruction(0).action == "stop"
    cell.answer(chatter + "急停")
    assert cell.next_instruction(1).action == "stop"
    assert cell.ros.wait_for(lambda: cell.estops == [True, True])
    cell.say(chatter)
    assert "too long" in cell.next_feedback(0)
    assert len(cell.instructions) == 2


def test_static_scene_file_serves_a_fixed_cell_without_a_scene_topic(ros) -> None:
    _node(ros, static_scene_file=str(EXAMPLE_SCENE))
    operator = Operator(ros)
    assert operator.connected()
    operator.say("put the wrench away")
    msg = operator.next_instruction(0)
    assert (msg.action, msg.object_id, msg.target_id) == ("pick_place", "wrench_1", "rack_tools")
    values = operator.diagnostic_values()
    assert values["scene_source"].startswith("static file") and values["scene_age_s"] == "-1"


def test_missing_static_scene_file_is_a_clear_start_up_error(ros) -> None:
    from vla_ros.nodes.disambiguation_node import StaticSceneError

    with pytest.raises(StaticSceneError, match="does not exist"):
        _node(ros, static_scene_file="/nonexistent/cell.yaml")


def test_static_scene_file_outside_the_documented_format_is_refused_naming_the_field(ros, tmp_path) -> None:
    from vla_ros.nodes.disambiguation_node import StaticSceneError

    scene = _example_scene()
    scene["objects"][1]["kind"] = "fixture"
    path = tmp_path / "cell.yaml"
    path.write_text(yaml.safe_dump(scene), encoding="utf-8")
    with pytest.raises(StaticSceneError, match=r"cell.yaml: objects\[1\]\.kind: expected one of part, tool"):
        _node(ros, static_scene_file=str(path))
