"""OpenVLA's hyperparameters, read from and written to the official ``config.json``.

The official checkpoint's ``config.json`` is the contract: its field names are kept verbatim so a
directory downloaded from the Hugging Face hub loads unchanged and a directory we write loads in
upstream's code. Two additions, written only when set: ``timm_model_kwargs`` lets small test and
simulation models reuse the same timm families with reduced depth/width (the official checkpoint does
not have it and gets the families' own sizes), ``num_images`` records a model that sees more than one
camera per step (upstream's code would feed it one image and misread every position after it), and
``center_crop`` records that the model was trained on random crops, so that every entry point
centre-crops its frames without being told (a plain upstream checkpoint has no field: no crop).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers import LlamaConfig

from vla_ros.errors import UserInputError

OFFICIAL_TIMM_MODEL_IDS = ("vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224")
# Llama-2's 32000 tokens + <PAD>, padded to a multiple of 64 (upstream's `pad_to_multiple_of`).
OFFICIAL_VOCAB_SIZE = 32064


class ConfigError(UserInputError, ValueError):
    """config.json is missing a field or has one whose value cannot describe an OpenVLA model."""


# Prismatic's vision backbone families (the prefix of vision_backbone_id) and whether each is fused
# (two towers, 6-channel input). OpenVLA uses dinosiglip-vit-so-224px.
VISION_BACKBONE_FAMILIES = {
    "dinosiglip-": True,
    "dinoclip-": True,
    "dinov2-": False,
    "siglip-": False,
    "clip-": False,
    "in1k-": False,
}


# text_config fields that are sizes (Llama's names).
_TEXT_CONFIG_SIZES = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class OpenVLAConfig:
    """Every hyperparameter of an OpenVLA model, named as in the official ``config.json``.

    ``text_config`` holds :class:`transformers.LlamaConfig` keyword arguments; missing ones take
    LlamaConfig's defaults, which are Llama-2-7B's sizes (the official file stores only the vocabulary
    size and pad id and relies on exactly this).
    """

    vision_backbone_id: str = "dinosiglip-vit-so-224px"
    llm_backbone_id: str = "llama2-7b-pure"
    arch_specifier: str = "no-align+fused-gelu-mlp"
    use_fused_vision_backbone: bool = True
    image_resize_strategy: str = "resize-naive"
    timm_model_ids: list[str] = field(default_factory=lambda: list(OFFICIAL_TIMM_MODEL_IDS))
    timm_override_act_layers: list[str | None] = field(default_factory=lambda: [None, None])
    image_sizes: list[int] = field(default_factory=lambda: [224, 224])
    hf_llm_id: str = "meta-llama/Llama-2-7b-hf"
    llm_max_length: int = 2048
    pad_token_id: int = 32000
    pad_to_multiple_of: int = 64
    output_projector_states: bool = False
    n_action_bins: int = 256
    text_config: dict[str, Any] = field(
        default_factory=lambda: {
            "model_type": "llama",
            "pad_token_id": 32000,
            "vocab_size": OFFICIAL_VOCAB_SIZE,
        }
    )
    norm_stats: dict[str, Any] | None = None
    torch_dtype: str = "bfloat16"
    # Not in the official file: per-backbone timm keyword overrides (depth, embed_dim, num_heads, ...)
    # for small models of the same families. Empty dicts mean the families' own sizes.
    timm_model_kwargs: list[dict[str, Any]] = field(default_factory=lambda: [{}, {}])
    # Not in the official file: camera views per step (scene camera first, then e.g. the wrist
    # camera). Each view goes through the same vision backbone and projector; the LM sees their patch
    # embeddings one view after another, as OpenVLA-OFT feeds a wrist camera.
    num_images: int = 1
    # Not in the official file: the model was trained on random crops (``vla-ros train``'s default), so
    # inference must centre-crop. Preprocessing belongs to the checkpoint, not to each entry point.
    center_crop: bool = False
    # Fields of config.json we do not interpret (auto_map, architectures, ...), kept for round trips.
    extra: dict[str, Any] = field(default_factory=dict)

    model_type = "openvla"

    def __post_init__(self) -> None:
        n_backbones = 2 if self.use_fused_vision_backbone else 1
        self._check_types()
        family = next((f for f in VISION_BACKBONE_FAMILIES if self.vision_backbone_id.startswith(f)), None)
        if family is None:
            raise ConfigError(
                f"vision_backbone_id {self.vision_backbone_id!r} is not a vision backbone this model knows "
                f"(families: {', '.join(VISION_BACKBONE_FAMILIES)}); OpenVLA checkpoints use "
                "'dinosiglip-vit-so-224px'"
            )
        if VISION_BACKBONE_FAMILIES[family] != self.use_fused_vision_backbone:
            raise ConfigError(
                f"vision_backbone_id {self.vision_backbone_id!r} "
                f"{'is' if VISION_BACKBONE_FAMILIES[family] else 'is not'} a fused backbone but "
                f"use_fused_vision_backbone is {self.use_fused_vision_backbone}"
            )
        if len(self.timm_model_ids) != n_backbones:
            raise ConfigError(
                f"use_fused_vision_backbone={self.use_fused_vision_backbone} needs {n_backbones} "
                f"timm_model_ids, got {self.timm_model_ids}"
            )
        if len(self.timm_override_act_layers) < n_backbones:
            self.timm_override_act_layers = list(self.timm_override_act_layers) + [None] * (
                n_backbones - len(self.timm_override_act_layers)
            )
        if len(self.timm_model_kwargs) < n_backbones:
            self.timm_model_kwargs = list(self.timm_model_kwargs) + [{}] * (
                n_backbones - len(self.timm_model_kwargs)
            )
        if isinstance(self.num_images, bool) or not isinstance(self.num_images, int) or self.num_images < 1:
            raise ConfigError(
                f"num_images must be a whole number >= 1 (camera views), got {self.num_images!r}"
            )
        if not isinstance(self.center_crop, bool):
            raise ConfigError(f"center_crop must be true or false, got {self.center_crop!r}")
        if len(set(self.image_sizes)) != 1:
            raise ConfigError(
                f"both backbones must see the same image size, got image_sizes={self.image_sizes}"
            )
        if self.image_resize_strategy != "resize-naive":
            raise ConfigError(
                f"image_resize_strategy {self.image_resize_strategy!r} is not supported; OpenVLA checkpoints "
                "use 'resize-naive'"
            )

    def _check_types(self) -> None:
        """Field types and ranges, so a hand-edited config.json fails here, naming the field, rather
        than deep inside the model build."""
        checks = {
            "vision_backbone_id": (isinstance(self.vision_backbone_id, str), "a string"),
            "use_fused_vision_backbone": (isinstance(self.use_fused_vision_backbone, bool), "true or false"),
            "n_action_bins": (_whole(self.n_action_bins) and self.n_action_bins >= 2, "a whole number >= 2"),
            "llm_max_length": (
                _whole(self.llm_max_length) and self.llm_max_length >= 1,
                "a whole number >= 1",
            ),
            "image_sizes": (
                isinstance(self.image_sizes, list)
                and len(self.image_sizes) > 0
                and all(_whole(s) and s >= 14 for s in self.image_sizes),
                "a list of whole numbers >= 14 (pixels)",
            ),
            "timm_model_ids": (
                isinstance(self.timm_model_ids, list)
                and all(isinstance(t, str) for t in self.timm_model_ids),
                "a list of timm model names",
            ),
            "text_config": (isinstance(self.text_config, dict), "an object of Llama settings"),
        }
        for name, (ok, expected) in checks.items():
            if not ok:
                raise ConfigError(f"config.json field {name} must be {expected}, got {getattr(self, name)!r}")
        # The Llama sizes a hand edit can break; transformers would only warn about some of them.
        for name in _TEXT_CONFIG_SIZES:
            value = self.text_config.get(name)
            if value is not None and not (_whole(value) and value >= 1):
                raise ConfigError(
                    f"config.json field text_config.{name} must be a whole number >= 1, got {value!r}"
                )
        vocab_size = self.text_config.get("vocab_size")
        pad_token_id = self.text_config.get("pad_token_id", self.pad_token_id)
        if vocab_size is not None and _whole(pad_token_id) and not 0 <= pad_token_id < vocab_size:
            raise ConfigError(
                f"config.json: pad_token_id {pad_token_id} is outside the vocabulary "
                f"(text_config.vocab_size {vocab_size}); the two come from different models"
            )

    @property
    def image_size_px(self) -> int:
        return int(self.image_sizes[0])

    @property
    def n_backbones(self) -> int:
        return 2 if self.use_fused_vision_backbone else 1

    def llama_config(self) -> LlamaConfig:
        """The language model's config; LlamaConfig defaults fill what ``text_config`` leaves out."""
        kwargs = {
            k: v for k, v in self.text_config.items() if k not in ("model_type", "torch_dtype", "dtype")
        }
        kwargs.setdefault("pad_token_id", self.pad_token_id)
        kwargs.setdefault("max_position_embeddings", self.llm_max_length)
        return LlamaConfig(**kwargs)

    @property
    def vocab_size(self) -> int:
        return int(self.llama_config().vocab_size)

    # --- config.json round trip ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """config.json content: official fields first, uninterpreted fields preserved."""
        out = dict(self.extra)
        for f in fields(self):
            if f.name in ("extra", "timm_model_kwargs", "num_images", "center_crop"):
                continue
            out[f.name] = getattr(self, f.name)
        if any(self.timm_model_kwargs):
            out["timm_model_kwargs"] = self.timm_model_kwargs
        if self.num_images != 1:
            out["num_images"] = self.num_images
        if self.center_crop:
            out["center_crop"] = True
        out["model_type"] = self.model_type
        return json.loads(json.dumps(out))  # deep copy, JSON types only

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpenVLAConfig:
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "model_type"}
        model_type = data.get("model_type", "openvla")
        if model_type != "openvla":
            raise ConfigError(f"config.json has model_type={model_type!r}; expected an OpenVLA checkpoint")
        order = data.get("action_token_order")
        if order is not None and list(order) != list(range(len(order))):
            raise ConfigError(
                f"config.json has action_token_order={order}: the model emits its action tokens in another "
                "order, which this version no longer decodes (it was an experiment; see git history)"
            )
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json_file(cls, path: str | Path) -> OpenVLAConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc}); re-download or rewrite it") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path} is not a text file ({exc.reason}); re-download or rewrite it") from exc
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path} holds a JSON {type(data).__name__}, not an object of fields: it is not an OpenVLA "
                "config.json"
            )
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    def replace(self, **changes: Any) -> OpenVLAConfig:
        data = asdict(self)
        data.update(changes)
        return OpenVLAConfig(**data)
