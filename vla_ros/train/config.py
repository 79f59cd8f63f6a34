"""Every knob of a behaviour-cloning run, declared once.

:class:`TrainConfig` is the run's configuration (saved as ``train_config.json`` next to its outputs).
A field with a ``help`` in its metadata is also a ``vla-ros train`` option: :func:`add_config_arguments`
derives the flag (``--field-name`` unless ``flag`` says otherwise), its type, default and help from the
field, and :func:`config_from_args` builds the config back from the parsed arguments. Topics,
synchronisation and cleaning are the dataset's own configs (:mod:`vla_ros.data.dataset`); the CLI adds
their options.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vla_ros.data.dataset import DEFAULT_TARGET_MASK_TOPIC, CleaningConfig, SyncConfig, TopicConfig
from vla_ros.errors import UserInputError
from vla_ros.model.options import DEFAULT_LORA_RANK

MODES = ("full", "lora", "qlora")


class TrainingError(UserInputError, RuntimeError):
    """Training cannot start or continue as configured; the message says what to change."""


def option(default: Any = MISSING, help: str = "", **argparse_kwargs: Any) -> Any:
    """A :class:`TrainConfig` field that is also a command-line option (``argparse_kwargs``: ``flag``,
    ``type``, ``choices``, ``nargs``, ``metavar``, ``required``, ``group``, ``action``)."""
    metadata = {"help": help, **argparse_kwargs}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _parse_overrides(items: list[str] | dict[str, int] | None) -> dict[str, int]:
    """``["llm_num_layers=3"]`` -> ``{"llm_num_layers": 3}`` (a dict passes through)."""
    if isinstance(items, dict):
        return dict(items)
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise TrainingError(f"--init-override takes FIELD=INTEGER (e.g. llm_num_layers=3), got {item!r}")
        overrides[key.strip()] = int(value)
    return overrides


@dataclass
class TrainConfig:
    """Every knob of a run; saved as train_config.json next to the outputs."""

    # (option() returns a dataclasses.field, which RUF009 cannot see.)
    bags: list[str] = option(help="bags or directories of bags", nargs="+", required=True, type=str)  # noqa: RUF009
    out_dir: str = option(help="run directory (outputs, resume state)", flag="--out", required=True)
    base: str | None = option(None, "checkpoint directory to fine-tune (official layout)", group="source")
    init: str | None = option(
        None, "train a fresh small OpenVLA from scratch", choices=["tiny", "small"], group="source"
    )
    image_size_px: int | None = option(
        None,
        "backbone input size: of an --init model (default 224), or to fine-tune --base at a new size "
        "(full mode; position embeddings are resampled; default: the base's own)",
        flag="--image-size",
        type=int,
    )
    add_sincos_position: bool = option(
        False,
        "--base, full mode: add fixed 2-D sin-cos patterns to both ViTs' position embeddings before "
        "training, so the backbone says where each patch is (for models trained from --init tiny)",
    )
    init_overrides: dict[str, int] = option(  # noqa: RUF009
        {},
        "change a size of the --init preset (TinySpec field, e.g. llm_num_layers=3); repeatable",
        flag="--init-override",
        action="append",
        metavar="FIELD=N",
    )
    mode: str = option(
        "full", "full: every weight; lora / qlora: an adapter (qlora on a 4-bit base)", choices=MODES
    )
    lora_rank: int = option(DEFAULT_LORA_RANK, "LoRA r (alpha = min(r, 16))")
    lora_dropout: float = 0.0
    checkpoint_out: str | None = option(
        None, "full mode: checkpoint directory (default OUT/checkpoint)", type=str
    )
    export_merged: bool = option(False, "lora/qlora: also write base+adapter merged")
    save_dtype: str = option("bf16", "dtype of the exported weights", choices=["bf16", "fp32", "fp16"])
    dataset_name: str = option("sim_workcell", "key of dataset_statistics.json")
    epochs: int = option(1, "passes over the training steps")
    max_steps: int | None = option(None, "optimiser steps (overrides --epochs)", type=int)
    batch_size: int = option(16, "steps per batch (per process)")
    grad_accum: int = option(1, "batches per optimiser step")
    learning_rate: float = option(5e-4, "peak learning rate", flag="--lr")
    min_lr_ratio: float = option(0.1, "the cosine decay ends at this fraction of --lr")
    warmup_steps: int = option(0, "linear warm-up steps")
    weight_decay: float = option(0.0, "AdamW weight decay (weights of 2+ dimensions)")
    grad_clip: float = 1.0
    random_crop: bool = option(
        True, "train on centre crops only", flag="--no-random-crop", action="store_false"
    )
    mirror_augment: bool = option(
        False,
        "see half the steps mirrored left-right (image, dy/droll/dyaw, left/right words); only for a camera "
        "in the base's xz-plane looking along x, like the simulated workcell's",
    )
    # 0: upstream's loss. > 0: the target is spread over neighbouring bins (Gaussian, this many bins
    # wide); for small data sets, where a classifier over 256 unordered bins otherwise learns little
    # more than the most common bins.
    bin_smoothing: float = option(
        0.0,
        "spread each action token's target over neighbouring bins (Gaussian width in bins); 0 = upstream's "
        "exact-bin cross-entropy",
    )
    patch_position_weight: float = option(
        0.0,
        "also train each projector output token to tell its own patch row and column, with this loss "
        "weight; for --init models, whose patch tokens otherwise do not say where they are. The head is not "
        "exported. 0 = off",
    )
    target_attention_weight: float = option(
        0.0,
        "also ask heads of the language model's last layer, where they predict the action, to look at the "
        "image patches showing the part or place the step heads for, with this loss weight. Needs bags with "
        "target masks (record-demos writes them on --target-mask-topic). 0 = off",
    )
    target_attention_heads: int = option(
        1, "how many of the last layer's heads --target-attention-weight supervises (the first N)"
    )
    heldout_fraction: float = option(0.1, "fraction of the episodes held out")
    heldout_episodes: int | None = option(None, "episodes held out (overrides --heldout-fraction)", type=int)
    eval_max_steps: int | None = option(None, "cap held-out steps per evaluation", type=int)
    save_every_steps: int | None = option(None, "also save the resume point every N steps", type=int)
    seed: int = option(0, "seeds the model, the data order and the augmentations")
    device: str = option("cpu", "torch device")
    num_threads: int | None = option(None, "torch threads (default: torch's)", type=int)
    progress: bool = option(True, "no progress bars", flag="--no-progress", action="store_false")
    topics: TopicConfig = field(default_factory=TopicConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)

    def __post_init__(self) -> None:
        self.init_overrides = _parse_overrides(self.init_overrides)
        if self.mode not in MODES:
            raise TrainingError(f"mode must be one of {MODES}, got {self.mode!r}")
        if (self.base is None) == (self.init is None):
            raise TrainingError("give exactly one of --base MODEL_DIR (fine-tune) or --init tiny|small")
        if self.mode == "qlora" and self.base is None:
            raise TrainingError("qlora quantizes a pretrained base: pass --base MODEL_DIR")
        if self.add_sincos_position and self.base is None:
            raise TrainingError(
                "--add-sincos-position adds to a --base's position embeddings; "
                "a fresh model takes --init-override sincos_position_init=1"
            )
        if self.batch_size < 1 or self.grad_accum < 1:
            raise TrainingError("batch_size and grad_accum must be at least 1")
        if not (self.patch_position_weight >= 0.0 and math.isfinite(self.patch_position_weight)):
            raise TrainingError(f"patch_position_weight must be >= 0, got {self.patch_position_weight}")
        if not (self.target_attention_weight >= 0.0 and math.isfinite(self.target_attention_weight)):
            raise TrainingError(f"target_attention_weight must be >= 0, got {self.target_attention_weight}")
        if self.target_attention_heads < 1:
            raise TrainingError(
                f"target_attention_heads must be at least 1, got {self.target_attention_heads}"
            )
        if self.target_attention_weight > 0 and self.topics.target_mask is None:
            self.topics = replace(self.topics, target_mask=DEFAULT_TARGET_MASK_TOPIC)

    @property
    def out(self) -> Path:
        return Path(self.out_dir)

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.checkpoint_out) if self.checkpoint_out else self.out / "checkpoint"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        data = dict(data)
        # Runs written before the options were renamed.
        if "base_image_size_px" in data:
            base_size = data.pop("base_image_size_px")
            data["image_size_px"] = base_size if data.get("base") else data.get("image_size_px")
        if "base_add_sincos_position" in data:
            data["add_sincos_position"] = data.pop("base_add_sincos_position")
        topics = TopicConfig(**data.pop("topics"))
        sync = SyncConfig(**data.pop("sync"))
        cleaning = CleaningConfig(**data.pop("cleaning"))
        return cls(**data, topics=topics, sync=sync, cleaning=cleaning)


def _cli_fields() -> list:
    return [f for f in fields(TrainConfig) if "help" in f.metadata]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`TrainConfig` field that has a ``help``; ``--base`` and ``--init`` are
    mutually exclusive and one of them is required."""
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f in _cli_fields():
        meta = dict(f.metadata)
        flag = meta.pop("flag", "--" + f.name.replace("_", "-"))
        group_name = meta.pop("group", None)
        kwargs: dict[str, Any] = {"dest": f.name, "help": meta.pop("help")}
        if f.default is not MISSING and f.default is not None and not isinstance(f.default, bool):
            kwargs["type"] = type(f.default)
        if isinstance(f.default, bool) and "action" not in meta:
            meta["action"] = "store_true"
        kwargs.update(meta)
        if "action" not in kwargs and "choices" not in kwargs:
            kwargs.setdefault("metavar", flag[2:].upper().replace("-", "_"))
        if kwargs.get("action") == "append":
            kwargs.pop("type", None)
        if not kwargs.get("required"):
            kwargs["default"] = None if kwargs.get("action") == "append" else f.default
        target: Any = parser
        if group_name is not None:
            if group_name not in groups:
                groups[group_name] = parser.add_mutually_exclusive_group(required=True)
            target = groups[group_name]
        target.add_argument(flag, **kwargs)


def config_from_args(
    args: argparse.Namespace, topics: TopicConfig, sync: SyncConfig, cleaning: CleaningConfig
) -> TrainConfig:
    """The :class:`TrainConfig` that :func:`add_config_arguments`' options describe."""
    values = {f.name: getattr(args, f.name) for f in _cli_fields()}
    return TrainConfig(**values, topics=topics, sync=sync, cleaning=cleaning)
