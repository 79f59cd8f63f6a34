"""One policy served to many arms: a real Ray Serve application on this machine, real HTTP requests."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import msgpack
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


def _post(url: str, data: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url + "/act", data=data, headers={"Content-Type": content_type})
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


@pytest.mark.parametrize("body_format", ["json", "msgpack"])
@pytest.mark.parametrize("image_format", ["raw", "png"])
def test_every_lossless_payload_gets_the_local_action(server, local_policy, body_format, image_format):
    client = RemotePolicy(server, timeout_s=30, image_format=image_format, body_format=body_format)
    served = client.predict_action(_image(3), INSTRUCTIONS[2])
    local = local_policy.predict_action(_image(3), INSTRUCTIONS[2])
    assert served.token_ids == local.token_ids
    np.testing.assert_array_equal(served.vector, local.vector)
    assert set(served.extras["server_timings"]) == {"decode_s", "queue_s", "inference_s"}
    assert served.extras["client_timings"]["encode_s"] >= 0


def test_a_json_client_without_a_content_type_is_still_understood(server, local_policy):
    """What the first clients sent: JSON with base64 PNG; the Content-Type is not needed for JSON."""
    request = urllib.request.Request(
        server + "/act", data=json.dumps(encode_request(_image(4), "go home")).encode()
    )
    request.remove_header("Content-type")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert tuple(answer["token_ids"]) == local_policy.predict_action(_image(4), "go home").token_ids


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


RAW = encode_request(_image(0), "go", image_format="raw", binary=True)  # 96 x 128 RGB bytes
BAD_MSGPACK_PAYLOADS = [
    (b"\xc1 not msgpack", "not msgpack"),
    (msgpack.packb([1, 2]), "object"),
    (msgpack.packb({**RAW, "image": 7}), "body.image must be non-empty"),
    (msgpack.packb({**RAW, "image": b""}), "body.image must be non-empty"),
    (msgpack.packb({**RAW, "height": 95}), "bytes but step\\*height"),
    (msgpack.packb({k: v for k, v in RAW.items() if k != "width"}), "body.width must be a positive integer"),
    (msgpack.packb({**RAW, "height": True}), "body.height must be a positive integer"),
    (msgpack.packb({**RAW, "image_format": "png"}), "not a valid PNG"),
    (msgpack.packb({**RAW, "height": 10**6, "width": 10**6}), "exceeds the limit"),
    (msgpack.packb({**RAW, "instruction": None}), "instruction"),
]


@pytest.mark.parametrize(("body", "complaint"), BAD_MSGPACK_PAYLOADS)
def test_a_malformed_msgpack_payload_gets_a_4xx_and_the_server_keeps_serving(server, body, complaint):
    import re

    status, answer = _post(server, body, "application/msgpack")
    assert 400 <= status < 500 and re.search(complaint, answer["error"]), answer
    good = msgpack.packb(encode_request(_image(0), "go home", image_format="raw", binary=True))
    status, answer = _post(server, good, "application/msgpack")
    assert status == 200 and len(answer["action"]) == 7


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every POST /act with a fixed action over HTTP/1.1 keep-alive, counting connections; with
    ``drop_idle`` it closes each connection after answering, without saying so (as a server does with
    a connection that sat idle past its keep-alive timeout)."""

    protocol_version = "HTTP/1.1"
    connections = 0
    drop_idle = False
    paths: list[str]

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def do_POST(self) -> None:
        self.paths.append(self.path)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"action": [0.0] * 7, "token_ids": [31000] * 7}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if self.drop_idle:
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def counting_server():
    handler = type("Handler", (_CountingHandler,), {"connections": 0, "drop_idle": False, "paths": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_client_keeps_one_connection_open_across_steps(counting_server):
    url, handler = counting_server
    client = RemotePolicy(url, timeout_s=5, image_format="raw")
    for _ in range(5):
        client.predict_action(_image(0), "go")
    assert handler.connections == 1


def test_client_replaces_a_connection_the_server_closed_while_idle(counting_server):
    url, handler = counting_server
    handler.drop_idle = True
    client = RemotePolicy(url, timeout_s=5, image_format="raw")
    for _ in range(3):
        assert client.predict_action(_image(0), "go").token_ids == (31000,) * 7
    assert handler.connections == 3


def test_client_asks_a_server_behind_a_route_prefix_under_that_prefix(counting_server):
    url, handler = counting_server
    RemotePolicy(url + "/cell_3/", timeout_s=5).predict_action(_image(0), "go")
    assert handler.paths == ["/cell_3/act"]


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
