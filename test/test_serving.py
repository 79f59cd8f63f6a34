"""One policy served to many arms: a real Ray Serve application on this machine, real HTTP requests."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from vla_ros.serving.client import RemotePolicy, RemotePolicyError
from vla_ros.serving.protocol import encode_request

INSTRUCTIONS = [
    "pick up the red gear",
    "put the bolt in the scrap bin on the left",
    "go home",
    "move to the tray",
]


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (96, 128, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from vla_ros.model.tiny import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


@pytest.fixture(scope="module")
def local_policy(tiny_checkpoint):
    from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

    return VLAPolicy(PolicyConfig(checkpoint_dir=tiny_checkpoint, precision="fp32"))


@pytest.fixture(scope="module")
def server(tiny_checkpoint, free_port):
    from vla_ros.policy.runtime import PolicyConfig
    from vla_ros.serving.server import build_app, policy_config_dict, start_server, stop_server

    config = policy_config_dict(PolicyConfig(checkpoint_dir=tiny_checkpoint, precision="fp32"))
    app = build_app(config, max_batch_size=8, batch_wait_timeout_s=0.2)
    url = start_server(app, port=free_port(), num_cpus=2)
    yield url
    stop_server()


def _post(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/act", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_and_metadata_describe_the_served_model(server, tiny_checkpoint):
    client = RemotePolicy(server, timeout_s=30)
    with urllib.request.urlopen(server + "/health", timeout=30) as response:
        assert response.status == 200
    meta = client.metadata()
    assert meta["model"] == str(tiny_checkpoint)
    assert meta["unnorm_key"] == "sim_workcell" and meta["action_dim"] == 7 and meta["num_images"] == 1
    assert meta["max_batch_size"] == 8
    assert client.num_images == 1


def test_served_actions_equal_local_predictions(server, local_policy):
    client = RemotePolicy(server, timeout_s=30, robot_id="arm_1")
    for seed, text in enumerate(INSTRUCTIONS[:2]):
        served = client.predict_action(_image(seed), text)
        local = local_policy.predict_action(_image(seed), text)
        assert served.token_ids == local.token_ids
        np.testing.assert_array_equal(served.vector, local.vector)
        assert served.extras["request_id"].startswith("arm_1-")


def test_concurrent_requests_from_many_arms_are_batched(server, local_policy):
    clients = [RemotePolicy(server, timeout_s=60, robot_id=f"arm_{i}") for i in range(8)]
    jobs = [(c, _image(i), INSTRUCTIONS[i % len(INSTRUCTIONS)]) for i, c in enumerate(clients)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        served = list(pool.map(lambda job: job[0].predict_action(job[1], job[2]), jobs))
    assert max(a.extras["batch_size"] for a in served) > 1, "no two concurrent requests shared a batch"
    for (_, image, text), action in zip(jobs, served, strict=True):
        assert action.token_ids == local_policy.predict_action(image, text).token_ids
    sizes = RemotePolicy(server, timeout_s=30).metadata()["batch_sizes"]
    assert any(int(size) > 1 for size in sizes)


GOOD = encode_request(_image(0), "go")
PNG_OF_NOTHING = {"image": "aGVsbG8=", "instruction": "go"}  # base64 of b"hello"
BAD_PAYLOADS = [
    (b"not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({**GOOD, "instruction": ""}).encode(), "instruction"),
    (json.dumps({"instruction": "pick up the gear"}).encode(), "body.image"),
    (json.dumps({**GOOD, "image": "%%%notbase64"}).encode(), "base64"),
    (json.dumps(PNG_OF_NOTHING).encode(), "could not be decoded|not a valid"),
    (json.dumps({**GOOD, "image_format": "tiff"}).encode(), "image_format"),
    (json.dumps({**GOOD, "extra_images": [encode_request(_image(1), "go")]}).encode(), "camera view"),
    (json.dumps({**GOOD, "robot_id": 7}).encode(), "robot_id"),
]


@pytest.mark.parametrize(("body", "complaint"), BAD_PAYLOADS)
def test_a_malformed_payload_gets_a_4xx_and_the_server_keeps_serving(server, body, complaint):
    import re

    status, answer = _post(server, body)
    assert 400 <= status < 500 and re.search(complaint, answer["error"]), answer
    status, answer = _post(server, json.dumps(encode_request(_image(0), "pick up the red gear")).encode())
    assert status == 200 and len(answer["action"]) == 7


def test_client_reports_an_unreachable_server_clearly(free_port):
    client = RemotePolicy(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(RemotePolicyError, match="unreachable"):
        client.predict_action(_image(0), "go")
    assert client.num_images == 1  # no metadata yet: a single view until the server answers


def test_client_reports_a_server_that_does_not_answer_in_time():
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        client = RemotePolicy(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.3)
        with pytest.raises(RemotePolicyError, match=r"no answer within 0\.3 s"):
            client.predict_action(_image(0), "go")
