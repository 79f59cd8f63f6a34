"""The model a run trains: a pretrained base (quantized for qlora) or a fresh small OpenVLA, with
LoRA adapters in lora / qlora mode, and the processors that go with it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from vla_ros.model import adapters
from vla_ros.model.action_tokenizer import ActionTokenizer
from vla_ros.model.loading import load_checkpoint
from vla_ros.model.modeling_openvla import OpenVLAForActionPrediction
from vla_ros.model.processing import ImageProcessor, PromptTokenizer
from vla_ros.train.config import TrainConfig, TrainingError


def core_model(model: torch.nn.Module) -> OpenVLAForActionPrediction:
    """The OpenVLA module to call forward on: through DDP and peft wrappers (LoRA layers stay active)."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module
    return adapters.base_model(model)


@dataclass
class ModelBundle:
    model: torch.nn.Module  # OpenVLAForActionPrediction or a PeftModel around it
    image_processor: ImageProcessor
    prompt_tokenizer: PromptTokenizer
    action_tokenizer: ActionTokenizer
    tokenizer_dir: Path


def _change_base_weights(mode: str, what: str, change: Callable[[], object]) -> None:
    """Apply an option that rewrites the base's weights: only full training keeps such a change (an
    adapter holds only its own weights); a change the model refuses becomes a TrainingError."""
    if mode != "full":
        raise TrainingError(f"{what}, which an adapter cannot carry; use --mode full")
    try:
        change()
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc


def build_model(config: TrainConfig) -> ModelBundle:
    """The model to train: a pretrained base (quantized for qlora) or a fresh small one, with adapters."""
    device = torch.device(config.device)
    if config.base is not None:
        loaded = load_checkpoint(
            config.base,
            precision="fp32",
            quantization="4bit-nf4" if config.mode == "qlora" else "none",
            device=device,
        )
        model: torch.nn.Module = loaded.model
        image_processor, prompt_tokenizer = loaded.image_processor, loaded.prompt_tokenizer
        size = config.image_size_px
        if size is not None and size != loaded.model.config.image_size_px:
            _change_base_weights(
                config.mode,
                f"--image-size {size} differs from the base's {loaded.model.config.image_size_px} px: "
                "a new input size changes base weights",
                lambda: loaded.model.set_image_size(size),
            )
            image_processor = replace(image_processor, image_size_px=size)
        if config.add_sincos_position:
            from vla_ros.model.tiny import set_sincos_positions

            _change_base_weights(
                config.mode,
                "--add-sincos-position changes base weights",
                lambda: set_sincos_positions(loaded.model, add=True),
            )
        views = 1 + len(config.topics.extra_cameras)
        if views != loaded.model.config.num_images:
            if loaded.model.config.num_images != 1:
                raise TrainingError(
                    f"the base looks at {loaded.model.config.num_images} camera views per step; the bags are "
                    f"read with {views} (--camera-topic plus --wrist-camera-topic)"
                )
            _change_base_weights(
                config.mode,
                f"a second camera view (--wrist-camera-topic) changes the base's config (num_images {views})",
                lambda: setattr(loaded.model, "config", loaded.model.config.replace(num_images=views)),
            )
        tokenizer_dir = Path(config.base)
    else:
        from vla_ros.model.tiny import PRESETS, build_tiny_model, write_tokenizer

        if config.init not in PRESETS:
            raise TrainingError(f"--init must be one of {sorted(PRESETS)}, got {config.init!r}")
        try:
            spec = replace(
                PRESETS[config.init], image_size_px=config.image_size_px or 224, **config.init_overrides
            )
        except TypeError as exc:
            raise TrainingError(f"--init-override names an unknown TinySpec field: {exc}") from exc
        model = build_tiny_model(spec, seed=config.seed).to(device)
        tokenizer_dir = config.out / "tokenizer"
        if not (tokenizer_dir / "tokenizer.json").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=".tokenizer.", dir=config.out))
            write_tokenizer(tmp)
            os.replace(tmp, tokenizer_dir)
        image_processor = ImageProcessor(image_size_px=spec.image_size_px)
        prompt_tokenizer = PromptTokenizer.from_dir(tokenizer_dir)
        model.config = model.config.replace(num_images=1 + len(config.topics.extra_cameras))
    core = core_model(model)
    action_tokenizer = ActionTokenizer(
        n_bins=core.config.n_action_bins,
        vocab_size=prompt_tokenizer.base_vocab_size,
    )
    if config.mode in ("lora", "qlora"):
        model = adapters.add_lora_adapter(
            model,
            config=adapters.lora_config(
                adapters.base_model(model), rank=config.lora_rank, dropout=config.lora_dropout
            ),
        )
    model.train()
    return ModelBundle(model, image_processor, prompt_tokenizer, action_tokenizer, tokenizer_dir)


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}
