"""Behaviour cloning of OpenVLA from rosbags: cross-entropy on the action tokens, full / LoRA / QLoRA.

Read top to bottom, as nanoGPT's train.py: configuration, data, model, optimiser and schedule, the
loop, evaluation, saving. The recipe is upstream's fine-tuning recipe:

- Data: bags -> synchronised, cleaned episodes (:mod:`vla_ros.data.dataset`); q01/q99 statistics of
  the training episodes written as ``dataset_statistics.json`` (official layout, keyed by
  ``dataset_name``); each step becomes (image, prompt, action) with the action normalised to [-1, 1]
  and discretised into 7 action tokens (:class:`~vla_ros.model.action_tokenizer.ActionTokenizer`).
- Images: random crop of 90% of the area (random position, square aspect), resized to the backbone
  size, at training time; the centre crop of the same size for evaluation and at inference
  (``PolicyConfig(center_crop=True)``), as upstream.
- ``--mirror-augment`` (off by default): half of the training steps are seen mirrored left-right
  (image flipped, dy/droll/dyaw negated, "left"/"right" swapped in the instruction). Valid only for a
  camera looking along the base's x axis from the xz-plane, as the simulated workcell's does; it
  makes the instruction alone useless for telling left from right, so the policy has to look.
- Loss: cross-entropy on the 7 action tokens and the closing EOS only; prompt and image positions
  carry IGNORE_INDEX (the model's LM head does not even run on them).
- ``--patch-position-weight W`` (off by default; not upstream's): adds W times a cross-entropy that
  asks each projector output token for its own patch row and column (:class:`PatchPositionHead`). For
  models trained from scratch, whose patch tokens otherwise lose where they are; the head lives only
  in ``training_state/`` and is not part of the exported checkpoint.
- ``--target-attention-weight W`` (off by default; not upstream's): adds W times -log of the attention
  mass that heads of the LM's last layer put, from the action-predicting positions, on the patches
  showing what the step heads for (:class:`TargetAttentionLoss`; the masks come from bags recorded
  by ``record-demos``). Nothing is added to the model.
- Modes: ``full`` (every weight; for the small models), ``lora`` (peft, all linear layers but the LM
  head, r=32, alpha=min(r, 16): upstream's defaults), ``qlora`` (the same adapter on a 4-bit NF4 base).
- AdamW, linear warm-up then cosine decay, gradient accumulation, gradient clipping, seeded.

Outputs under ``--out``:
    checkpoint/            full mode: official layout, loads with load_checkpoint / VLAPolicy
                           (``--checkpoint-out`` puts it elsewhere)
    adapter/               lora/qlora: adapter_config.json + adapter_model.safetensors +
                           dataset_statistics.json (VLAPolicy(adapter_dir=...) un-normalises with it)
    merged/                lora/qlora with --export-merged: base + adapter folded, official layout
    training_state/        resume point: trainable weights and AdamW state (safetensors), state.json
    dataset_statistics.json, cleaning_report.json, metrics.jsonl, train_config.json

Every file is written under a temporary name and renamed, so an interrupted run (Ctrl-C: the first
one finishes the current step and saves, a second one aborts) never leaves a half-written output;
``--resume`` continues from ``training_state/`` at the saved optimiser step with the same data order;
``vla-ros export-run OUT`` exports it (:func:`export_resume_point`) while the run goes on.

Multi-GPU: the loop runs under ``torchrun`` or ``accelerate launch`` (which set ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``): each process takes its share of every batch, gradients are averaged by
DistributedDataParallel, and only rank 0 evaluates and writes. For example::

    torchrun --nproc_per_node 8 -m vla_ros.train.bc --bags demos/ --base openvla-7b --mode lora \\
        --out runs/lora --batch-size 16 --device cuda
    accelerate launch --num_processes 8 -m vla_ros.train.bc ...    # same arguments

``--batch-size`` is per process; the effective batch is batch_size x grad_accum x processes. Only the
single-process path is tested here (CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vla_ros.data.dataset import (
    DEFAULT_TARGET_MASK_TOPIC,
    CleaningConfig,
    Episode,
    SyncConfig,
    TopicConfig,
    compute_dataset_statistics,
    load_episodes,
)
from vla_ros.model import adapters
from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
from vla_ros.model.loading import load_checkpoint, save_checkpoint
from vla_ros.model.modeling_openvla import IGNORE_INDEX, OpenVLAForActionPrediction
from vla_ros.model.processing import (
    CENTER_CROP_AREA_FRACTION,
    ImageProcessor,
    PromptTokenizer,
    center_crop,
    collate_training_examples,
)

MODES = ("full", "lora", "qlora")
STATE_DIR = "training_state"


class TrainingError(RuntimeError):
    """Training cannot start or continue as configured; the message says what to change."""


# ----------------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class TrainConfig:
    """Every knob of a run; saved as train_config.json next to the outputs."""

    bags: list[str]
    out_dir: str
    base: str | None = None  # checkpoint directory to fine-tune
    init: str | None = None  # or a fresh small model: a PRESETS name of vla_ros.model.tiny
    image_size_px: int = 224  # backbone input size of a fresh model
    # Fine-tune --base at this input size instead of its own (full mode; position embeddings resampled).
    base_image_size_px: int | None = None
    # Full mode, --base: add fixed 2-D sin-cos patterns to both ViTs' learnt position embeddings first.
    base_add_sincos_position: bool = False
    init_overrides: dict[str, int] = field(default_factory=dict)  # TinySpec fields of a fresh model
    mode: str = "full"
    lora_rank: int = adapters.DEFAULT_LORA_RANK
    lora_dropout: float = 0.0
    dataset_name: str = "sim_workcell"
    epochs: int = 1
    max_steps: int | None = None  # optimiser steps; overrides epochs when set
    batch_size: int = 16
    grad_accum: int = 1
    learning_rate: float = 5e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # 0: upstream's loss (cross-entropy with the recorded bin as the only target). > 0: the target is
    # spread over neighbouring bins (Gaussian, this many bins wide); for small data sets, where a
    # classifier over 256 unordered bins otherwise learns little more than the most common bins.
    bin_smoothing: float = 0.0
    # > 0: also ask every projector output token for its own patch row and column (cross-entropy, this
    # weight); see PatchPositionHead. For models trained from scratch; the head is not exported.
    patch_position_weight: float = 0.0
    # > 0: ask the first target_attention_heads heads of the language model's last layer, at the
    # positions that predict action tokens, to look at the image patches showing what the step heads
    # for (-log of their attention mass there, this weight). Needs bags with target masks
    # (topics.target_mask, written by record-demos); see TargetAttentionLoss.
    target_attention_weight: float = 0.0
    target_attention_heads: int = 1
    random_crop: bool = True
    mirror_augment: bool = False
    heldout_fraction: float = 0.1
    heldout_episodes: int | None = None  # overrides heldout_fraction
    eval_max_steps: int | None = None  # cap on held-out steps evaluated per epoch (None: all)
    save_every_steps: int | None = None  # also save the resume point every N steps
    seed: int = 0
    device: str = "cpu"
    num_threads: int | None = None
    checkpoint_out: str | None = None  # full mode: where the checkpoint goes (default out/checkpoint)
    save_dtype: str = "bf16"  # dtype of the exported checkpoint's weights
    export_merged: bool = False
    progress: bool = True
    topics: TopicConfig = field(default_factory=TopicConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise TrainingError(f"mode must be one of {MODES}, got {self.mode!r}")
        if (self.base is None) == (self.init is None):
            raise TrainingError("give exactly one of --base MODEL_DIR (fine-tune) or --init tiny|small")
        if self.mode == "qlora" and self.base is None:
            raise TrainingError("qlora quantizes a pretrained base: pass --base MODEL_DIR")
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
        topics = TopicConfig(**data.pop("topics"))
        sync = SyncConfig(**data.pop("sync"))
        cleaning = CleaningConfig(**data.pop("cleaning"))
        return cls(**data, topics=topics, sync=sync, cleaning=cleaning)


# ----------------------------------------------------------------------------------------------------------
# Data


def random_crop(image: np.ndarray, rng: np.random.Generator, area_fraction: float) -> np.ndarray:
    """A square-aspect crop with ``area_fraction`` of the pixels at a random position (upstream's
    augmentation; :func:`~vla_ros.model.processing.center_crop` is its inference-time counterpart)."""
    h, w = image.shape[:2]
    side = math.sqrt(area_fraction)
    ch, cw = max(1, round(h * side)), max(1, round(w * side))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    return image[top : top + ch, left : left + cw]


# Indices of the action vector a reflection through the base's xz-plane (y -> -y) negates: the
# translation's y and, the angular velocity being an axial vector, its x and z components.
MIRROR_NEGATED_DIMS = (1, 3, 5)
_MIRROR_WORDS = {"left": "right", "right": "left", "左": "右", "右": "左"}
_MIRROR_PATTERN = re.compile(r"\b(left|right)\b|[左右]", re.IGNORECASE)


def mirror_action(action: np.ndarray) -> np.ndarray:
    """The action seen in a mirror that swaps the robot's left and right."""
    mirrored = np.array(action, dtype=np.float64, copy=True)
    mirrored[..., list(MIRROR_NEGATED_DIMS)] *= -1.0
    return mirrored


def mirror_instruction(instruction: str) -> str:
    """Swap "left"/"right" (and 左/右): the instruction that matches the mirrored scene."""

    def swap(match: re.Match) -> str:
        word = match.group(0)
        out = _MIRROR_WORDS[word.lower()]
        return out.capitalize() if word[:1].isupper() else out

    return _MIRROR_PATTERN.sub(swap, instruction)


def mirror_episode(episode: Episode, flip_images: bool = True) -> Episode:
    """A mirrored copy. ``flip_images=False`` shares the original images (for statistics, which only
    read the actions: a flipped copy of every image would double the memory a large set needs)."""
    return Episode(
        images=[np.ascontiguousarray(im[:, ::-1]) for im in episode.images]
        if flip_images
        else episode.images,
        actions=mirror_action(episode.actions),
        instruction=mirror_instruction(episode.instruction),
        metadata=dict(episode.metadata),
        episode_id=f"{episode.episode_id}:mirrored",
        timestamps_ns=episode.timestamps_ns,
        step_instructions=[mirror_instruction(i) for i in episode.step_instructions or []] or None,
        target_masks=None
        if episode.target_masks is None
        else [None if m is None else m[:, ::-1] for m in episode.target_masks],
        # The workcell's wrist camera looks straight down with its image rows along x, so a mirror
        # in y flips its frames left-right too.
        extra_images=None
        if episode.extra_images is None or not flip_images
        else [tuple(np.ascontiguousarray(v[:, ::-1]) for v in views) for views in episode.extra_images],
    )


def patches_showing(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Which patches of a ``grid`` (rows, cols) laid over the (already cropped) ``mask`` hold any of
    its pixels, in the model's row-major patch order. The processor resizes the crop to the model's
    input, so patch edges fall evenly across it."""
    rows, cols = grid
    r_edges = np.linspace(0, mask.shape[0], rows + 1).round().astype(int)[:-1]
    c_edges = np.linspace(0, mask.shape[1], cols + 1).round().astype(int)[:-1]
    hit = np.logical_or.reduceat(np.logical_or.reduceat(mask, r_edges, axis=0), c_edges, axis=1)
    return hit.reshape(-1)


class ActionTokenDataset(torch.utils.data.Dataset):
    """Steps of cleaned episodes as (pixel_values, input_ids, labels) for cross-entropy on action tokens.

    Images are kept as recorded, so the evaluation path (centre crop, then the processor's resize) is
    exactly the policy's inference path.
    """

    def __init__(
        self,
        episodes: list[Episode],
        image_processor: ImageProcessor,
        prompt_tokenizer: PromptTokenizer,
        action_tokenizer: ActionTokenizer,
        statistics: ActionStatistics,
        train: bool,
        seed: int = 0,
        crop_area_fraction: float = CENTER_CROP_AREA_FRACTION,
        mirror: bool = False,
        random_crop: bool = True,
        target_grid: tuple[int, int] | None = None,
    ) -> None:
        self.image_processor = image_processor
        self.prompt_tokenizer = prompt_tokenizer
        self.action_tokenizer = action_tokenizer
        self.statistics = statistics
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.crop_area_fraction = crop_area_fraction
        self.mirror = mirror
        self.random_crop = random_crop
        # (rows, cols) of the image patches: batches then carry which patches show each step's target.
        self.target_grid = target_grid
        self.masks: list[np.ndarray | None] = []
        self.images: list[np.ndarray] = []
        # Per step, the other cameras' frames (Episode.extra_images), empty for one-camera data.
        self.extra_images: list[tuple[np.ndarray, ...]] = []
        self.actions: list[np.ndarray] = []
        self.examples: list[tuple[list[int], list[int]]] = []
        self.mirrored_examples: list[tuple[list[int], list[int]]] = []
        for ep in episodes:
            self.masks.extend(ep.target_masks or [None] * len(ep))
            self.extra_images.extend(ep.extra_images or [()] * len(ep))
            for image, action, instruction in zip(ep.images, ep.actions, ep.step_instructions, strict=True):
                self.images.append(image)
                self.actions.append(np.asarray(action, dtype=np.float64))
                self.examples.append(self._encode(action, instruction))
                if mirror:
                    self.mirrored_examples.append(
                        self._encode(mirror_action(action), mirror_instruction(instruction))
                    )

    def _encode(self, action: np.ndarray, instruction: str) -> tuple[list[int], list[int]]:
        tokens = self.action_tokens(action)
        return self.prompt_tokenizer.encode_training_example(instruction, tokens.tolist())

    def action_tokens(self, action: np.ndarray) -> np.ndarray:
        """Raw action -> q01/q99-normalised -> 7 token ids (the policy's decoding inverts this)."""
        return self.action_tokenizer.encode(self.statistics.normalize(action))

    def set_epoch(self, epoch: int) -> None:
        """Crops depend on (seed, epoch, index), so a resumed run sees the same augmentations."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.examples)

    def _augmentation(self, index: int) -> tuple[bool, np.random.Generator]:
        """Whether step ``index`` is mirrored this epoch, and the generator its crop then draws from.

        One generator per (seed, epoch, index): the mirror draw comes first (only with ``mirror``),
        so image, action and labels agree and runs without mirroring crop exactly as before."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        mirrored = self.train and self.mirror and bool(rng.random() < 0.5)
        return mirrored, rng

    def is_mirrored(self, index: int) -> bool:
        """Whether step ``index`` is seen mirrored this epoch (training with ``mirror`` only)."""
        return self._augmentation(index)[0]

    def action(self, index: int) -> np.ndarray:
        """The action step ``index`` is trained on this epoch (mirrored when its image is)."""
        action = self.actions[index]
        return mirror_action(action) if self.is_mirrored(index) else action

    def _view(self, image: np.ndarray, index: int) -> np.ndarray:
        """``image`` (or a mask of it) as step ``index`` is seen this epoch: mirrored, then cropped."""
        mirrored, rng = self._augmentation(index)
        image = np.asarray(image)  # a PackedImage decodes here
        if mirrored:
            image = image[:, ::-1]
        if self.train and self.random_crop:
            return random_crop(image, rng, self.crop_area_fraction)
        return center_crop(image, self.crop_area_fraction)

    def pixel_values(self, index: int) -> torch.Tensor:
        """[6 * views, S, S]: every camera's frame, mirrored and cropped alike (the policy centre-crops
        each view at inference)."""
        views = (self.images[index], *self.extra_images[index])
        return torch.cat([self.image_processor(np.ascontiguousarray(self._view(v, index))) for v in views])

    def target_patches(self, index: int) -> np.ndarray:
        """Which of the ``target_grid`` patches show step ``index``'s target (any of its pixels), in
        the model's row-major patch order; all False when the step has no mask or the crop cut it."""
        mask = self.masks[index]
        if mask is None:
            return np.zeros(self.target_grid[0] * self.target_grid[1], dtype=bool)
        return patches_showing(self._view(mask, index), self.target_grid)

    def _all_target_patches(self, index: int) -> np.ndarray:
        """:meth:`target_patches` over every view's patches, as the LM sees them: masks describe the
        main camera's frame, so the other views' patches are never targets."""
        others = len(self.extra_images[index]) * self.target_grid[0] * self.target_grid[1]
        return np.concatenate([self.target_patches(index), np.zeros(others, dtype=bool)])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, list[int], list[int]]:
        ids, labels = (self.mirrored_examples if self.is_mirrored(index) else self.examples)[index]
        return self.pixel_values(index), ids, labels

    def batch(self, indices: list[int] | np.ndarray) -> dict[str, torch.Tensor]:
        items = [self[int(i)] for i in indices]
        input_ids, attention_mask, labels = collate_training_examples(
            [(ids, lab) for _, ids, lab in items], self.prompt_tokenizer.pad_token_id or 0
        )
        return {
            "pixel_values": torch.stack([pv for pv, _, _ in items]),
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "index": torch.as_tensor(np.asarray(indices, dtype=np.int64)),
            **(
                {
                    "target_patches": torch.as_tensor(
                        np.stack([self._all_target_patches(int(i)) for i in indices])
                    )
                }
                if self.target_grid is not None
                else {}
            ),
        }


def split_episodes(
    episodes: list[Episode], heldout_fraction: float, heldout_episodes: int | None, seed: int
) -> tuple[list[Episode], list[Episode]]:
    """Whole episodes are held out (steps of one episode are too alike to measure generalisation)."""
    n = len(episodes)
    if heldout_episodes is None:
        heldout_episodes = math.ceil(n * heldout_fraction) if heldout_fraction > 0 else 0
    heldout_episodes = min(heldout_episodes, n - 1)
    order = np.random.default_rng(seed).permutation(n)
    held = set(order[:heldout_episodes].tolist())
    train = [e for i, e in enumerate(episodes) if i not in held]
    val = [e for i, e in enumerate(episodes) if i in held]
    return train, val


# ----------------------------------------------------------------------------------------------------------
# Loss


def action_token_loss(
    logits: torch.Tensor, targets: torch.Tensor, token_range: tuple[int, int], bin_smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy over the whole vocabulary at the labelled positions (``logits`` [N, V] and
    ``targets`` [N] as the model returns them). With ``bin_smoothing`` > 0 an action token's target
    is a Gaussian over the neighbouring action ids (adjacent ids are adjacent bins); EOS stays exact."""
    if bin_smoothing <= 0:
        return torch.nn.functional.cross_entropy(logits, targets)
    lo, hi = token_range
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    exact = -log_probs.gather(1, targets[:, None]).squeeze(1)
    # Rows whose target is not an action token (EOS) get a dummy centre: their smoothed term is
    # discarded below, but it must stay finite or its zero gradient would still be NaN.
    centre = targets.clamp(lo, hi - 1)
    distance = torch.arange(lo, hi, device=targets.device)[None, :] - centre[:, None]
    weights = torch.exp(-0.5 * (distance.float() / bin_smoothing) ** 2)
    weights = weights / weights.sum(dim=1, keepdim=True)
    smoothed = -(weights * log_probs[:, lo:hi]).sum(dim=1)
    is_action = (targets >= lo) & (targets < hi)
    return torch.where(is_action, smoothed, exact).mean()


# ----------------------------------------------------------------------------------------------------------
# Metrics


@dataclass
class BatchMetrics:
    """Sums over action tokens / steps, so batches of any size combine exactly."""

    loss_sum: float = 0.0
    labelled: int = 0
    correct_action_tokens: int = 0
    action_tokens: int = 0
    l1_sum: float = 0.0
    steps: int = 0

    def add(self, other: BatchMetrics) -> None:
        for name in asdict(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}loss": self.loss_sum / max(self.labelled, 1),
            f"{prefix}action_token_accuracy": self.correct_action_tokens / max(self.action_tokens, 1),
            f"{prefix}action_l1": self.l1_sum / max(self.steps, 1),
        }


def batch_metrics(
    logits: torch.Tensor,
    targets: torch.Tensor,
    loss: torch.Tensor,
    action_dim: int,
    action_tokenizer: ActionTokenizer,
    statistics: ActionStatistics,
    true_actions: np.ndarray,
) -> BatchMetrics:
    """Token accuracy and L1 (mean over dimensions, raw units) of the greedy decoded actions.

    ``logits``/``targets`` are the model's labelled positions in row-major order: per example the
    action tokens and then EOS.
    """
    per_example = action_dim + 1
    b = targets.shape[0] // per_example
    if b * per_example != targets.shape[0]:
        raise TrainingError("every example must label exactly the action tokens and EOS")
    predicted = logits.argmax(dim=-1).view(b, per_example)[:, :action_dim].cpu().numpy()
    expected = targets.view(b, per_example)[:, :action_dim].cpu().numpy()
    decoded = statistics.unnormalize(action_tokenizer.decode(predicted))
    return BatchMetrics(
        loss_sum=float(loss.detach()) * targets.shape[0],
        labelled=int(targets.shape[0]),
        correct_action_tokens=int((predicted == expected).sum()),
        action_tokens=int(expected.size),
        l1_sum=float(np.abs(decoded - true_actions).mean(axis=1).sum()),
        steps=b,
    )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: ActionTokenDataset,
    batch_size: int,
    max_steps: int | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Held-out loss, action-token accuracy and L1 of the decoded actions (centre crops)."""
    was_training = model.training
    model.eval()
    indices = np.arange(len(dataset))
    if max_steps is not None and len(indices) > max_steps:
        indices = np.linspace(0, len(dataset) - 1, max_steps).round().astype(np.int64)
    total = BatchMetrics()
    chunks = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="held-out eval", unit="batch", leave=False)
    for chunk in chunks:
        batch = dataset.batch(chunk)
        out = _core(model)(
            batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["labels"]
        )
        true = np.stack([dataset.action(int(i)) for i in chunk])
        total.add(
            batch_metrics(
                out.logits,
                out.labels,
                out.loss,
                dataset.statistics.action_dim,
                dataset.action_tokenizer,
                dataset.statistics,
                true,
            )
        )
    model.train(was_training)
    return total.as_dict("val_")


# ----------------------------------------------------------------------------------------------------------
# Model


def _core(model: torch.nn.Module) -> OpenVLAForActionPrediction:
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
        size = config.base_image_size_px
        if size is not None and size != loaded.model.config.image_size_px:
            _change_base_weights(
                config.mode,
                f"--image-size {size} differs from the base's {loaded.model.config.image_size_px} px: "
                "a new input size changes base weights",
                lambda: loaded.model.set_image_size(size),
            )
            image_processor = replace(image_processor, image_size_px=size)
        if config.base_add_sincos_position:
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
            spec = replace(PRESETS[config.init], image_size_px=config.image_size_px, **config.init_overrides)
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
    core = _core(model)
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


class PatchPositionHead(torch.nn.Module):
    """A linear readout that asks each projector output token for its own patch row and column.

    The language model sees the image only through the projector's tokens, and its rotary positions
    shape where attention looks, not what the attended values say. So a token must itself carry
    where its patch is, or no policy on top can tell where a part lies (pretrained DINOv2/SigLIP
    features carry it; a backbone trained from scratch on behaviour cloning drops it:
    ``benchmarks/probe_patch_positions.py``). This self-supervised loss keeps it. The head is only
    for training: the exported checkpoint is the plain OpenVLA model.
    """

    PREFIX = "patch_position_head."

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        core = _core(model)
        self.rows, self.cols = (int(n) for n in core.vision_backbone.featurizer.patch_embed.grid_size)
        self.linear = torch.nn.Linear(core.config.llama_config().hidden_size, self.rows + self.cols)
        self.linear.to(core.device)
        self._captured: list[torch.Tensor] = []
        # A closure over the list, not self, so the model holds no reference to this head.
        captured = self._captured
        self._hook = core.projector.register_forward_hook(lambda _m, _i, out: captured.append(out))

    def loss(self) -> torch.Tensor:
        """Cross-entropy (row + column) over the tokens of the forward passes since the last call."""
        tokens, self._captured[:] = torch.cat(self._captured), []
        logits = self.linear(tokens.float())  # [B, rows * cols, rows + cols]
        index = torch.arange(self.rows * self.cols, device=logits.device)
        row, col = index // self.cols, index % self.cols
        batch = logits.shape[0]
        return torch.nn.functional.cross_entropy(
            logits[..., : self.rows].reshape(-1, self.rows), row.repeat(batch)
        ) + torch.nn.functional.cross_entropy(
            logits[..., self.rows :].reshape(-1, self.cols), col.repeat(batch)
        )

    def discard(self) -> None:
        """Forget captured tokens (forward passes made for evaluation, not training)."""
        self._captured.clear()

    def remove(self) -> None:
        self._hook.remove()
        self._captured.clear()

    def named_state(self) -> dict[str, torch.nn.Parameter]:
        return {self.PREFIX + name: p for name, p in self.named_parameters()}


class LastLayerAttention:
    """Taps the attention probabilities of the language model's last layer ([B, heads, T, T], the
    newest forward pass only). Switches the model to eager attention until :meth:`close`: only eager
    returns the probabilities."""

    def __init__(self, model: torch.nn.Module) -> None:
        core = _core(model)
        lm = core.language_model
        self.num_heads = int(lm.config.num_attention_heads)
        self.num_patches = core.num_patches
        self._config = lm.config
        self._previous_implementation = lm.config._attn_implementation
        lm.config._attn_implementation = "eager"
        self._latest: list[torch.Tensor] = []
        latest = self._latest  # a closure over the list, not self: the model holds no reference to this
        self._hook = lm.model.layers[-1].self_attn.register_forward_hook(
            lambda _m, _i, out: latest.__setitem__(slice(None), [out[1]])
        )

    def take(self) -> torch.Tensor:
        """The newest pass's probabilities (then forgotten)."""
        if not self._latest or self._latest[0] is None:
            raise TrainingError("no attention probabilities were captured (eager attention is needed)")
        weights, self._latest[:] = self._latest[0], []
        return weights

    def clear(self) -> None:
        self._latest.clear()

    def close(self) -> None:
        self._hook.remove()
        self._latest.clear()
        self._config._attn_implementation = self._previous_implementation


class TargetAttentionLoss:
    """Asks heads of the language model's last layer to look, from the positions that predict action
    tokens, at the image patches that show what the instruction names.

    A policy trained from scratch by behaviour cloning alone learnt to find a lone part but not to
    pick the named one of several: the action loss says only where to go, not which tokens hold the
    answer, and the cheap solutions (head for some part, for the middle) cost it little. Here the
    lookup itself is supervised: the last layer is where a head can key on the name, which an earlier
    layer has moved to the action positions, and it reads the patches' positions into the action
    (models/README.md). Only for training: nothing is added to the model.
    """

    def __init__(self, model: torch.nn.Module, num_heads: int) -> None:
        self.tap = LastLayerAttention(model)
        if not 1 <= num_heads <= self.tap.num_heads:
            self.tap.close()
            raise TrainingError(
                f"target_attention_heads must be 1..{self.tap.num_heads} (the last layer's heads), "
                f"got {num_heads}"
            )
        self.num_heads = num_heads
        self._core = _core(model)
        self.masses: list[float] = []

    def loss(self, labels: torch.Tensor, target_patches: torch.Tensor) -> torch.Tensor:
        """From the last forward pass: mean over steps with a visible target, action-predicting
        positions and supervised heads of -log(attention mass on the target's patches)."""
        weights = self.tap.take()
        # The positions the action loss is computed at: each predicts a labelled token.
        predicts = self._core.next_token_targets(labels.to(weights.device)) != IGNORE_INDEX
        target = target_patches.to(weights.device)
        rows = target.any(dim=1)
        if not rows.any():
            return weights.sum() * 0.0
        on_patches = weights[:, : self.num_heads, :-1, 1 : 1 + self.tap.num_patches].float()
        mass = (on_patches * target[:, None, None, :]).sum(-1)  # [B, heads, T-1]
        keep = (predicts & rows[:, None])[:, None, :].expand_as(mass)
        selected = mass[keep]
        self.masses.append(float(selected.detach().mean()))
        return -torch.log(selected.clamp_min(1e-6)).mean()

    def discard(self) -> None:
        self.tap.clear()

    def remove(self) -> None:
        self.tap.close()


# ----------------------------------------------------------------------------------------------------------
# Schedule


def learning_rate_at(step: int, config: TrainConfig, total_steps: int) -> float:
    """Linear warm-up to ``learning_rate``, then cosine decay to ``min_lr_ratio * learning_rate``."""
    peak = config.learning_rate
    if config.warmup_steps > 0 and step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    span = max(1, total_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = peak * config.min_lr_ratio
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------------------------------------
# Saving (atomic) and resuming


def _atomic_dir(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))


def _commit_dir(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp``; at every instant one complete version exists under some name."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """AdamW state as flat tensors (for safetensors) plus the JSON-able rest (param groups)."""
    state = optimizer.state_dict()
    tensors = {}
    for index, per_param in state["state"].items():
        for key, value in per_param.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{index}.{key}"] = tensor.detach().to("cpu").contiguous()
    return tensors, {"param_groups": state["param_groups"]}


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_training_state(
    config: TrainConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    total_steps: int,
    metrics: list[dict],
    extra: dict[str, torch.nn.Parameter] | None = None,
) -> Path:
    """Trainable weights (and ``extra``, training-only heads) + optimiser state (safetensors) + step and
    metrics (JSON), atomically."""
    final = config.out / STATE_DIR
    tmp = _atomic_dir(final)
    params = {**trainable_parameters(model), **(extra or {})}
    weights = {n: p.detach().to("cpu").contiguous() for n, p in params.items()}
    save_file(weights, str(tmp / "trainable.safetensors"))
    tensors, meta = optimizer_tensors(optimizer)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    _write_json(
        tmp / "state.json",
        {"step": step, "total_steps": total_steps, "optimizer": meta, "metrics": metrics},
    )
    _commit_dir(tmp, final)
    return final


def load_training_state(
    config: TrainConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, torch.nn.Parameter] | None = None,
) -> tuple[int, list[dict]]:
    """Restore weights and optimiser from ``out/training_state``; returns (step, metrics so far)."""
    state_dir = config.out / STATE_DIR
    if not (state_dir / "state.json").is_file():
        raise TrainingError(f"nothing to resume: {state_dir} has no state.json; start without --resume")
    state = json.loads((state_dir / "state.json").read_text())
    weights = load_file(str(state_dir / "trainable.safetensors"))
    params = {**trainable_parameters(model), **(extra or {})}
    if set(weights) != set(params):
        raise TrainingError(
            f"{state_dir} was saved from a different model or mode ({len(weights)} trainable tensors, this "
            f"run has {len(params)}); resume with the same --base/--init, --mode and --patch-position-weight"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name].to(p.device))
    load_optimizer_tensors(optimizer, load_file(str(state_dir / "optimizer.safetensors")), state["optimizer"])
    return int(state["step"]), list(state.get("metrics", []))


def export_model(config: TrainConfig, bundle: ModelBundle, norm_stats: dict) -> list[Path]:
    """The deliverable: a checkpoint (full) or an adapter (+ merged checkpoint on request)."""
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[config.save_dtype]
    model = bundle.model
    if config.mode == "full":
        path = save_checkpoint(
            _core(model),
            config.checkpoint_dir,
            image_processor=bundle.image_processor,
            tokenizer_dir=bundle.tokenizer_dir,
            norm_stats=norm_stats,
            dtype=dtype,
        )
        return [path]
    final = config.out / "adapter"
    tmp = _atomic_dir(final)
    adapters.save_adapter(model, tmp)
    _write_json(tmp / "dataset_statistics.json", norm_stats)
    _commit_dir(tmp, final)
    written = [final]
    if config.export_merged:
        written.append(export_merged(config, final, bundle, norm_stats, dtype))
    return written


def export_resume_point(run_dir: str | Path, dest: str | Path | None = None) -> tuple[int, list[Path]]:
    """Export what a run's resume point holds, as the end of the run would (checkpoint for full mode,
    adapter for LoRA); returns (step, written paths). Default ``dest``: ``RUN_DIR/step<N>``.

    The resume point is written every ``--save-every-steps``, so this is how to evaluate a run that
    is still training without stopping it, or an earlier point of a finished one that was copied away.
    The resume point is replaced atomically by the running trainer; the step is read before and after
    the weights so a replacement in between is noticed and the read repeated.
    """
    run = Path(run_dir)
    config_path = run / "train_config.json"
    if not config_path.is_file():
        raise TrainingError(f"{run} has no train_config.json: give the --out directory of a training run")
    state_dir = run / STATE_DIR

    def saved_step() -> int | None:
        try:
            return int(json.loads((state_dir / "state.json").read_text())["step"])
        except (OSError, ValueError, KeyError):
            return None

    weights, step = None, None
    for _ in range(6):
        before = saved_step()
        try:
            candidate = load_file(str(state_dir / "trainable.safetensors"))
        except Exception:  # missing while being replaced, or not a safetensors file: try again, then say so
            candidate = None
        if before is not None and candidate is not None and saved_step() == before:
            weights, step = candidate, before
            break
        time.sleep(0.5)
    if weights is None or step is None:
        raise TrainingError(
            f"{run} has no complete resume point ({STATE_DIR}/state.json and trainable.safetensors); a run "
            "writes one every --save-every-steps and when it stops"
        )
    config = replace(TrainConfig.from_json(json.loads(config_path.read_text())), progress=False)
    bundle = build_model(config)  # with out_dir = run: a fresh model finds its tokenizer there
    params = trainable_parameters(bundle.model)
    if not set(params) <= set(weights):
        raise TrainingError(
            f"{state_dir} does not hold this run's trainable weights ({len(set(params) - set(weights))} "
            "missing): was train_config.json changed after the run started?"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name].to(p.device))
    norm_stats = json.loads((run / "dataset_statistics.json").read_text())
    dest = Path(dest) if dest is not None else run / f"step{step}"
    # Full mode writes the checkpoint to dest; LoRA writes dest/adapter (and dest/merged on request).
    target = replace(config, out_dir=str(dest), checkpoint_out=str(dest) if config.mode == "full" else None)
    return step, export_model(target, bundle, norm_stats)


def export_merged(
    config: TrainConfig, adapter_dir: Path, bundle: ModelBundle, norm_stats: dict, dtype: torch.dtype
) -> Path:
    """Base (full precision, even for qlora) + adapter folded into plain weights, official layout."""
    loaded = load_checkpoint(config.base, precision="fp32")
    merged = adapters.merge_adapter(adapters.load_adapter(loaded.model, adapter_dir))
    stats = {**loaded.norm_stats, **norm_stats}
    return save_checkpoint(
        merged,
        config.out / "merged",
        image_processor=bundle.image_processor,
        tokenizer_dir=bundle.tokenizer_dir,
        norm_stats=stats,
        dtype=dtype,
    )


# ----------------------------------------------------------------------------------------------------------
# Distributed (torchrun / accelerate launch)


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(config: TrainConfig) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if config.device.startswith("cuda"):
        config.device = f"cuda:{info.local_rank}"
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group("nccl" if config.device.startswith("cuda") else "gloo")
    return info


# ----------------------------------------------------------------------------------------------------------
# The loop


class _StopFlag:
    """First Ctrl-C: finish the current step, save, stop. Second: abort at once (outputs stay whole)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _StopFlag:
        if hasattr(signal, "SIGINT") and _in_main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: finishing this step and saving (Ctrl-C again to abort)", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@dataclass
class TrainResult:
    step: int
    total_steps: int
    metrics: list[dict]
    outputs: list[Path]
    interrupted: bool
    train_steps: int  # dataset steps (transitions) used for training
    heldout_steps: int
    wall_time_s: float


def train(config: TrainConfig, resume: bool = False, stop_after_steps: int | None = None) -> TrainResult:
    """Run behaviour cloning as configured. ``stop_after_steps`` ends this call early (as an
    interrupt would: state saved, outputs exported) without changing the schedule."""
    start_time = time.perf_counter()
    dist_info = init_distributed(config)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    config.out.mkdir(parents=True, exist_ok=True)

    def say(*parts: object) -> None:
        if dist_info.is_main:
            print(*parts, flush=True)  # flushed: the log is often a file next to tqdm's stderr

    # --- data -------------------------------------------------------------------------------------
    episodes, report = load_episodes(
        config.bags,
        config.topics,
        config.sync,
        config.cleaning,
        progress=config.progress and dist_info.is_main,
        # Random access to every step's frames, at a thirtieth of the memory (PackedImage).
        pack_images=True,
    )
    say(report.summary())
    train_eps, val_eps = split_episodes(
        episodes, config.heldout_fraction, config.heldout_episodes, config.seed
    )
    if not train_eps:
        raise TrainingError("no training episodes left after cleaning; see the cleaning report")
    # With mirroring, the statistics cover the mirrored actions too (else their tokens would clip).
    stats = compute_dataset_statistics(
        train_eps + [mirror_episode(e, flip_images=False) for e in train_eps]
        if config.mirror_augment
        else train_eps
    )
    norm_stats = {config.dataset_name: stats}
    statistics = ActionStatistics.from_norm_stats(stats)
    if dist_info.is_main:
        _write_json(config.out / "dataset_statistics.json", norm_stats)
        _write_json(config.out / "cleaning_report.json", report.to_dict())
        _write_json(config.out / "train_config.json", config.to_json())

    # --- model ------------------------------------------------------------------------------------
    bundle = build_model(config)
    model = bundle.model
    make = dict(
        image_processor=bundle.image_processor,
        prompt_tokenizer=bundle.prompt_tokenizer,
        action_tokenizer=bundle.action_tokenizer,
        statistics=statistics,
        seed=config.seed,
    )
    supervise_attention = config.target_attention_weight > 0
    if supervise_attention and not any(m is not None for e in train_eps for m in e.target_masks or []):
        raise TrainingError(
            f"--target-attention-weight needs target masks on {config.topics.target_mask!r}; none of the "
            "training steps has one (record the bags with this version's record-demos)"
        )
    grid = tuple(int(n) for n in _core(model).vision_backbone.featurizer.patch_embed.grid_size)
    train_set = ActionTokenDataset(
        train_eps,
        train=config.random_crop or config.mirror_augment,
        mirror=config.mirror_augment,
        random_crop=config.random_crop,
        target_grid=grid if supervise_attention else None,
        **make,
    )
    val_set = ActionTokenDataset(val_eps, train=False, **make) if val_eps else None
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in trainable_parameters(model).values())
    say(
        f"data: {len(train_eps)} training episodes ({len(train_set)} steps), {len(val_eps)} held out "
        f"({len(val_set) if val_set else 0} steps); model: {n_params / 1e6:.2f}M parameters, "
        f"{n_train / 1e6:.3f}M trainable ({100 * n_train / n_params:.2f}%), mode {config.mode}"
    )

    position_head = PatchPositionHead(model) if config.patch_position_weight > 0 else None
    attention_loss = (
        TargetAttentionLoss(model, config.target_attention_heads) if supervise_attention else None
    )
    extra = position_head.named_state() if position_head is not None else {}

    # --- optimiser and schedule -------------------------------------------------------------------
    params = list(trainable_parameters(model).values()) + list(extra.values())
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
    )
    global_batch = config.batch_size * config.grad_accum * dist_info.world_size
    steps_per_epoch = max(1, len(train_set) // global_batch)
    total_steps = config.max_steps if config.max_steps is not None else config.epochs * steps_per_epoch
    step, metrics_log = 0, []
    if resume:
        step, metrics_log = load_training_state(config, model, optimizer, extra)
        say(f"resumed at step {step}/{total_steps}")
    # The OpenVLA module itself (LoRA layers sit inside it), or DDP around the model under torchrun.
    forward: torch.nn.Module = _core(model)
    if dist_info.world_size > 1:
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist_info.local_rank] if config.device.startswith("cuda") else None
        )

    # --- loop -------------------------------------------------------------------------------------
    bar = None
    if config.progress and dist_info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"train ({config.mode})", unit="step")
    running = BatchMetrics()
    position_losses: list[float] = []
    interrupted = False
    stop_at = total_steps if stop_after_steps is None else min(total_steps, step + stop_after_steps)
    with _StopFlag() as stop:
        while step < stop_at:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            train_set.set_epoch(epoch)
            order = np.random.default_rng([config.seed, epoch]).permutation(len(train_set))
            lr = learning_rate_at(step, config, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for micro in range(config.grad_accum):
                offset = (in_epoch * config.grad_accum + micro) * dist_info.world_size + dist_info.rank
                chunk = order[offset * config.batch_size : (offset + 1) * config.batch_size]
                batch = train_set.batch(chunk)
                out = forward(
                    batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["labels"]
                )
                loss = action_token_loss(
                    out.logits, out.labels, bundle.action_tokenizer.token_id_range, config.bin_smoothing
                )
                if position_head is not None:
                    position_loss = position_head.loss()
                    position_losses.append(position_loss.item())
                    loss = loss + config.patch_position_weight * position_loss
                if attention_loss is not None:
                    loss = loss + config.target_attention_weight * attention_loss.loss(
                        batch["labels"], batch["target_patches"]
                    )
                (loss / config.grad_accum).backward()
                true = np.stack([train_set.action(int(i)) for i in chunk])
                running.add(
                    batch_metrics(
                        out.logits.detach(),
                        out.labels,
                        out.loss,
                        statistics.action_dim,
                        bundle.action_tokenizer,
                        statistics,
                        true,
                    )
                )
            if extra and dist_info.world_size > 1:
                for p in extra.values():  # the heads are outside DDP: average their gradients by hand
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= dist_info.world_size
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if bar is not None:
                shown = running.as_dict("")
                bar.update(1)
                bar.set_postfix(
                    loss=f"{shown['loss']:.3f}", acc=f"{shown['action_token_accuracy']:.3f}", lr=f"{lr:.2e}"
                )
            end_of_epoch = step % steps_per_epoch == 0 or step == total_steps
            if end_of_epoch and dist_info.is_main:
                entry = {"step": step, "epoch": step / steps_per_epoch, "lr": lr, **running.as_dict("train_")}
                if position_losses:
                    entry["train_patch_position_loss"] = float(np.mean(position_losses))
                    position_losses = []
                if attention_loss is not None and attention_loss.masses:
                    entry["train_target_attention_mass"] = float(np.mean(attention_loss.masses))
                    attention_loss.masses = []
                if val_set is not None:
                    entry.update(
                        evaluate(
                            model,
                            val_set,
                            config.batch_size,
                            config.eval_max_steps,
                            config.progress,
                        )
                    )
                    if position_head is not None:
                        position_head.discard()
                    if attention_loss is not None:
                        attention_loss.discard()
                entry["wall_time_s"] = time.perf_counter() - start_time
                metrics_log.append(entry)
                say(
                    " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items())
                )
                with open(config.out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(entry) + "\n")
                running = BatchMetrics()
            periodic = config.save_every_steps and step % config.save_every_steps == 0
            if dist_info.is_main and (end_of_epoch or periodic) and step < stop_at:
                save_training_state(config, model, optimizer, step, total_steps, metrics_log, extra)
            if stop.requested:
                interrupted = True
                break
    if bar is not None:
        bar.close()
    if position_head is not None:
        position_head.remove()  # the exported model is the plain OpenVLA one
    if attention_loss is not None:
        attention_loss.remove()

    outputs: list[Path] = []
    if dist_info.is_main:
        save_training_state(config, model, optimizer, step, total_steps, metrics_log, extra)
        outputs = export_model(config, bundle, norm_stats)
        say("wrote " + ", ".join(str(p) for p in outputs))
    return TrainResult(
        step=step,
        total_steps=total_steps,
        metrics=metrics_log,
        outputs=outputs,
        interrupted=interrupted,
        train_steps=len(train_set),
        heldout_steps=len(val_set) if val_set else 0,
        wall_time_s=time.perf_counter() - start_time,
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    from vla_ros.data.cli import sync_from_args, topics_from_args

    if args.add_sincos_position and not args.base:
        raise TrainingError(
            "--add-sincos-position adds to a --base's position embeddings; "
            "a fresh model takes --init-override sincos_position_init=1"
        )
    return TrainConfig(
        bags=[str(b) for b in _expand_bags(args.bags)],
        out_dir=str(args.out),
        base=str(args.base) if args.base else None,
        init=args.init,
        image_size_px=args.image_size if args.init and args.image_size else TrainConfig.image_size_px,
        base_image_size_px=args.image_size if args.base else None,
        base_add_sincos_position=bool(args.base and args.add_sincos_position),
        init_overrides=_parse_overrides(args.init_override),
        mode=args.mode,
        lora_rank=args.lora_rank,
        dataset_name=args.dataset_name,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        learning_rate=args.lr,
        min_lr_ratio=args.min_lr_ratio,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        bin_smoothing=args.bin_smoothing,
        patch_position_weight=args.patch_position_weight,
        target_attention_weight=args.target_attention_weight,
        target_attention_heads=args.target_attention_heads,
        random_crop=not args.no_random_crop,
        mirror_augment=args.mirror_augment,
        heldout_fraction=args.heldout_fraction,
        heldout_episodes=args.heldout_episodes,
        eval_max_steps=args.eval_max_steps,
        save_every_steps=args.save_every_steps,
        seed=args.seed,
        device=args.device,
        num_threads=args.num_threads,
        checkpoint_out=str(args.checkpoint_out) if args.checkpoint_out else None,
        save_dtype=args.save_dtype,
        export_merged=args.export_merged,
        progress=not args.no_progress,
        topics=topics_from_args(args),
        sync=sync_from_args(args),
        cleaning=CleaningConfig(
            drop_noop_steps=not args.keep_noops,
            outlier_iqr_k=None if args.outlier_iqr_k <= 0 else args.outlier_iqr_k,
        ),
    )


def _parse_overrides(items: list[str] | None) -> dict[str, int]:
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise TrainingError(f"--init-override takes FIELD=INTEGER (e.g. llm_num_layers=3), got {item!r}")
        overrides[key.strip()] = int(value)
    return overrides


def _expand_bags(paths: list[Path]) -> list[Path]:
    """A bag is a directory with metadata.yaml; a directory of bags stands for all of them."""
    bags: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir() and not (path / "metadata.yaml").is_file():
            # Hidden entries are bags still being written (record-demos renames them when complete).
            found = sorted(
                p for p in path.iterdir() if not p.name.startswith(".") and (p / "metadata.yaml").is_file()
            )
            if not found:
                raise TrainingError(f"{path} is neither a bag nor a directory of bags (no metadata.yaml)")
            bags.extend(found)
        else:
            bags.append(path)
    return bags


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_ros.train.bc`` (what torchrun / accelerate launch start): same as ``vla-ros train``."""
    from vla_ros.train.cli import add_train_arguments, run_train

    parser = argparse.ArgumentParser(prog="python -m vla_ros.train.bc", description=__doc__.split("\n")[0])
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
