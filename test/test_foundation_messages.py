"""Every vla_ros message survives a trip through a real rclpy publisher and subscriber over DDS."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def _filled_messages() -> dict[str, object]:
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import KeyValue
    from geometry_msgs.msg import Point
    from std_msgs.msg import Header

    from vla_ros.msg import (
        ActionStep,
        Clarification,
        GripperCommand,
        Instruction,
        Scene,
        SceneLocation,
        SceneObject,
    )

    header = Header(stamp=Time(sec=12, nanosec=345), frame_id="panda_link0")
    step = ActionStep(
        header=header,
        image_stamp=Time(sec=11, nanosec=999),
        action=[0.01, -0.02, 0.03, 0.1, -0.2, 0.3, 1.0],
        token_ids=[31744, 31800, 31999, 31900, 31850, 31870, 31744],
        instruction="pick up the red gear",
        model_id="openvla-7b",
        adapter_id="cell3-lora",
        precision="4bit-nf4",
        unnorm_key="bridge_orig",
        inference_time_s=0.125,
        step=42,
    )
    gripper = GripperCommand(header=header, position=0.25, close=True, max_effort=20.0)
    instruction = Instruction(
        header=header,
        text="pick up the red gear and place it in the reject bin",
        raw_text="把那个大齿轮放到废料箱里",
        language="zh",
        action="pick_place",
        object_id="gear_red",
        target_id="bin_reject",
        direction="",
        confidence=0.875,
        request_id="req-7",
    )
    clarification = Clarification(
        header=header,
        request_id="req-8",
        question="Which gear: the red gear or the blue gear?",
        language="en",
        raw_text="take the gear",
        candidate_ids=["gear_red", "gear_blue"],
        candidate_names=["red gear", "blue gear"],
        timeout_s=30.0,
    )
    obj = SceneObject(
        id="bolt_1",
        name="long bolt",
        kind="part",
        category="bolt",
        color="silver",
        size="large",
        material="steel",
        length_mm=80.0,
        position=Point(x=0.45, y=-0.12, z=0.02),
        attributes=[KeyValue(key="thread", value="M8")],
    )
    loc = SceneLocation(
        id="bin_reject",
        name="reject bin",
        category="bin",
        role="reject",
        accepts=["part", "bolt"],
        position=Point(x=0.3, y=0.35, z=0.0),
        attributes=[KeyValue(key="colour", value="red")],
    )
    scene = Scene(header=header, objects=[obj], locations=[loc], holding="bolt_1")
    return {
        "ActionStep": step,
        "GripperCommand": gripper,
        "Instruction": instruction,
        "Clarification": clarification,
        "SceneObject": obj,
        "SceneLocation": loc,
        "Scene": scene,
    }


def _assert_same(sent, received, path: str) -> None:
    if hasattr(sent, "get_fields_and_field_types"):
        for field in sent.get_fields_and_field_types():
            _assert_same(getattr(sent, field), getattr(received, field), f"{path}.{field}")
    elif isinstance(sent, (list, tuple)) and sent and hasattr(sent[0], "get_fields_and_field_types"):
        assert len(sent) == len(received), path
        for i, (a, b) in enumerate(zip(sent, received, strict=True)):
            _assert_same(a, b, f"{path}[{i}]")
    elif isinstance(sent, float):
        assert received == pytest.approx(sent, rel=1e-6), path
    elif isinstance(sent, (list, tuple)) and all(isinstance(v, str) for v in sent):
        assert list(sent) == list(received), path
    elif isinstance(sent, (np.ndarray, list, tuple)) or hasattr(sent, "typecode"):
        assert np.allclose(np.asarray(sent, dtype=float), np.asarray(received, dtype=float)), path
    else:
        assert sent == received, path


@pytest.mark.parametrize(
    "type_name",
    ["ActionStep", "GripperCommand", "Instruction", "Clarification", "SceneObject", "SceneLocation", "Scene"],
)
def test_message_round_trips_over_dds_with_fields_preserved(ros, type_name: str) -> None:
    sent = _filled_messages()[type_name]
    msg_type = type(sent)
    received: list = []
    sender = ros.node(f"sender_{type_name.lower()}")
    receiver = ros.node(f"receiver_{type_name.lower()}")
    topic = f"/roundtrip/{type_name.lower()}"
    receiver.create_subscription(msg_type, topic, received.append, 10)
    publisher = sender.create_publisher(msg_type, topic, 10)
    assert ros.wait_for(lambda: publisher.get_subscription_count() > 0), "subscriber never matched"

    def delivered() -> bool:
        if not received:
            publisher.publish(sent)
        return bool(received)

    assert ros.wait_for(delivered, period_s=0.1), f"{type_name} never arrived over DDS"
    _assert_same(sent, received[0], type_name)
    assert received[0] is not sent


def test_reset_episode_service_answers_over_dds(ros) -> None:
    from vla_ros.srv import ResetEpisode

    server_node = ros.node("reset_server")
    client_node = ros.node("reset_client")

    def handle(request, response):
        response.success = request.seed == 7
        response.message = f"task={request.task}"
        response.instruction = "put the red gear in the left bin"
        return response

    server_node.create_service(ResetEpisode, "/roundtrip/reset", handle)
    client = client_node.create_client(ResetEpisode, "/roundtrip/reset")
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(ResetEpisode.Request(task="pick_place", seed=7))
    assert ros.wait_for(future.done)
    result = future.result()
    assert result.success is True
    assert result.message == "task=pick_place"
    assert result.instruction == "put the red gear in the left bin"
