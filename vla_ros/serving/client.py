"""The policy node's side of a remote policy server: :class:`RemotePolicy` speaks HTTP to it.

It implements the :class:`~vla_ros.action.Policy` protocol, so the inference worker runs it exactly
as it runs a local model: newest frame only, stale frames refused before a request is sent. A server
that is down, slow past ``timeout_s`` or refuses the request raises :class:`RemotePolicyError`: the
worker reports it (diagnostics), no action goes out for that frame, and the controller's watchdog
brakes the arm as after any failed step. No torch, no Ray: numpy, Pillow and msgpack.

Each calling thread keeps one HTTP/1.1 connection open to the server (keep-alive) instead of opening
a connection per step; a connection the server has closed while idle is replaced once, transparently.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence

import numpy as np

from vla_ros.action import Action
from vla_ros.serving.protocol import (
    BODY_FORMATS,
    IMAGE_FORMATS,
    encode_request,
    response_to_action,
    serialize_request,
)

# What a kept-alive connection raises when the server closed it while it sat idle, before any answer.
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class RemotePolicyError(RuntimeError):
    """The server gave no action: unreachable, too slow, or it refused the request (message says which)."""


class _HTTPError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class RemotePolicy:
    """``image_format``: raw | png | jpeg (see :mod:`vla_ros.serving.protocol`); ``body_format``:
    msgpack (image bytes as they are) or json (base64 text, for clients without msgpack)."""

    name = "openvla-remote"

    def __init__(
        self,
        url: str,
        timeout_s: float = 1.0,
        robot_id: str = "",
        image_format: str = "png",
        body_format: str = "msgpack",
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"remote policy url must start with http:// or https://, got {url!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
        if body_format not in BODY_FORMATS:
            raise ValueError(f"body_format must be one of {BODY_FORMATS}, got {body_format!r}")
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        self._connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._netloc, self._path_prefix = parts.netloc, parts.path
        self.timeout_s = timeout_s
        self.robot_id = robot_id
        self.image_format = image_format
        self.body_format = body_format
        self._metadata: dict | None = None
        self._requests = 0
        self._local = threading.local()  # one kept-alive connection per calling thread

    def close(self) -> None:
        """Close this thread's connection to the server (the next call opens a new one)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _send(self, method: str, path: str, body: bytes | None, content_type: str) -> bytes:
        """One request on this thread's connection; a kept-alive connection found closed by the
        server is replaced once (the server never saw that request). Non-2xx raises _HTTPError."""
        headers = {"Content-Type": content_type} if body is not None else {}
        for attempt in range(2):
            connection = getattr(self._local, "connection", None)
            reused = connection is not None
            if connection is None:
                connection = self._connection_class(self._netloc, timeout=self.timeout_s)
                self._local.connection = connection
            try:
                connection.request(method, self._path_prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except _STALE_CONNECTION:
                self.close()
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                self.close()  # the connection's state is unknown after a timeout or an error
                raise
            if response.will_close:
                self.close()
            if response.status >= 300:
                raise _HTTPError(response.status, data)
            return data
        raise AssertionError("unreachable")  # the loop returns or raises

    def _call(self, method: str, path: str, body: bytes | None = None, content_type: str = "") -> dict:
        try:
            return json.loads(self._send(method, path, body, content_type))
        except _HTTPError as exc:
            text = exc.body.decode("utf-8", errors="replace")
            try:
                reason = json.loads(text).get("error", text[:200])
            except (ValueError, AttributeError):
                reason = text[:200]
            raise RemotePolicyError(
                f"policy server {self.url} refused {path} ({exc.status}): {reason}"
            ) from exc
        except TimeoutError as exc:
            raise RemotePolicyError(
                f"policy server {self.url} gave no answer within {self.timeout_s} s"
            ) from exc
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise RemotePolicyError(f"policy server {self.url} is unreachable: {exc}") from exc
        except (http.client.HTTPException, ConnectionError, ValueError) as exc:
            # reset mid-answer, a malformed answer, or not JSON
            raise RemotePolicyError(f"policy server {self.url} answered badly: {exc}") from exc
        except OSError as exc:  # no route to host, network down, ...
            raise RemotePolicyError(f"policy server {self.url} is unreachable: {exc}") from exc

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
        """The server's action; ``extras["client_timings"]`` says how long this side took to encode the
        request (``encode_s``) and to get the answer back (``round_trip_s``)."""
        self._requests += 1
        start_s = time.perf_counter()
        body = encode_request(
            image,
            instruction,
            request_id=f"{self.robot_id or 'robot'}-{self._requests}",
            robot_id=self.robot_id,
            extra_images=extra_images,
            image_format=self.image_format,
            binary=self.body_format == "msgpack",
        )
        data, content_type = serialize_request(body, self.body_format)
        sent_s = time.perf_counter()
        answer = self._call("POST", "/act", data, content_type)
        action = response_to_action(answer)
        action.extras["client_timings"] = {
            "encode_s": sent_s - start_s,
            "round_trip_s": time.perf_counter() - sent_s,
        }
        return action
