"""The OpenVLA policy: camera image + instruction -> :class:`~vla_ros.action.Action`.

Built from a checkpoint directory and a :class:`PolicyConfig` alone. The pieces training needs
(image processor, prompt tokenizer, action tokenizer, statistics, a multimodal forward) are exposed
so that behaviour cloning uses exactly the inference-time preprocessing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vla_ros.action import Action
from vla_ros.errors import UserInputError
from vla_ros.model import adapters
from vla_ros.model.loading import LoadedCheckpoint, load_checkpoint
from vla_ros.model.modeling_openvla import OpenVLAForActionPrediction, OpenVLAOutput
from vla_ros.model.options import DEFAULT_PRECISION


class InstructionError(UserInputError, ValueError):
    """An instruction the model cannot act on (empty, or longer than its context)."""


@dataclass
class PolicyConfig:
    """How to run a checkpoint. ``quantization``: none, 8bit, 4bit-nf4, 4bit-fp4.

    ``center_crop``: None uses what the checkpoint's config.json records (a model trained on random
    crops is centre-cropped at inference; an upstream checkpoint is not); True/False overrides it.
    ``precision``: auto (bf16 on a GPU with bf16 support, fp32 on the CPU), fp32, bf16 or fp16; the
    policy's ``precision`` attribute says what auto became.
    """

    checkpoint_dir: str | Path
    precision: str = DEFAULT_PRECISION
    quantization: str = "none"
    quantize_vision: bool = False
    quantize_projector: bool = False
    device: str = "cpu"
    adapter_dir: str | Path | None = None
    merge_adapter: bool = False
    unnorm_key: str | None = None
    center_crop: bool | None = None
    constrain_to_action_tokens: bool = False


class VLAPolicy:
    """OpenVLA behind the :class:`~vla_ros.action.Policy` protocol."""

    name = "openvla"

    def __init__(self, config: PolicyConfig, loaded: LoadedCheckpoint | None = None) -> None:
        self.config = config
        self.loaded = loaded or load_checkpoint(
            config.checkpoint_dir,
            precision=config.precision,
            quantization=config.quantization,
            quantize_vision=config.quantize_vision,
            quantize_projector=config.quantize_projector,
            device=config.device,
        )
        # The dtype "auto" resolved to (a checkpoint loaded elsewhere and passed in says its own).
        self.precision = self.loaded.precision or config.precision
        self.image_processor = self.loaded.image_processor
        # What config.json records unless the caller says otherwise (see PolicyConfig).
        self.center_crop = (
            self.loaded.config.center_crop if config.center_crop is None else config.center_crop
        )
        self.prompt_tokenizer = self.loaded.prompt_tokenizer
        self.action_tokenizer = self.loaded.action_tokenizer
        unnorm_key = config.unnorm_key
        adapter_stats = _adapter_statistics(config.adapter_dir)
        if adapter_stats:
            # An adapter fine-tuned on a dataset carries that dataset's statistics (vla-ros train writes
            # them); with a single dataset there, it is the one to un-normalise with unless told otherwise.
            self.loaded.norm_stats = {**self.loaded.norm_stats, **adapter_stats}
            if unnorm_key is None and len(adapter_stats) == 1:
                unnorm_key = next(iter(adapter_stats))
        self.unnorm_key, self.action_statistics = self.loaded.action_statistics(unnorm_key)
        self.model: OpenVLAForActionPrediction | adapters.PeftModel = self.loaded.model
        if config.adapter_dir is not None:
            self.load_adapter(config.adapter_dir, "default")
            if config.merge_adapter:
                self.model = adapters.merge_adapter(self.model)

    # --- adapters -------------------------------------------------------------------------------
    def load_adapter(self, adapter_dir: str | Path, adapter_name: str) -> None:
        """Attach a LoRA adapter directory under ``adapter_name`` and make it the active one."""
        self.model = adapters.load_adapter(self.model, adapter_dir, adapter_name)

    def use_adapter(self, adapter_name: str) -> None:
        if not isinstance(self.model, adapters.PeftModel):
            raise adapters.AdapterError("no adapters are loaded (or they were merged)")
        adapters.set_active_adapter(self.model, adapter_name)

    @property
    def core_model(self) -> OpenVLAForActionPrediction:
        """The OpenVLA module (with the active adapter's LoRA layers when adapters are attached)."""
        return adapters.base_model(self.model)

    # --- inference ------------------------------------------------------------------------------
    @property
    def num_images(self) -> int:
        """Camera views the checkpoint looks at per step: the scene camera, then ``extra_images``."""
        return self.core_model.config.num_images

    def encode_inputs(
        self, image: np.ndarray, instruction: str, extra_images: Sequence[np.ndarray] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """pixel_values [1, 6 * views, S, S] and prompt input_ids [1, T] for one observation."""
        views = [image, *extra_images]
        if len(views) != self.num_images:
            raise ValueError(
                f"this checkpoint looks at {self.num_images} camera view(s) per step "
                f"(config.json num_images), got {len(views)}: pass the scene image"
                + (" and the wrist camera's as extra_images" if self.num_images > 1 else " alone")
            )
        pixel_values = torch.cat(
            [self.image_processor(v, center_crop_image=self.center_crop) for v in views]
        )[None]
        input_ids = torch.tensor([self._prompt_ids(instruction)], dtype=torch.long)
        return pixel_values, input_ids

    def _prompt_ids(self, instruction: str) -> list[int]:
        """The prompt's token ids, refusing an instruction the model cannot act on: an empty one, or one
        longer than the text the model reads (config.json ``llm_max_length``, upstream's tokenizer limit;
        the image patches and the action come on top of it)."""
        if not isinstance(instruction, str) or not any(
            ch.isprintable() and not ch.isspace() for ch in instruction
        ):
            raise InstructionError(
                "the instruction is empty (or only spaces and control characters): "
                "say what the robot should do"
            )
        ids = self.prompt_tokenizer.encode_prompt(instruction)
        limit = self.core_model.config.llm_max_length
        if len(ids) > limit:
            raise InstructionError(
                f"the instruction is {len(ids)} tokens with the prompt; this model reads at most {limit} "
                "(config.json llm_max_length)"
            )
        return ids

    def predict_action(
        self, image: np.ndarray, instruction: str, extra_images: Sequence[np.ndarray] = ()
    ) -> Action:
        """``extra_images``: the other cameras of a multi-view checkpoint (:attr:`num_images`), in
        the order it was trained on (``vla-ros train --wrist-camera-topic``)."""
        return self.predict_actions([image], [instruction], [extra_images])[0]

    def predict_actions(
        self,
        images: Sequence[np.ndarray],
        instructions: Sequence[str],
        extra_images: Sequence[Sequence[np.ndarray]] | None = None,
    ) -> list[Action]:
        """One action per (image, instruction) pair, decoded as one batch.

        Prompts of different lengths are left-padded and masked, so each row gets the action it
        would get alone (same tokens; logits equal to float rounding). Each action's
        ``inference_time_s`` is the whole batch's time, and ``extras["batch_size"]`` says how many
        shared it.
        """
        if len(images) != len(instructions):
            raise ValueError(f"got {len(images)} images but {len(instructions)} instructions")
        if not images:
            return []
        extra_images = extra_images if extra_images is not None else [()] * len(images)
        if len(extra_images) != len(images):
            raise ValueError(f"got {len(images)} images but {len(extra_images)} sets of extra images")
        start = time.perf_counter()
        rows = [self.encode_inputs(*row) for row in zip(images, instructions, extra_images, strict=True)]
        pixel_values = torch.cat([pixels for pixels, _ in rows])
        input_ids, attention_mask = self._left_pad([ids[0] for _, ids in rows])
        allowed = self.action_tokenizer.token_id_range if self.config.constrain_to_action_tokens else None
        token_rows = (
            self.core_model.generate_action_tokens(
                pixel_values,
                input_ids,
                self.action_statistics.action_dim,
                allowed_token_range=allowed,
                attention_mask=attention_mask,
            )
            .cpu()
            .numpy()
        )
        elapsed_s = time.perf_counter() - start
        lo, hi = self.action_tokenizer.token_id_range
        actions = []
        for token_ids in token_rows:
            normalized = self.action_tokenizer.decode(token_ids)
            actions.append(
                Action(
                    vector=self.action_statistics.unnormalize(normalized),
                    token_ids=tuple(int(t) for t in token_ids),
                    inference_time_s=elapsed_s,
                    extras={
                        "normalized_action": normalized,
                        "unnorm_key": self.unnorm_key,
                        "all_tokens_are_action_tokens": bool(np.all((token_ids >= lo) & (token_ids < hi))),
                        "batch_size": len(token_rows),
                    },
                )
            )
        return actions

    def _left_pad(self, prompts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[B, T] ids with the shorter prompts padded on the left, and their mask (None: no padding)."""
        length = max(len(ids) for ids in prompts)
        if all(len(ids) == length for ids in prompts):
            return torch.stack(prompts), None
        pad_id = self.prompt_tokenizer.pad_token_id
        pad_id = self.prompt_tokenizer.eos_token_id if pad_id is None else pad_id  # masked out either way
        input_ids = torch.full((len(prompts), length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), length), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, length - len(ids) :] = ids
            attention_mask[row, length - len(ids) :] = 1
        return input_ids, attention_mask

    # --- training support -----------------------------------------------------------------------
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> OpenVLAOutput:
        """Multimodal forward, image patches after BOS (see OpenVLAForActionPrediction.forward)."""
        return self.core_model(pixel_values, input_ids, attention_mask, labels)

    def encode_training_example(self, action: np.ndarray, instruction: str) -> tuple[list[int], list[int]]:
        """A raw action of this policy's dataset -> (input_ids, labels) for cross-entropy on action tokens."""
        token_ids = self.action_tokenizer.encode(self.action_statistics.normalize(action))
        return self.prompt_tokenizer.encode_training_example(instruction, token_ids.tolist())


def _adapter_statistics(adapter_dir: str | Path | None) -> dict:
    """``dataset_statistics.json`` next to an adapter's weights, if there is one."""
    if adapter_dir is None:
        return {}
    path = Path(adapter_dir) / "dataset_statistics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def recorded_center_crop(checkpoint_dir: str | Path) -> bool:
    """Whether a checkpoint's config.json says it was trained on random crops (centre-crop at inference);
    False for a plain upstream checkpoint, which has no such field."""
    path = Path(checkpoint_dir) / "config.json"
    if not path.is_file():
        return False
    return bool(json.loads(path.read_text()).get("center_crop", False))
