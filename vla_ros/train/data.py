"""Demonstration steps as training examples: (image, prompt, action tokens), with augmentation.

- Images: random crop of 90% of the area (random position, square aspect), resized to the backbone
  size, at training time; the centre crop of the same size for evaluation and at inference
  (``PolicyConfig(center_crop=True)``), as upstream.
- Mirroring (``mirror_augment``): half of the training steps are seen mirrored left-right (image
  flipped, dy/droll/dyaw negated, "left"/"right" swapped in the instruction). Valid only for a camera
  looking along the base's x axis from the xz-plane, as the simulated workcell's does; it makes the
  instruction alone useless for telling left from right, so the policy has to look.
- Target masks (``Episode.step_data["target_mask"]``): which image patches show what each step heads
  for, cropped and mirrored with the image, for the target-attention objective.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from vla_ros.data.dataset import EXTRA_VIEWS, TARGET_MASK, Episode
from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
from vla_ros.model.processing import (
    CENTER_CROP_AREA_FRACTION,
    ImageProcessor,
    PromptTokenizer,
    center_crop,
    collate_training_examples,
)
from vla_ros.train.config import TrainingError


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
        step_data=_mirror_step_data(episode.step_data, flip_images),
    )


def _mirror_step_data(step_data: dict[str, list], flip_images: bool) -> dict[str, list]:
    mirrored = dict(step_data)
    if TARGET_MASK in step_data:
        mirrored[TARGET_MASK] = [None if m is None else m[:, ::-1] for m in step_data[TARGET_MASK]]
    if EXTRA_VIEWS in step_data and flip_images:
        # The workcell's wrist camera looks straight down with its image rows along x, so a mirror
        # in y flips its frames left-right too.
        mirrored[EXTRA_VIEWS] = [
            tuple(np.ascontiguousarray(v[:, ::-1]) for v in views) for views in step_data[EXTRA_VIEWS]
        ]
    return mirrored


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
        # Per step, the other cameras' frames (Episode.step_data[EXTRA_VIEWS]), empty for one-camera data.
        self.extra_images: list[tuple[np.ndarray, ...]] = []
        self.actions: list[np.ndarray] = []
        self.examples: list[tuple[list[int], list[int]]] = []
        self.mirrored_examples: list[tuple[list[int], list[int]]] = []
        for ep in episodes:
            self.masks.extend(ep.step_data.get(TARGET_MASK) or [None] * len(ep))
            self.extra_images.extend(ep.step_data.get(EXTRA_VIEWS) or [()] * len(ep))
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


def expand_bags(paths: list[Path]) -> list[Path]:
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
