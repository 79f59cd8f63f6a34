"""The policy server's HTTP payloads, shared by the server and :class:`~vla_ros.serving.client.RemotePolicy`.

A request is one object: ``image`` and ``image_format``, ``instruction``, and optionally
``request_id``, ``robot_id`` and ``extra_images`` (the other cameras of a multi-view checkpoint, each
``{"image": ..., "image_format": ...}``). It travels as JSON (``Content-Type: application/json``, or
no type: what the first clients sent), where image data is base64 text, or as msgpack
(``application/msgpack``), where it is plain bytes: no base64 to encode, inflate by a third and decode.

``image_format``: ``png`` (the default; lossless), ``jpeg`` (lossy) or ``raw``: the pixels themselves,
RGB bytes row after row without padding (a sensor_msgs/Image's rgb8 data), with ``height`` and
``width``. Raw costs neither side any encoding or decoding (for PNG a few milliseconds per frame on each
side, and the server's share sits on the path every batch waits on); PNG is smaller on the wire. The
answer is JSON either way: the action, its token ids, the batch it was decoded in and where the time
went.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgpack
import numpy as np

from vla_ros.action import ACTION_DIM, Action
from vla_ros.image_codec import (
    DEFAULT_MAX_PIXELS,
    ImageCodecError,
    decode_compressed,
    encode_compressed,
    image_to_rgb,
    rgb_to_image_fields,
)

IMAGE_FORMATS = ("raw", "png", "jpeg")
BODY_FORMATS = ("json", "msgpack")
CONTENT_TYPES = {"json": "application/json", "msgpack": "application/msgpack"}
# The media types msgpack goes by (no registered one; these are the usual spellings).
MSGPACK_MEDIA_TYPES = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")
MAX_INSTRUCTION_CHARS = 2048
MAX_ID_CHARS = 128


class PayloadError(ValueError):
    """A request the server cannot act on; the message says which field and why (HTTP 400)."""


@dataclass(frozen=True)
class ActRequest:
    image: np.ndarray
    instruction: str
    request_id: str = ""
    robot_id: str = ""
    extra_images: tuple[np.ndarray, ...] = ()
    received_s: float = 0.0  # server clock (time.perf_counter) when the request arrived
    decode_s: float = 0.0  # parsing the body and decoding its images


@dataclass
class ActResponse:
    action: list[float]
    token_ids: list[int]
    request_id: str = ""
    robot_id: str = ""
    unnorm_key: str = ""
    batch_size: int = 1
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "action": self.action,
            "token_ids": self.token_ids,
            "request_id": self.request_id,
            "robot_id": self.robot_id,
            "unnorm_key": self.unnorm_key,
            "batch_size": self.batch_size,
            "timings": self.timings,
        }


def _encode_image(rgb: np.ndarray, image_format: str, binary: bool) -> dict:
    if image_format == "raw":
        fields = rgb_to_image_fields(rgb)  # rgb8, rows without padding
        entry = {"height": fields["height"], "width": fields["width"]}
        data = fields["data"]
    elif image_format in ("png", "jpeg"):
        # PNG at level 1: lossless and quick to encode on a controller PC; JPEG only where bandwidth matters.
        data = encode_compressed(rgb, image_format, compress_level=1 if image_format == "png" else None)
        entry = {}
    else:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    return {
        "image": data if binary else base64.b64encode(data).decode("ascii"),
        "image_format": image_format,
        **entry,
    }


def encode_request(
    image: np.ndarray,
    instruction: str,
    *,
    request_id: str = "",
    robot_id: str = "",
    extra_images: Sequence[np.ndarray] = (),
    image_format: str = "png",
    binary: bool = False,
) -> dict:
    """The body of ``POST /act`` for one observation: image data as base64 text for JSON, or as bytes
    (``binary``) for msgpack (see :func:`serialize_request`)."""
    body = {**_encode_image(image, image_format, binary), "instruction": instruction}
    if request_id:
        body["request_id"] = request_id
    if robot_id:
        body["robot_id"] = robot_id
    if extra_images:
        body["extra_images"] = [_encode_image(view, image_format, binary) for view in extra_images]
    return body


def serialize_request(body: dict, body_format: str) -> tuple[bytes, str]:
    """``(bytes, Content-Type)`` of a body from :func:`encode_request` (``binary`` for msgpack)."""
    if body_format == "json":
        return json.dumps(body).encode(), CONTENT_TYPES["json"]
    if body_format == "msgpack":
        return msgpack.packb(body, use_bin_type=True), CONTENT_TYPES["msgpack"]
    raise ValueError(f"body_format must be one of {BODY_FORMATS}, got {body_format!r}")


def parse_body(data: bytes, content_type: str) -> object:
    """The server's side of :func:`serialize_request`: msgpack when the Content-Type says so, JSON
    otherwise (with or without ``application/json``, as the first clients sent it)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in MSGPACK_MEDIA_TYPES:
        try:
            return msgpack.unpackb(data, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:  # ExtraData, FormatError, ...
            raise PayloadError(f"the body is not msgpack ({media_type}): {exc}") from exc
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"the body is not JSON: {exc}") from exc


def _image_bytes(data: object, where: str) -> bytes:
    if isinstance(data, bytes) and data:  # msgpack
        return data
    if isinstance(data, str) and data:  # JSON
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(f"{where}.image is not valid base64: {exc}") from exc
    raise PayloadError(f"{where}.image must be non-empty: base64 text in JSON, bytes in msgpack")


def _positive_int(entry: dict, key: str, where: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PayloadError(f"{where}.{key} must be a positive integer for a raw image, got {value!r}")
    return value


def _decode_image(entry: object, where: str, max_pixels: int) -> np.ndarray:
    if not isinstance(entry, dict):
        raise PayloadError(f"{where} must be an object with 'image' and 'image_format'")
    image_format = entry.get("image_format", "png")
    if image_format not in IMAGE_FORMATS:
        raise PayloadError(f"{where}.image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    data = _image_bytes(entry.get("image"), where)
    try:
        if image_format != "raw":
            return decode_compressed(image_format, data, max_pixels=max_pixels)
        height, width = _positive_int(entry, "height", where), _positive_int(entry, "width", where)
        return image_to_rgb("rgb8", height, width, width * 3, data, max_pixels=max_pixels)
    except ImageCodecError as exc:
        raise PayloadError(f"{where}.image: {exc}") from exc


def _optional_id(payload: dict, key: str) -> str:
    value = payload.get(key, "")
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS:
        raise PayloadError(f"{key} must be a string of at most {MAX_ID_CHARS} characters")
    return value


def decode_request(
    payload: object, *, num_images: int = 1, received_s: float = 0.0, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ActRequest:
    """Validate a ``POST /act`` body; every problem is a :class:`PayloadError` naming the field."""
    if not isinstance(payload, dict):
        raise PayloadError(
            "the body must be an object (a JSON object, a msgpack map) with 'image' and 'instruction'"
        )
    instruction = payload.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise PayloadError("instruction must be a non-empty string")
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise PayloadError(
            f"instruction is {len(instruction)} characters; the limit is {MAX_INSTRUCTION_CHARS}"
        )
    image = _decode_image(payload, "body", max_pixels)
    extra = payload.get("extra_images", [])
    if not isinstance(extra, list):
        raise PayloadError("extra_images must be a list")
    extra_images = tuple(_decode_image(e, f"extra_images[{i}]", max_pixels) for i, e in enumerate(extra))
    if 1 + len(extra_images) != num_images:
        raise PayloadError(
            f"this model looks at {num_images} camera view(s) per step, the request has "
            f"{1 + len(extra_images)} (the image plus {len(extra_images)} extra_images)"
        )
    return ActRequest(
        image=image,
        instruction=instruction,
        request_id=_optional_id(payload, "request_id"),
        robot_id=_optional_id(payload, "robot_id"),
        extra_images=extra_images,
        received_s=received_s,
    )


def response_to_action(body: dict) -> Action:
    """The client's side of :meth:`ActResponse.to_json`."""
    vector = np.asarray(body.get("action", []), dtype=np.float64)
    if vector.shape != (ACTION_DIM,):
        raise ValueError(f"the server's action has shape {vector.shape}, expected ({ACTION_DIM},)")
    timings = body.get("timings", {})
    return Action(
        vector=vector,
        token_ids=tuple(int(t) for t in body.get("token_ids", [])),
        inference_time_s=float(timings.get("inference_s", 0.0)),
        extras={
            "unnorm_key": body.get("unnorm_key", ""),
            "batch_size": int(body.get("batch_size", 1)),
            "request_id": body.get("request_id", ""),
            "server_timings": timings,
        },
    )
