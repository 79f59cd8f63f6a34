"""The policy node's side of a remote policy server: :class:`RemotePolicy` speaks HTTP to it.

It implements the :class:`~vla_ros.action.Policy` protocol, so the inference worker runs it exactly
as it runs a local model: newest frame only, stale frames refused before a request is sent. A server
that is down, slow past ``timeout_s`` or refuses the request raises :class:`RemotePolicyError`: the
worker reports it (diagnostics), no action goes out for that frame, and the controller's watchdog
brakes the arm as after any failed step. Standard library only (no torch, no Ray).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence

import numpy as np

from vla_ros.action import Action
from vla_ros.serving.protocol import encode_request, response_to_action


class RemotePolicyError(RuntimeError):
    """The server gave no action: unreachable, too slow, or it refused the request (message says which)."""


class RemotePolicy:
    name = "openvla-remote"

    def __init__(
        self, url: str, timeout_s: float = 1.0, robot_id: str = "", image_format: str = "png"
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"remote policy url must start with http:// or https://, got {url!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.robot_id = robot_id
        self.image_format = image_format
        self._metadata: dict | None = None
        self._requests = 0

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                reason = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                reason = exc.reason
            raise RemotePolicyError(
                f"policy server {self.url} refused {path} ({exc.code}): {reason}"
            ) from exc
        except (TimeoutError, urllib.error.URLError, ConnectionError, ValueError) as exc:
            raise RemotePolicyError(self._no_answer(exc)) from exc

    def _no_answer(self, exc: Exception) -> str:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            return f"policy server {self.url} gave no answer within {self.timeout_s} s"
        if isinstance(exc, urllib.error.URLError):
            return f"policy server {self.url} is unreachable: {reason}"
        return f"policy server {self.url} answered badly: {exc}"  # reset mid-answer, or not JSON

    def metadata(self) -> dict:
        """The server's model, statistics key, action dimension, camera views and batching settings."""
        self._metadata = self._call("GET", "/metadata")
        return self._metadata

    @property
    def num_images(self) -> int:
        """Camera views the served model looks at; 1 while the server has not answered (it then refuses a
        request with the wrong number of views, with a message saying how many it wants)."""
        if self._metadata is None:
            try:
                self.metadata()
            except RemotePolicyError:
                return 1
        return int(self._metadata.get("num_images", 1))

    def predict_action(
        self, image: np.ndarray, instruction: str, extra_images: Sequence[np.ndarray] = ()
    ) -> Action:
        self._requests += 1
        body = encode_request(
            image,
            instruction,
            request_id=f"{self.robot_id or 'robot'}-{self._requests}",
            robot_id=self.robot_id,
            extra_images=extra_images,
            image_format=self.image_format,
        )
        return response_to_action(self._call("POST", "/act", body))
