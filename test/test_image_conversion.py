"""Camera images through cv_bridge (a full ROS 2 install) and through vla_ros.image_codec (the venv) give
the same RGB pixels, so a policy sees the same frame in both environments, live and on replay."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.image_codec import MalformedImage, cv_bridge, image_message_to_rgb, image_to_rgb

NO_CV_BRIDGE = (
    "cv_bridge is not importable here: it comes with a full ROS 2 install (apt ros-jazzy-cv-bridge) and has "
    "no ROS 2 wheel on PyPI, so this environment converts images with vla_ros.image_codec alone"
)
HEIGHT, WIDTH = 6, 8

# encoding -> (numpy dtype of one channel, channels)
LAYOUTS = {
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "rgba8": (np.uint8, 4),
    "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1),
    "mono16": (np.uint16, 1),
    "rgb16": (np.uint16, 3),
    "yuv422": (np.uint8, 2),
    "yuv422_yuy2": (np.uint8, 2),
}


def _message(encoding: str, bigendian: bool = False, padding: int = 4):
    """A sensor_msgs/Image of random pixels, each row followed by ``padding`` bytes (a driver aligning
    rows to 4 bytes pads 8 rgb8 pixels with 4 of them)."""
    from sensor_msgs.msg import Image

    dtype, channels = LAYOUTS[encoding]
    rng = np.random.default_rng(abs(hash(encoding)) % 1000)
    info = np.iinfo(dtype)
    pixels = rng.integers(0, int(info.max) + 1, (HEIGHT, WIDTH * channels), dtype=np.int64).astype(dtype)
    row = pixels.astype(np.dtype(dtype).newbyteorder(">" if bigendian else "<")).view(np.uint8)
    padded = np.concatenate([row, np.full((HEIGHT, padding), 0xAB, np.uint8)], axis=1)
    msg = Image(height=HEIGHT, width=WIDTH, encoding=encoding, step=padded.shape[1], is_bigendian=bigendian)
    msg.data = padded.tobytes()
    return msg


def _codec(msg) -> np.ndarray:
    return image_to_rgb(
        msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data), is_bigendian=bool(msg.is_bigendian)
    )


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "mono16", "rgba8", "bgra8", "rgb16", "yuv422"])
def test_cv_bridge_and_the_codec_give_the_same_rgb_pixels(encoding):
    bridge = cv_bridge()
    if bridge is None:
        pytest.skip(NO_CV_BRIDGE)
    try:
        bridge.encoding_to_dtype_with_channels(encoding)
    except Exception as exc:  # an older cv_bridge without this encoding
        pytest.skip(f"this cv_bridge does not know {encoding}: {exc}")
    dtype, channels = LAYOUTS[encoding]
    # Two pixels of padding: cv_bridge's Python side reads padded rows right only when the padding is
    # whole pixels (image_message_to_rgb unpads any other before handing a message over; checked below).
    msg = _message(encoding, padding=2 * channels * np.dtype(dtype).itemsize)
    expected = np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    assert expected.shape == (HEIGHT, WIDTH, 3) and expected.dtype == np.uint8
    np.testing.assert_array_equal(_codec(msg), expected)
    np.testing.assert_array_equal(image_message_to_rgb(msg), expected)  # the nodes' path: cv_bridge
    aligned_to_4 = _message(encoding, padding=4)
    np.testing.assert_array_equal(image_message_to_rgb(aligned_to_4), _codec(aligned_to_4))


def test_without_cv_bridge_a_message_goes_through_the_codec(monkeypatch):
    """What the nodes do in this venv: same pixels as the fields through image_to_rgb, big-endian
    16-bit included, and a broken message refused the same way."""
    import vla_ros.image_codec as codec

    monkeypatch.setattr(codec, "cv_bridge", lambda: None)
    for encoding in LAYOUTS:
        msg = _message(encoding)
        np.testing.assert_array_equal(image_message_to_rgb(msg), _codec(msg))
    big = _message("mono16", bigendian=True)
    np.testing.assert_array_equal(image_message_to_rgb(big), image_message_to_rgb(_message("mono16")))
    broken = _message("rgb8")
    broken.step = 7
    with pytest.raises(MalformedImage, match="step 7"):
        image_message_to_rgb(broken)
    assert codec.image_converter() == "vla_ros.image_codec"


def test_yuv422_matches_opencv_for_every_y_u_v():
    """Where OpenCV is importable (it is wherever cv_bridge is), every (Y, U, V) converts bit for bit."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV (cv2) is not installed here; it comes with cv_bridge")
    y, u, v = np.meshgrid(np.arange(256), np.arange(256), np.arange(256), indexing="ij")
    quads = np.stack([u.ravel(), y.ravel(), v.ravel(), (y.ravel() + 77) % 256], axis=1).astype(np.uint8)
    image = quads.reshape(4096, -1)
    width = image.shape[1] // 2
    ours = image_to_rgb("yuv422", 4096, width, image.shape[1], image.tobytes(), max_pixels=1 << 30)
    theirs = cv2.cvtColor(image.reshape(4096, width, 2), cv2.COLOR_YUV2RGB_UYVY)
    np.testing.assert_array_equal(ours, theirs)
