"""How far a policy's actions are from the recorded ones, step by step.

Conventions (documented here once, used by the report):

- MAE / RMSE are per action dimension over all finite predicted steps, in the action's units
  (metres, radians per control period; the gripper in [0, 1]).
- Gripper accuracy: predicted and recorded gripper on the same side of ``gripper_threshold`` (0.5;
  values >= threshold are "open").
- Action-token accuracy: fraction of token positions equal, over steps that have reference tokens;
  a predicted sequence of the wrong length counts its missing positions as wrong.
- Direction cosine: cosine similarity of predicted and recorded translation deltas, only over steps
  where *both* vectors are at least ``min_translation_norm_m`` long; a direction of a near-zero vector
  is noise, so such steps are left out and the number of steps used is reported.
- Latency percentiles use linear interpolation between samples (numpy's default).
- Predictions with NaN/inf are counted and left out of every error metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from vla_ros.action import ACTION_DIM, ACTION_NAMES

GRIPPER_INDEX = 6
DEFAULT_GRIPPER_THRESHOLD = 0.5
DEFAULT_MIN_TRANSLATION_NORM_M = 1e-4


@dataclass
class EpisodePredictions:
    """One policy's outputs on one recorded episode, aligned step by step with the recording."""

    episode_id: str
    instruction: str
    recorded: np.ndarray
    predicted: np.ndarray
    recorded_token_ids: list[tuple[int, ...]] | None = None
    predicted_token_ids: list[tuple[int, ...]] | None = None
    latencies_s: np.ndarray | None = None
    timestamps_ns: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.recorded = np.asarray(self.recorded, dtype=np.float64).reshape(-1, ACTION_DIM)
        self.predicted = np.asarray(self.predicted, dtype=np.float64).reshape(-1, ACTION_DIM)
        if self.recorded.shape != self.predicted.shape:
            raise ValueError(
                f"episode {self.episode_id}: {len(self.predicted)} predictions for "
                f"{len(self.recorded)} recorded steps"
            )
        if self.latencies_s is not None:
            self.latencies_s = np.asarray(self.latencies_s, dtype=np.float64).reshape(-1)


@dataclass
class ActionMetrics:
    """Metrics over a set of steps (one episode, or all of them)."""

    num_steps: int
    num_nonfinite_predictions: int
    mae: dict[str, float]
    rmse: dict[str, float]
    mae_translation_m: float
    mae_rotation_rad: float
    gripper_accuracy: float | None
    token_accuracy: float | None
    token_steps: int
    direction_cosine_mean: float | None
    direction_steps: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_mean_s: float | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MetricsSummary:
    overall: ActionMetrics
    per_episode: dict[str, ActionMetrics] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "overall": self.overall.to_dict(),
            "per_episode": {k: v.to_dict() for k, v in self.per_episode.items()},
        }


def token_accuracy(
    predicted: Sequence[Sequence[int]] | None, reference: Sequence[Sequence[int]] | None
) -> tuple[float | None, int]:
    """(fraction of equal token positions, number of steps compared); steps without reference are skipped."""
    if predicted is None or reference is None:
        return None, 0
    correct = total = steps = 0
    for pred, ref in zip(predicted, reference, strict=True):
        if not ref:
            continue
        steps += 1
        total += max(len(ref), len(pred))
        correct += sum(int(a == b) for a, b in zip(pred, ref, strict=False))
    return (correct / total if total else None), steps


def direction_cosines(predicted: np.ndarray, recorded: np.ndarray, min_norm: float) -> np.ndarray:
    """Cosine of the angle between translation deltas, for steps where both are long enough."""
    p = np.asarray(predicted, dtype=np.float64)[:, 0:3]
    r = np.asarray(recorded, dtype=np.float64)[:, 0:3]
    pn = np.linalg.norm(p, axis=1)
    rn = np.linalg.norm(r, axis=1)
    ok = (pn >= min_norm) & (rn >= min_norm)
    return np.clip(np.sum(p[ok] * r[ok], axis=1) / (pn[ok] * rn[ok]), -1.0, 1.0)


def _metrics(
    recorded: np.ndarray,
    predicted: np.ndarray,
    predicted_tokens: list[tuple[int, ...]] | None,
    reference_tokens: list[tuple[int, ...]] | None,
    latencies: np.ndarray | None,
    gripper_threshold: float,
    min_translation_norm_m: float,
) -> ActionMetrics:
    finite = np.all(np.isfinite(predicted), axis=1)
    rec, pred = recorded[finite], predicted[finite]
    err = pred - rec
    n = len(err)
    if n:
        mae_v = np.abs(err).mean(axis=0)
        rmse_v = np.sqrt((err**2).mean(axis=0))
        grip = float(
            np.mean(
                (pred[:, GRIPPER_INDEX] >= gripper_threshold) == (rec[:, GRIPPER_INDEX] >= gripper_threshold)
            )
        )
    else:
        mae_v = rmse_v = np.full(ACTION_DIM, np.nan)
        grip = None
    cos = direction_cosines(pred, rec, min_translation_norm_m)
    tok_acc, tok_steps = token_accuracy(predicted_tokens, reference_tokens)
    lat = None if latencies is None or len(latencies) == 0 else np.asarray(latencies, dtype=np.float64)
    return ActionMetrics(
        num_steps=len(recorded),
        num_nonfinite_predictions=int((~finite).sum()),
        mae=dict(zip(ACTION_NAMES, (float(v) for v in mae_v), strict=True)),
        rmse=dict(zip(ACTION_NAMES, (float(v) for v in rmse_v), strict=True)),
        mae_translation_m=float(mae_v[0:3].mean()),
        mae_rotation_rad=float(mae_v[3:6].mean()),
        gripper_accuracy=grip,
        token_accuracy=tok_acc,
        token_steps=tok_steps,
        direction_cosine_mean=float(cos.mean()) if len(cos) else None,
        direction_steps=len(cos),
        latency_p50_s=None if lat is None else float(np.percentile(lat, 50)),
        latency_p95_s=None if lat is None else float(np.percentile(lat, 95)),
        latency_mean_s=None if lat is None else float(lat.mean()),
    )


def compute_metrics(
    episodes: Sequence[EpisodePredictions],
    gripper_threshold: float = DEFAULT_GRIPPER_THRESHOLD,
    min_translation_norm_m: float = DEFAULT_MIN_TRANSLATION_NORM_M,
) -> MetricsSummary:
    """Per-episode metrics and the same metrics over all steps of all episodes pooled."""
    if not episodes:
        raise ValueError("no episodes to evaluate")
    per_episode = {}
    for ep in episodes:
        per_episode[ep.episode_id] = _metrics(
            ep.recorded,
            ep.predicted,
            ep.predicted_token_ids,
            ep.recorded_token_ids,
            ep.latencies_s,
            gripper_threshold,
            min_translation_norm_m,
        )

    def pooled_tokens(attr: str) -> list[tuple[int, ...]] | None:
        # Episodes without tokens contribute empty tuples: skipped as reference, wrong as prediction.
        if all(getattr(ep, attr) is None for ep in episodes):
            return None
        out: list[tuple[int, ...]] = []
        for ep in episodes:
            tokens = getattr(ep, attr)
            out.extend(tokens if tokens is not None else [()] * len(ep.recorded))
        return out

    lat = [ep.latencies_s for ep in episodes if ep.latencies_s is not None]
    overall = _metrics(
        np.concatenate([ep.recorded for ep in episodes]),
        np.concatenate([ep.predicted for ep in episodes]),
        pooled_tokens("predicted_token_ids"),
        pooled_tokens("recorded_token_ids"),
        np.concatenate(lat) if lat else None,
        gripper_threshold,
        min_translation_norm_m,
    )
    return MetricsSummary(overall=overall, per_episode=per_episode)
