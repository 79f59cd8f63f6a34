"""The one place where camera images become RGB arrays (and back).

Nodes (sensor_msgs/Image from a driver or the simulator) and bag readers (the same message read by
``rosbags``) both go through :func:`image_message_to_rgb`, so the policy sees identical pixels live and
on replay. Where ROS 2's ``cv_bridge`` is importable (a full ROS install) it converts, as ROS image
pipelines do; elsewhere (the venv) :func:`image_to_rgb` does, and gives the same pixels for every encoding
it knows (rgb8, bgr8, rgba8, bgra8, mono8, their 16-bit forms scaled as cv_bridge scales them, and the
YUV 4:2:2 encodings with OpenCV's integer BT.601 conversion); test_image_conversion.py checks both
against each other where cv_bridge exists. Compressed images are decoded by PIL everywhere, so a JPEG
gives the same pixels in both environments. Apart from :func:`image_message_to_rgb`, plain numpy in and
out: callers pass the message's fields, never the message.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from vla_ros.errors import UserInputError

# encoding -> (channels, bytes per channel, index of R, G and B inside a pixel; None: YUV 4:2:2).
_LAYOUTS: dict[str, tuple[int, int, tuple[int, int, int] | None]] = {
    "rgb8": (3, 1, (0, 1, 2)),
    "bgr8": (3, 1, (2, 1, 0)),
    "rgba8": (4, 1, (0, 1, 2)),
    "bgra8": (4, 1, (2, 1, 0)),
    "mono8": (1, 1, (0, 0, 0)),
    "rgb16": (3, 2, (0, 1, 2)),
    "bgr16": (3, 2, (2, 1, 0)),
    "rgba16": (4, 2, (0, 1, 2)),
    "bgra16": (4, 2, (2, 1, 0)),
    "mono16": (1, 2, (0, 0, 0)),
    "yuv422": (2, 1, None),  # UYVY: U0 Y0 V0 Y1
    "yuv422_yuy2": (2, 1, None),  # YUYV: Y0 U0 Y1 V0
}
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)
SUPPORTED_COMPRESSED_FORMATS = ("jpeg", "png")
# 8K x 8K: larger than any camera we expect; a bigger header is far more likely to be garbage
# than a real frame, and decoding it would take the node down with an out-of-memory error.
DEFAULT_MAX_PIXELS = 8192 * 8192

# OpenCV's fixed-point ITU-R BT.601 YUV -> RGB (imgproc color_yuv): what cv_bridge gives for yuv422.
_YUV_SHIFT = 20
_YUV_CY, _YUV_CUB, _YUV_CUG, _YUV_CVG, _YUV_CVR = 1220542, 2116026, -409993, -852492, 1673527


class ImageCodecError(UserInputError, ValueError):
    """An image message could not be turned into an RGB array."""


class UnsupportedImageEncoding(ImageCodecError):  # noqa: N818 - names given by the interface
    """The encoding (or compressed format) is not one we convert."""


class MalformedImage(ImageCodecError):  # noqa: N818 - names given by the interface
    """The message's fields disagree with each other or with its data."""


class ImageTooLarge(ImageCodecError):  # noqa: N818 - names given by the interface
    """The image claims more pixels than the configured limit."""


def _check_pixel_count(height: int, width: int, max_pixels: int) -> None:
    if height * width > max_pixels:
        raise ImageTooLarge(
            f"image of {width}x{height} = {height * width} pixels exceeds the limit of {max_pixels} pixels; "
            "lower the camera resolution or raise max_pixels if the frame is genuine"
        )


def _check_fields(
    encoding: str, height: int, width: int, step: int, nbytes: int, pixel_bytes: int, max_pixels: int
) -> None:
    """The checks every conversion makes first: sizes positive and within the limit, rows long enough,
    exactly ``step * height`` bytes of data."""
    if height <= 0 or width <= 0:
        raise MalformedImage(f"image has height={height} and width={width}; both must be positive")
    _check_pixel_count(height, width, max_pixels)
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise MalformedImage(
            f"step {step} is smaller than width*bytes per pixel = {width}*{pixel_bytes} = {row_bytes} "
            f"for {encoding}"
        )
    if nbytes == 0:
        raise MalformedImage("image data is empty")
    if nbytes != step * height:
        raise MalformedImage(
            f"image data has {nbytes} bytes but step*height = {step}*{height} = {step * height}"
        )


def image_to_rgb(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | bytearray | memoryview | np.ndarray,
    *,
    is_bigendian: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Convert the fields of a sensor_msgs/Image into an owned, contiguous HxWx3 uint8 RGB array.

    Row padding (``step`` larger than the pixels' bytes) is honoured; alpha is dropped; grey is
    repeated into R, G and B; 16-bit values ``v`` become ``round(v * 255 / 65535)`` (cv_bridge's
    scaling; ``is_bigendian`` says their byte order); YUV 4:2:2 is converted as OpenCV converts it.
    The result never aliases ``data``, so the caller may reuse or free the message buffer.
    """
    enc = encoding.strip().lower()
    if enc not in _LAYOUTS:
        raise UnsupportedImageEncoding(
            f"image encoding {encoding!r} is not supported; supported encodings: "
            f"{', '.join(SUPPORTED_ENCODINGS)} (configure the camera driver to publish one of them)"
        )
    channels, depth, order = _LAYOUTS[enc]
    height, width, step = int(height), int(width), int(step)
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    buf = buf.reshape(-1)
    if buf.dtype != np.uint8:
        raise MalformedImage(f"image data must be uint8 bytes, got dtype {buf.dtype}")
    _check_fields(enc, height, width, step, buf.size, channels * depth, max_pixels)
    if order is None and width % 2:
        raise MalformedImage(f"{enc} packs two pixels in four bytes; width {width} must be even")
    rows = buf.reshape(height, step)[:, : width * channels * depth]
    if order is None:
        return _yuv422_to_rgb(rows.reshape(height, width // 2, 4), uyvy=enc == "yuv422")
    if depth == 2:
        values = np.ascontiguousarray(rows).view(">u2" if is_bigendian else "<u2").astype(np.uint32)
        rows = ((values * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255 / 65535); never a tie
    pixels = rows.reshape(height, width, channels)
    if order == (0, 1, 2):
        return np.array(pixels[:, :, :3], dtype=np.uint8, order="C", copy=True)
    return np.ascontiguousarray(pixels[:, :, list(order)])  # fancy indexing already copies


def _yuv422_to_rgb(quads: np.ndarray, uyvy: bool) -> np.ndarray:
    """H x W/2 x 4 bytes of YUV 4:2:2 (two pixels sharing U and V) -> H x W x 3 RGB, bit for bit as
    OpenCV's ``COLOR_YUV2RGB_UYVY`` / ``_YUY2``."""
    q = quads.astype(np.int64)
    u, y0, v, y1 = (
        (q[..., 0], q[..., 1], q[..., 2], q[..., 3]) if uyvy else (q[..., 1], q[..., 0], q[..., 3], q[..., 2])
    )
    half = 1 << (_YUV_SHIFT - 1)
    ruv = half + _YUV_CVR * (v - 128)
    guv = half + _YUV_CVG * (v - 128) + _YUV_CUG * (u - 128)
    buv = half + _YUV_CUB * (u - 128)
    out = np.empty((*quads.shape[:2], 2, 3), dtype=np.uint8)
    for i, luma in enumerate((y0, y1)):
        yy = np.maximum(luma - 16, 0) * _YUV_CY
        for c, chroma in enumerate((ruv, guv, buv)):
            out[:, :, i, c] = np.clip((yy + chroma) >> _YUV_SHIFT, 0, 255)
    return out.reshape(quads.shape[0], quads.shape[1] * 2, 3)


def image_message_to_rgb(msg: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/Image (rclpy's, or a bag reader's with the same fields) as an owned HxWx3 uint8 RGB
    array: through ``cv_bridge`` where it is importable, else :func:`image_to_rgb`. The fields are
    checked first either way (sizes, pixel limit, data length), so both refuse a broken message alike."""
    bridge = cv_bridge()
    if bridge is None:
        return image_to_rgb(
            msg.encoding,
            msg.height,
            msg.width,
            msg.step,
            msg.data,
            is_bigendian=bool(getattr(msg, "is_bigendian", False)),
            max_pixels=max_pixels,
        )
    try:
        dtype, channels = bridge.encoding_to_dtype_with_channels(msg.encoding)
    except Exception as exc:  # CvBridgeError (a TypeError) or KeyError: an encoding it does not know
        raise UnsupportedImageEncoding(
            f"image encoding {msg.encoding!r} is not one cv_bridge knows (configure the camera driver to "
            f"publish one of {', '.join(SUPPORTED_ENCODINGS)})"
        ) from exc
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    pixel_bytes = np.dtype(dtype).itemsize * channels
    _check_fields(msg.encoding, height, width, step, len(msg.data), pixel_bytes, max_pixels)
    if step % pixel_bytes:
        # cv_bridge's Python side reads each row as step // pixel_bytes whole pixels, so padding of any
        # other length (rgb8 rows aligned to 4 bytes) shifts every row after the first: give it the
        # rows without their padding.
        rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)[:, : width * pixel_bytes]
        msg = SimpleNamespace(
            encoding=msg.encoding,
            height=height,
            width=width,
            step=width * pixel_bytes,
            is_bigendian=getattr(msg, "is_bigendian", False),
            data=rows.tobytes(),
        )
    try:
        rgb = bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
    except Exception as exc:  # CvBridgeError: no conversion to rgb8 (e.g. from 32FC1)
        raise UnsupportedImageEncoding(
            f"cv_bridge cannot convert {msg.encoding!r} images to rgb8: {exc}"
        ) from exc
    return np.array(rgb, dtype=np.uint8, order="C", copy=True)


@functools.cache
def cv_bridge():
    """ROS 2's ``cv_bridge.CvBridge`` (one, shared: it keeps no state between conversions), or None where
    it is not importable (the venv: neither cv_bridge nor its OpenCV are on PyPI as ROS 2 packages)."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    return CvBridge()


def image_converter() -> str:
    """What :func:`image_message_to_rgb` converts with here (for diagnostics)."""
    return "cv_bridge" if cv_bridge() is not None else "vla_ros.image_codec"


def rgb_to_image_fields(rgb: np.ndarray) -> dict:
    """The sensor_msgs/Image fields for an HxWx3 uint8 RGB array (encoding rgb8, no padding).

    ``data`` is ``bytes``; for rclpy, ``array.array('B', data)`` is the fast way to assign it.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise MalformedImage(f"expected an HxWx3 uint8 RGB array, got shape {arr.shape} dtype {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MalformedImage(f"image has shape {arr.shape}; height and width must be positive")
    height, width = int(arr.shape[0]), int(arr.shape[1])
    return {
        "encoding": "rgb8",
        "height": height,
        "width": width,
        "step": width * 3,
        "data": np.ascontiguousarray(arr).tobytes(),
    }


def decode_compressed(
    format: str,  # the sensor_msgs/CompressedImage field name
    data: bytes | bytearray | memoryview | np.ndarray,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage payload (jpeg or png) into an HxWx3 uint8 RGB array.

    ``format`` may be the bare codec ("jpeg") or image_transport's long form
    ("rgb8; jpeg compressed bgr8"): the codec is what matters, the decoder yields RGB either way.
    """
    from PIL import Image, UnidentifiedImageError

    fmt = format.strip().lower()
    if "jpeg" in fmt or "jpg" in fmt:
        codec = "JPEG"
    elif "png" in fmt:
        codec = "PNG"
    else:
        raise UnsupportedImageEncoding(
            f"compressed image format {format!r} is not supported; supported: "
            f"{', '.join(SUPPORTED_COMPRESSED_FORMATS)}"
        )
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    if not raw:
        raise MalformedImage("compressed image data is empty")
    try:
        with _no_bomb_warning(), Image.open(io.BytesIO(raw), formats=[codec]) as img:
            width, height = img.size
            _check_pixel_count(height, width, max_pixels)
            rgb = _pil_to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{codec} image is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise MalformedImage(f"data is not a valid {codec} image (format field says {format!r})") from exc
    except (OSError, SyntaxError) as exc:  # PIL reports truncated or corrupt streams this way
        raise MalformedImage(f"{codec} image could not be decoded: {exc}") from exc
    return np.ascontiguousarray(rgb)


# A camera image must cover at least one 14 px ViT patch; a smaller file is almost surely not a frame.
MIN_IMAGE_SIDE_PX = 14


def read_image_file(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side_px: int = MIN_IMAGE_SIDE_PX
) -> np.ndarray:
    """An image file (PNG, JPEG, ...) as an HxWx3 uint8 RGB array. Its size is checked from the header
    before the pixels are decoded, so an enormous file is refused without using the memory."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise MalformedImage(f"{path} is not an image file (it does not exist or is a directory)")
    try:
        with _no_bomb_warning(), Image.open(path) as img:
            width, height = img.size
            _check_pixel_count(height, width, max_pixels)
            if min(width, height) < min_side_px:
                raise MalformedImage(
                    f"{path} is {width}x{height} pixels; a camera image needs at least {min_side_px} "
                    "pixels on each side"
                )
            return np.ascontiguousarray(_pil_to_rgb(img))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{path} is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise MalformedImage(f"{path} is not an image file PIL can read") from exc
    except (OSError, SyntaxError) as exc:
        raise MalformedImage(f"{path} could not be decoded: {exc}") from exc


@contextlib.contextmanager
def _no_bomb_warning() -> Iterator[None]:
    """PIL warns about images over its own pixel limit when it opens them; ours is checked right after
    (``max_pixels``), so its warning would only be noise above our one-line error."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _pil_to_rgb(img) -> np.ndarray:
    """A PIL image as 8-bit RGB. 16-bit grey (PNG depth 16) is scaled down to 8 bits, not clipped:
    PIL's own conversion clips every value above 255 to white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(img).astype(np.int64)
        if grey.min() < 0 or grey.max() > 65535:
            raise MalformedImage(f"{img.mode} image values span {grey.min()}..{grey.max()}, not 16-bit")
        return np.repeat((grey >> 8).astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def encode_compressed(rgb: np.ndarray, codec: str = "png", compress_level: int | None = None) -> bytes:
    """HxWx3 uint8 RGB -> a sensor_msgs/CompressedImage payload (``decode_compressed`` inverts it).
    ``compress_level`` (PNG only, 0-9): PIL's default when None."""
    from PIL import Image

    options = {} if compress_level is None else {"compress_level": compress_level}
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(out, format=codec.upper(), **options)
    return out.getvalue()


class PackedImage:
    """An HxWx3 uint8 RGB frame held PNG-compressed in memory; ``np.asarray`` gives the pixels back.

    Training keeps every step's frames in memory for random access. Decoded, a 224 px frame is
    150 kB, and with two cameras about 47,000 steps filled this 23 GB machine; rendered workcell
    frames compress about 30-fold without loss, and decoding one costs about half a millisecond,
    far below a training step. PNG, not JPEG: the model must see exactly what was recorded.
    """

    __slots__ = ("_png", "shape")
    dtype = np.dtype(np.uint8)
    ndim = 3

    def __init__(self, rgb: np.ndarray) -> None:
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise MalformedImage(f"expected an HxWx3 uint8 RGB array, got {rgb.dtype} {rgb.shape}")
        # Level 1: nearly the ratio of level 9 on rendered frames, several times faster to write.
        self._png = encode_compressed(rgb, "png", compress_level=1)
        self.shape = rgb.shape

    @property
    def nbytes(self) -> int:
        """Bytes held (the compressed frame), for memory accounting."""
        return len(self._png)

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        # decode_compressed may hand back PIL's read-only buffer; each caller gets its own array.
        rgb = np.array(decode_compressed("png", self._png))
        return rgb if dtype is None else rgb.astype(dtype, copy=False)

    def __getitem__(self, key: object) -> np.ndarray:
        return np.asarray(self)[key]

    def __len__(self) -> int:
        return self.shape[0]
