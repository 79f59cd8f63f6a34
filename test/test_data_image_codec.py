"""Specification of the image codec shared by the nodes and the bag readers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vla_ros.image_codec import (
    ImageTooLarge,
    MalformedImage,
    PackedImage,
    UnsupportedImageEncoding,
    decode_compressed,
    image_to_rgb,
    rgb_to_image_fields,
)


def _rgb(height: int = 3, width: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("encoding", "to_pixels"),
    [
        ("rgb8", lambda rgb: rgb),
        ("bgr8", lambda rgb: rgb[:, :, ::-1]),
        ("rgba8", lambda rgb: np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 7, np.uint8)], axis=2)),
        (
            "bgra8",
            lambda rgb: np.concatenate([rgb[:, :, ::-1], np.full((*rgb.shape[:2], 1), 9, np.uint8)], 2),
        ),
    ],
)
def test_every_supported_encoding_decodes_to_the_same_rgb_pixels(encoding, to_pixels):
    rgb = _rgb()
    pixels = np.ascontiguousarray(to_pixels(rgb))
    out = image_to_rgb(encoding, 3, 4, pixels.shape[1] * pixels.shape[2], pixels.tobytes())
    assert out.dtype == np.uint8
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out, rgb)


def test_row_padding_is_skipped():
    rgb = _rgb(2, 3)
    padded = np.zeros((2, 3 * 3 + 5), np.uint8)
    padded[:, :9] = rgb.reshape(2, 9)
    padded[:, 9:] = 255
    out = image_to_rgb("rgb8", 2, 3, 14, padded.reshape(-1))
    np.testing.assert_array_equal(out, rgb)


def test_result_does_not_alias_the_message_buffer():
    rgb = _rgb()
    buf = bytearray(rgb.tobytes())
    out = image_to_rgb("rgb8", 3, 4, 12, buf)
    buf[0] = (buf[0] + 1) % 256
    assert out[0, 0, 0] == rgb[0, 0, 0]


def test_round_trip_through_message_fields():
    rgb = _rgb(5, 6)
    fields = rgb_to_image_fields(rgb)
    assert fields["encoding"] == "rgb8"
    assert (fields["height"], fields["width"], fields["step"]) == (5, 6, 18)
    np.testing.assert_array_equal(image_to_rgb(**fields), rgb)


def test_unsupported_encoding_lists_the_supported_ones():
    with pytest.raises(UnsupportedImageEncoding, match=r"32FC1.*rgb8, bgr8, rgba8, bgra8, mono8, rgb16"):
        image_to_rgb("32FC1", 2, 2, 8, bytes(16))


def test_grey_is_repeated_into_red_green_and_blue():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = image_to_rgb("mono8", 3, 4, 4, grey.tobytes())
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))


@pytest.mark.parametrize("bigendian", [False, True])
def test_16_bit_values_are_scaled_to_8_bits_as_cv_bridge_scales_them(bigendian):
    """round(v * 255 / 65535): 0 -> 0, 65535 -> 255, 257 * k -> k, and 128 | 129 either side of a half."""
    values = np.array([[0, 128, 129, 257 * 100, 65535, 65534]], dtype=np.uint16)
    data = values.astype(">u2" if bigendian else "<u2").tobytes()
    out = image_to_rgb("mono16", 1, 6, 12, data, is_bigendian=bigendian)
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 100, 255, 255])
    rgb16 = np.stack([values, values // 2, np.full_like(values, 65535)], axis=2)
    out = image_to_rgb("bgr16", 1, 6, 36, rgb16[..., ::-1].astype("<u2").tobytes())
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 100, 255, 255])
    np.testing.assert_array_equal(out[0, :, 2], [255] * 6)


def test_yuv422_converts_black_white_and_grey_and_both_byte_orders_agree():
    # (Y, U, V) of video black, white and mid grey: R = G = B.
    y = np.array([16, 235, 126, 126], dtype=np.uint8)
    uyvy = np.array([[128, y[0], 128, y[1], 128, y[2], 128, y[3]]], dtype=np.uint8)
    out = image_to_rgb("yuv422", 1, 4, 8, uyvy.tobytes())
    np.testing.assert_array_equal(out[0], [[0, 0, 0], [255, 255, 255], [128, 128, 128], [128, 128, 128]])
    rng = np.random.default_rng(3)
    quads = rng.integers(0, 256, (5, 3, 4), dtype=np.uint8)  # U Y0 V Y1
    yuy2 = quads[..., [1, 0, 3, 2]]  # Y0 U Y1 V
    np.testing.assert_array_equal(
        image_to_rgb("yuv422", 5, 6, 12, quads.tobytes()),
        image_to_rgb("yuv422_yuy2", 5, 6, 12, yuy2.tobytes()),
    )
    with pytest.raises(MalformedImage, match="width 5 must be even"):
        image_to_rgb("yuv422", 1, 5, 10, bytes(10))


@pytest.mark.parametrize(
    ("height", "width", "step", "nbytes", "reason"),
    [
        (2, 2, 6, 0, "empty"),
        (2, 2, 5, 10, "step 5 is smaller"),
        (2, 2, 6, 11, "11 bytes but step\\*height"),
        (0, 2, 6, 0, "must be positive"),
    ],
)
def test_malformed_images_say_what_is_wrong(height, width, step, nbytes, reason):
    with pytest.raises(MalformedImage, match=reason):
        image_to_rgb("rgb8", height, width, step, bytes(nbytes))


def test_oversized_header_is_refused_before_touching_data():
    with pytest.raises(ImageTooLarge, match="exceeds the limit"):
        image_to_rgb("rgb8", 100_000, 100_000, 300_000, b"\x00")
    with pytest.raises(ImageTooLarge):
        image_to_rgb("rgb8", 4, 4, 12, bytes(48), max_pixels=15)


def test_rgb_to_fields_rejects_non_rgb_arrays():
    with pytest.raises(MalformedImage, match="HxWx3 uint8"):
        rgb_to_image_fields(np.zeros((4, 4), np.uint8))
    with pytest.raises(MalformedImage, match="HxWx3 uint8"):
        rgb_to_image_fields(np.zeros((4, 4, 3), np.float32))


def _encode(rgb: np.ndarray, codec: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=codec)
    return out.getvalue()


def test_png_decodes_losslessly_and_jpeg_approximately():
    rgb = _rgb(16, 16)
    np.testing.assert_array_equal(decode_compressed("png", _encode(rgb, "PNG")), rgb)
    smooth = np.tile(np.linspace(0, 255, 16, dtype=np.uint8)[None, :, None], (16, 1, 3))
    jpeg = decode_compressed("rgb8; jpeg compressed bgr8", _encode(smooth, "JPEG"))
    assert jpeg.shape == (16, 16, 3)
    assert np.abs(jpeg.astype(int) - smooth.astype(int)).mean() < 8


def test_compressed_errors_are_specific():
    with pytest.raises(UnsupportedImageEncoding, match="jpeg, png"):
        decode_compressed("tiff", b"abc")
    with pytest.raises(MalformedImage, match="empty"):
        decode_compressed("png", b"")
    with pytest.raises(MalformedImage, match="PNG"):
        decode_compressed("png", b"definitely not a png")
    truncated = _encode(_rgb(32, 32), "PNG")[:60]
    with pytest.raises(MalformedImage):
        decode_compressed("png", truncated)
    with pytest.raises(ImageTooLarge):
        decode_compressed("png", _encode(_rgb(8, 8), "PNG"), max_pixels=10)


def test_a_packed_image_gives_back_exactly_its_pixels_in_less_memory():
    # A frame like a rendered one: flat regions with a little noise, which PNG shrinks a lot.
    frame = np.zeros((64, 80, 3), np.uint8)
    frame[10:40, 20:60] = (200, 30, 40)
    frame[::7, ::5] = _rgb(10, 16)
    packed = PackedImage(frame)
    assert packed.shape == frame.shape and packed.dtype == np.uint8 and len(packed) == 64
    assert packed.nbytes < frame.nbytes / 4
    out = np.asarray(packed)
    np.testing.assert_array_equal(out, frame)
    out[0, 0] = 255  # each decode is the caller's own array
    np.testing.assert_array_equal(np.asarray(packed), frame)
    np.testing.assert_array_equal(packed[:, ::-1], frame[:, ::-1])
    # Random pixels survive too (lossless, not merely close).
    noise = _rgb(33, 17)
    np.testing.assert_array_equal(np.asarray(PackedImage(noise)), noise)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)])
def test_a_packed_image_refuses_what_is_not_an_rgb_frame(bad):
    with pytest.raises(MalformedImage, match="HxWx3 uint8"):
        PackedImage(bad)
