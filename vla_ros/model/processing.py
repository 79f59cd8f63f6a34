"""Model inputs: the camera image as 6 normalised channels, and the instruction as prompt token ids.

The image is resized naively (no aspect-preserving crop or letterbox) to the backbones' size with
PIL's bicubic filter, as upstream's processor does, then normalised twice: ImageNet mean/std for
DINOv2, 0.5/0.5 for SigLIP. Models fine-tuned with random-crop augmentation expect the optional
centre crop (90% of the area), as in upstream's evaluation scripts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer

from vla_ros.errors import UserInputError
from vla_ros.model.modeling_openvla import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
PROMPT_TEMPLATE = "In: What action should the robot take to {instruction}?\nOut:"
# Llama-2's lone "▁" piece; upstream appends it when the prompt does not already end with it.
SPACE_TOKEN_ID = 29871
CENTER_CROP_AREA_FRACTION = 0.9

_PIL_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


class ImageFormatError(UserInputError, ValueError):
    """The camera image is not an HxWx3 uint8 RGB array."""


def validate_rgb_image(image: np.ndarray) -> np.ndarray:
    """Refuse anything but an HxWx3 uint8 array, saying how to convert it."""
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(
            f"expected a numpy array, got {type(image).__name__}; use np.asarray(pil_image)"
        )
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise ImageFormatError(
            f"got a single-channel (grayscale) image of shape {image.shape}; OpenVLA needs RGB: "
            "np.repeat(image.reshape(h, w, 1), 3, axis=2) or convert('RGB') in PIL"
        )
    if image.ndim == 3 and image.shape[2] == 4:
        raise ImageFormatError(
            f"got an RGBA image of shape {image.shape}; drop the alpha channel: image[..., :3]"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageFormatError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageFormatError(f"image has no pixels: shape {image.shape}")
    if image.dtype != np.uint8:
        raise ImageFormatError(
            f"expected dtype uint8 (0..255), got {image.dtype}; for floats in [0, 1] use "
            "(image * 255).round().astype(np.uint8)"
        )
    return image


def center_crop(image: np.ndarray, area_fraction: float = CENTER_CROP_AREA_FRACTION) -> np.ndarray:
    """The central region with ``area_fraction`` of the pixels, same aspect ratio."""
    h, w = image.shape[:2]
    side = math.sqrt(area_fraction)
    ch, cw = max(1, round(h * side)), max(1, round(w * side))
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top : top + ch, left : left + cw]


@dataclass
class ImageProcessor:
    """HxWx3 uint8 RGB -> [6, S, S] float pixel values (DINOv2 channels, then SigLIP channels)."""

    image_size_px: int = 224
    means: list[tuple[float, float, float]] = field(default_factory=lambda: [IMAGENET_MEAN, SIGLIP_MEAN])
    stds: list[tuple[float, float, float]] = field(default_factory=lambda: [IMAGENET_STD, SIGLIP_STD])
    interpolation: str = "bicubic"

    @classmethod
    def from_preprocessor_config(cls, data: dict) -> ImageProcessor:
        """From the official ``preprocessor_config.json`` content."""
        if data.get("image_resize_strategy", "resize-naive") != "resize-naive":
            raise ValueError(f"unsupported image_resize_strategy {data['image_resize_strategy']!r}")
        means, stds = data.get("means"), data.get("stds")
        if means is None or stds is None:
            params = data.get("tvf_normalize_params")
            if not params:
                raise ValueError("preprocessor_config.json has neither means/stds nor tvf_normalize_params")
            means = [p["mean"] for p in params]
            stds = [p["std"] for p in params]
        sizes = {int(s[-1]) for s in data.get("input_sizes", [[3, 224, 224]])}
        if len(sizes) != 1:
            raise ValueError(
                f"backbones with different input sizes are not supported: {data.get('input_sizes')}"
            )
        interpolations = set(data.get("interpolations", ["bicubic"]))
        if len(interpolations) != 1 or next(iter(interpolations)) not in _PIL_FILTERS:
            raise ValueError(f"unsupported interpolations {sorted(interpolations)}; expected bicubic")
        return cls(
            image_size_px=sizes.pop(),
            means=[tuple(m) for m in means],
            stds=[tuple(s) for s in stds],
            interpolation=interpolations.pop(),
        )

    def to_preprocessor_config(self) -> dict:
        """The official file's fields (those upstream's PrismaticImageProcessor reads)."""
        s = self.image_size_px
        n = len(self.means)
        return {
            "image_processor_type": "PrismaticImageProcessor",
            "processor_class": "PrismaticProcessor",
            "image_resize_strategy": "resize-naive",
            "use_fused_vision_backbone": n == 2,
            "input_sizes": [[3, s, s]] * n,
            "interpolations": [self.interpolation] * n,
            "means": [list(m) for m in self.means],
            "stds": [list(v) for v in self.stds],
            "tvf_resize_params": [
                {"size": [s, s], "interpolation": 3, "max_size": None, "antialias": True} for _ in range(n)
            ],
            "tvf_crop_params": [{"output_size": [s, s]} for _ in range(n)],
            "tvf_normalize_params": [
                {"mean": list(m), "std": list(v), "inplace": False}
                for m, v in zip(self.means, self.stds, strict=True)
            ],
            "tvf_do_letterbox": False,
            "tvf_letterbox_fill": None,
        }

    def __call__(self, image: np.ndarray, center_crop_image: bool = False) -> torch.Tensor:
        """One image -> [6, S, S] float32 (3 channels per backbone)."""
        image = validate_rgb_image(image)
        if center_crop_image:
            image = center_crop(image)
        s = self.image_size_px
        if image.shape[:2] != (s, s):
            image = np.asarray(Image.fromarray(image).resize((s, s), _PIL_FILTERS[self.interpolation]))
        rgb = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float() / 255.0
        parts = [
            (rgb - torch.tensor(m).view(3, 1, 1)) / torch.tensor(v).view(3, 1, 1)
            for m, v in zip(self.means, self.stds, strict=True)
        ]
        return torch.cat(parts, dim=0)

    def batch(self, images: list[np.ndarray], center_crop_image: bool = False) -> torch.Tensor:
        return torch.stack([self(im, center_crop_image) for im in images])


def build_prompt(instruction: str) -> str:
    """OpenVLA's prompt; the instruction is lower-cased as in upstream's examples and training."""
    return PROMPT_TEMPLATE.format(instruction=instruction.strip().lower())


class PromptTokenizer:
    """The Llama tokenizer (``tokenizer.json``) plus OpenVLA's prompt conventions."""

    def __init__(
        self, tokenizer: Tokenizer, bos_token: str = "<s>", eos_token: str = "</s>", pad_token: str = "<PAD>"
    ):
        self.tokenizer = tokenizer
        self.bos_token_id = self._require_id(bos_token)
        self.eos_token_id = self._require_id(eos_token)
        self.pad_token_id = tokenizer.token_to_id(pad_token)
        space_id = tokenizer.token_to_id("▁")
        self.space_token_id = SPACE_TOKEN_ID if space_id is None else space_id

    def _require_id(self, token: str) -> int:
        token_id = self.tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"tokenizer has no {token!r} token; is tokenizer.json a Llama tokenizer?")
        return token_id

    @classmethod
    def from_dir(cls, directory: str | Path) -> PromptTokenizer:
        directory = Path(directory)
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{directory} has no tokenizer.json (only the fast tokenizer file is read; convert "
                "tokenizer.model with transformers' LlamaTokenizerFast and save_pretrained)"
            )
        special = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            if (directory / name).is_file():
                for key, value in json.loads((directory / name).read_text()).items():
                    if key in ("bos_token", "eos_token", "pad_token") and key not in special:
                        special[key] = value["content"] if isinstance(value, dict) else value
        return cls(Tokenizer.from_file(str(path)), **{k: v for k, v in special.items() if v is not None})

    @property
    def base_vocab_size(self) -> int:
        """Size without added tokens (32000 for Llama-2): action ids are counted down from here."""
        return self.tokenizer.get_vocab_size(with_added_tokens=False)

    def encode_prompt(self, instruction: str) -> list[int]:
        """BOS + prompt tokens + the "▁" token, the input from which the action tokens are decoded."""
        ids = [
            self.bos_token_id,
            *self.tokenizer.encode(build_prompt(instruction), add_special_tokens=False).ids,
        ]
        if ids[-1] != self.space_token_id:
            ids.append(self.space_token_id)
        return ids

    def encode_training_example(
        self, instruction: str, action_token_ids: list[int]
    ) -> tuple[list[int], list[int]]:
        """(input_ids, labels) for behaviour cloning: loss on the action tokens and the final EOS only."""
        prompt = self.encode_prompt(instruction)
        targets = [int(t) for t in action_token_ids] + [self.eos_token_id]
        return prompt + targets, [IGNORE_INDEX] * len(prompt) + targets

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode([int(t) for t in token_ids], skip_special_tokens=False)


def collate_training_examples(
    examples: list[tuple[list[int], list[int]]], pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad (input_ids, labels) pairs -> input_ids, attention_mask, labels tensors [B, T]."""
    length = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), length), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
    for i, (ids, lab) in enumerate(examples):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        attention_mask[i, : len(ids)] = 1
    return input_ids, attention_mask, labels
