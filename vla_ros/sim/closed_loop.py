"""What a closed-loop episode reports, and the pictures it leaves behind (no ROS here).

The loop itself runs the ROS nodes (:mod:`vla_ros.nodes.closed_loop`); these are the parts that
need none: the per-episode report and its table, and the picture strip / GIF of the camera.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class EpisodeReport:
    """One closed-loop episode. ``policy_rate_hz`` is policy steps per SIM second (what the arm saw)."""

    episode: int
    seed: int
    task: str
    operator_text: str
    instruction: str  # what the disambiguation step forwarded ("" when it asked or refused)
    resolution: str  # resolved | clarify | reject | timeout
    success: bool
    steps: int
    sim_time_s: float
    wall_time_s: float
    bag_path: str = ""
    picture_path: str = ""

    @property
    def policy_rate_hz(self) -> float:
        return self.steps / self.sim_time_s if self.sim_time_s > 0 else 0.0


def format_report_table(reports: Sequence[EpisodeReport]) -> str:
    """A plain-text table, one row per episode, and a success summary per task."""
    header = (
        f"{'ep':>3} {'seed':>5} {'task':<10} {'ok':<3} {'steps':>5} {'sim s':>6} {'wall s':>7} "
        f"{'rate Hz':>7}  instruction"
    )
    lines = [header, "-" * len(header)]
    for r in reports:
        lines.append(
            f"{r.episode:>3} {r.seed:>5} {r.task:<10} {'yes' if r.success else 'no':<3} {r.steps:>5} "
            f"{r.sim_time_s:>6.2f} {r.wall_time_s:>7.2f} {r.policy_rate_hz:>7.2f}  "
            + (r.instruction or f"[{r.resolution}] {r.operator_text}")
        )
    for task in sorted({r.task for r in reports}):
        rows = [r for r in reports if r.task == task]
        done = sum(r.success for r in rows)
        lines.append(f"{task}: {done}/{len(rows)} succeeded ({100.0 * done / len(rows):.0f}%)")
    return "\n".join(lines)


def picture_strip(frames: Sequence[np.ndarray], max_frames: int = 8) -> np.ndarray:
    """Up to ``max_frames`` frames, evenly spaced from first to last, side by side (HxW*kx3 uint8)."""
    if not frames:
        raise ValueError("no camera frames to draw: did the camera publish during the episode?")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    gap = np.full((frames[0].shape[0], 4, 3), 255, dtype=np.uint8)
    tiles: list[np.ndarray] = []
    for i in picks:
        tiles += [np.asarray(frames[i], dtype=np.uint8), gap]
    return np.concatenate(tiles[:-1], axis=1)


def save_pictures(frames: Sequence[np.ndarray], path: str | Path, fps: float = 10.0) -> Path:
    """A GIF of every frame when ``path`` ends in .gif, otherwise a picture strip (PNG, JPEG...)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        if not frames:
            raise ValueError("no camera frames to animate: did the camera publish during the episode?")
        images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000.0 / fps), loop=0)
    else:
        Image.fromarray(picture_strip(frames)).save(path)
    return path


def captioned_strip(frames: Sequence[np.ndarray], caption: str, max_frames: int = 6) -> np.ndarray:
    """A picture strip with ``caption`` above it and each frame's step number under it, so the picture
    says on its own what was asked and when each view was seen (HxWx3 uint8)."""
    from PIL import Image, ImageDraw

    if not frames:
        raise ValueError("no camera frames to draw: did the camera publish during the episode?")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    height, width = frames[0].shape[:2]
    gap, band = 4, 22
    canvas = Image.new("RGB", (len(picks) * (width + gap) - gap, height + 2 * band), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 5), caption, fill="black")
    for i, index in enumerate(picks):
        x = i * (width + gap)
        canvas.paste(Image.fromarray(np.asarray(frames[index], dtype=np.uint8)), (x, band))
        draw.text((x + 4, band + height + 5), f"frame {index + 1}/{len(frames)}", fill="black")
    return np.asarray(canvas)
