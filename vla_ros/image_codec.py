"""The one place where camera images become RGB arrays (and back).

Nodes (sensor_msgs/Image from a driver or the simulator) and bag readers (the same message read by
``rosbags``) both go through these functions, so the policy sees identical pixels live and on replay.
Plain numpy in and out: callers pass the message's fields, never the message.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from vla_ros.errors import UserInputError

SUPPORTED_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")
SUPPORTED_COMPRESSED_FORMATS = ("jpeg", "png")
# 8K x 8K: larger than any camera we expect; a bigger header is far more likely to be garbage
# than a real frame, and decoding it would take the node down with an out-of-memory error.
DEFAULT_MAX_PIXELS = 8192 * 8192

_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}
# Index of the R, G and B bytes inside one pixel for each encoding.
_RGB_ORDER = {"rgb8": (0, 1, 2), "bgr8": (2, 1, 0), "rgba8": (0, 1, 2), "bgra8": (2, 1, 0)}


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


def image_to_rgb(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: bytes | bytearray | memoryview | np.ndarray,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Convert the fields of a sensor_msgs/Image into an owned, contiguous HxWx3 uint8 RGB array.

    Row padding (``step`` larger than ``width * channels``) is honoured; alpha is dropped. The result
    never aliases ``data``, so the caller may reuse or free the message buffer.
    """
    enc = encoding.strip().lower()
    if enc not in _CHANNELS:
        raise UnsupportedImageEncoding(
            f"image encoding {encoding!r} is not supported; supported encodings: "
            f"{', '.join(SUPPORTED_ENCODINGS)} (configure the camera driver to publish one of them)"
        )
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise MalformedImage(f"image has height={height} and width={width}; both must be positive")
    _check_pixel_count(height, width, max_pixels)
    channels = _CHANNELS[enc]
    row_bytes = width * channels
    if step < row_bytes:
        raise MalformedImage(
            f"step {step} is smaller than width*channels = {width}*{channels} = {row_bytes} for {enc}"
        )
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    buf = buf.reshape(-1)
    if buf.dtype != np.uint8:
        raise MalformedImage(f"image data must be uint8 bytes, got dtype {buf.dtype}")
    if buf.size == 0:
        raise MalformedImage("image data is empty")
    expected = step * height
    if buf.size != expected:
        raise MalformedImage(
            f"image data has {buf.size} bytes but step*height = {step}*{height} = {expected}"
        )
    rows = buf.reshape(height, step)[:, :row_bytes].reshape(height, width, channels)
    r, g, b = _RGB_ORDER[enc]
    if (r, g, b) == (0, 1, 2):
        return np.array(rows[:, :, :3], dtype=np.uint8, order="C", copy=True)
    return np.ascontiguousarray(rows[:, :, [r, g, b]])  # fancy indexing already copies


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
        with Image.open(io.BytesIO(raw), formats=[codec]) as img:
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
        with Image.open(path) as img:
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
