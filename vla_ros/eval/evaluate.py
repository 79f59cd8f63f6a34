"""Offline evaluation: replay recorded episodes through one or more policies and compare actions.

The episodes come from the dataset layer (same topics, action sources and synchronisation as
training data), so what is evaluated is exactly what a policy would have been trained on.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_ros.action import Action, Policy, predict
from vla_ros.data.dataset import (
    EXTRA_VIEWS,
    CleaningConfig,
    CleaningReport,
    Episode,
    SyncConfig,
    TopicConfig,
    load_episodes,
)
from vla_ros.eval.metrics import (
    DEFAULT_GRIPPER_THRESHOLD,
    DEFAULT_MIN_TRANSLATION_NORM_M,
    EpisodePredictions,
    MetricsSummary,
    compute_metrics,
)

# Evaluation compares with what was recorded: nothing is cleaned away unless asked.
KEEP_ALL_STEPS = CleaningConfig(drop_noop_steps=False, min_steps=1, outlier_iqr_k=None)


class EvaluationError(RuntimeError):
    """A policy failed while being evaluated."""


class RecordedActionPolicy:
    """Answers each (frame, instruction) with the action recorded for it: a perfect policy.

    Evaluating it must give zero error; if it does not, the evaluation path (synchronisation, frame
    selection, metrics) is broken, not the model. It is a real :class:`~vla_ros.action.Policy`:
    it looks the action up by the image's content and the instruction. Identical observations
    recorded several times are answered in recorded order (cycling when asked again).
    """

    def __init__(self, episodes: Iterable[Episode], name: str = "recorded") -> None:
        self.name = name
        self._table: dict[tuple[str, str], list[tuple[np.ndarray, tuple[int, ...]]]] = {}
        self._cursor: dict[tuple[str, str], int] = {}
        for ep in episodes:
            for image, action, instruction, tokens in zip(
                ep.images, ep.actions, ep.step_instructions, ep.token_ids, strict=True
            ):
                self._table.setdefault(self._key(image, instruction), []).append((action.copy(), tokens))

    @staticmethod
    def _key(image: np.ndarray, instruction: str) -> tuple[str, str]:
        arr = np.ascontiguousarray(image)
        digest = hashlib.blake2b(arr.tobytes(), digest_size=16)
        digest.update(repr(arr.shape).encode())
        return digest.hexdigest(), instruction

    def predict_action(self, image: np.ndarray, instruction: str) -> Action:
        key = self._key(image, instruction)
        entries = self._table.get(key)
        if not entries:
            raise KeyError(
                f"{self.name}: this frame/instruction pair was not in the recording "
                f"(instruction {instruction!r})"
            )
        i = self._cursor.get(key, 0)
        self._cursor[key] = (i + 1) % len(entries)
        action, tokens = entries[i]
        return Action(vector=action.copy(), token_ids=tokens)


@dataclass
class ModelEvaluation:
    name: str
    metrics: MetricsSummary
    predictions: list[EpisodePredictions]


@dataclass
class EvalResult:
    bags: list[str]
    episodes: list[Episode]
    models: dict[str, ModelEvaluation]
    cleaning: CleaningReport
    settings: dict = field(default_factory=dict)

    def comparison_rows(self) -> list[dict]:
        """One row per model: the headline numbers side by side."""
        rows = []
        for name, ev in self.models.items():
            m = ev.metrics.overall
            rows.append(
                {
                    "model": name,
                    "steps": m.num_steps,
                    "mae_translation_m": m.mae_translation_m,
                    "mae_rotation_rad": m.mae_rotation_rad,
                    "mae_gripper": m.mae["gripper"],
                    "rmse_translation_m": float(np.mean([m.rmse[k] for k in ("dx", "dy", "dz")])),
                    "gripper_accuracy": m.gripper_accuracy,
                    "token_accuracy": m.token_accuracy,
                    "direction_cosine_mean": m.direction_cosine_mean,
                    "latency_p50_s": m.latency_p50_s,
                    "latency_p95_s": m.latency_p95_s,
                    "nonfinite_predictions": m.num_nonfinite_predictions,
                }
            )
        return rows

    def to_dict(self) -> dict:
        return {
            "bags": self.bags,
            "settings": self.settings,
            "episodes": [
                {
                    "episode_id": e.episode_id,
                    "instruction": e.instruction,
                    "steps": len(e),
                    "bag": e.metadata.get("bag"),
                }
                for e in self.episodes
            ],
            "cleaning": self.cleaning.to_dict(),
            "comparison": self.comparison_rows(),
            "models": {name: ev.metrics.to_dict() for name, ev in self.models.items()},
        }


def _seed_everything(seed: int) -> None:
    """Same seeds before every episode, so sampling policies repeat; torch only if already in use."""
    random.seed(seed)
    np.random.seed(seed)  # policies may use the legacy global generator
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def _reference_tokens(policy: Policy, action: np.ndarray) -> tuple[int, ...]:
    """The tokens the policy *should* emit for the recorded action, when it can tell us.

    Uses ``policy.encode_action_tokens(vector)`` if present, else the OpenVLA runtime's
    ``action_tokenizer`` + ``action_statistics`` (normalise, then discretise).
    """
    if hasattr(policy, "encode_action_tokens"):
        return tuple(int(t) for t in policy.encode_action_tokens(action))
    tok = getattr(policy, "action_tokenizer", None)
    stats = getattr(policy, "action_statistics", None)
    if tok is not None and stats is not None:
        return tuple(int(t) for t in np.asarray(tok.encode(stats.normalize(action))).reshape(-1))
    return ()


def evaluate_episodes(
    episodes: Sequence[Episode],
    policies: Mapping[str, Policy],
    *,
    progress: bool = True,
    seed: int = 0,
    gripper_threshold: float = DEFAULT_GRIPPER_THRESHOLD,
    min_translation_norm_m: float = DEFAULT_MIN_TRANSLATION_NORM_M,
    batch_size: int = 1,
) -> dict[str, ModelEvaluation]:
    """Run every policy on every step of every episode and compute metrics per policy.

    ``batch_size`` > 1: a policy with ``predict_actions`` (the OpenVLA runtime) decodes that many
    steps of an episode together, which gives the same actions faster on a GPU; each step's latency is
    then its share of the batch's time."""
    if batch_size < 1:
        raise EvaluationError(f"batch_size must be at least 1, got {batch_size}")
    if not episodes:
        raise EvaluationError("no episodes to evaluate (all bags empty or everything was cleaned away)")
    if not policies:
        raise EvaluationError("no policies to evaluate")
    total = sum(len(e) for e in episodes) * len(policies)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="evaluating", unit="step")
    results: dict[str, ModelEvaluation] = {}
    try:
        for name, policy in policies.items():
            if bar is not None:
                bar.set_postfix_str(name)
            preds: list[EpisodePredictions] = []
            for ep in episodes:
                _seed_everything(seed)
                if callable(getattr(policy, "reset", None)):
                    policy.reset()
                vectors, tokens, latencies = [], [], []
                for action, latency_s in _episode_actions(name, policy, ep, batch_size):
                    latencies.append(latency_s)
                    vectors.append(action.vector)
                    tokens.append(tuple(action.token_ids))
                    if bar is not None:
                        bar.update(1)
                recorded_tokens = list(ep.token_ids)
                if not any(recorded_tokens):
                    recorded_tokens = [_reference_tokens(policy, a) for a in ep.actions]
                preds.append(
                    EpisodePredictions(
                        episode_id=ep.episode_id,
                        instruction=ep.instruction,
                        recorded=ep.actions,
                        predicted=np.stack(vectors) if vectors else np.zeros((0, 7)),
                        recorded_token_ids=recorded_tokens if any(recorded_tokens) else None,
                        predicted_token_ids=tokens if any(tokens) else None,
                        latencies_s=np.asarray(latencies),
                        timestamps_ns=ep.timestamps_ns,
                    )
                )
            results[name] = ModelEvaluation(
                name, compute_metrics(preds, gripper_threshold, min_translation_norm_m), preds
            )
    finally:
        if bar is not None:
            bar.close()
    return results


def _episode_actions(
    name: str, policy: Policy, ep: Episode, batch_size: int
) -> Iterator[tuple[Action, float]]:
    """Each step's action, in order, with its share of the time it took."""
    batched = batch_size > 1 and callable(getattr(policy, "predict_actions", None))
    chunk = batch_size if batched else 1
    for first in range(0, len(ep.images), chunk):
        steps = range(first, min(first + chunk, len(ep.images)))
        # With --wrist-camera-topic, each step's wrist frame too (two-view checkpoints).
        extra = [ep.step_data[EXTRA_VIEWS][k] if EXTRA_VIEWS in ep.step_data else () for k in steps]
        start = time.perf_counter()
        try:
            if batched:
                images = [ep.images[k] for k in steps]
                actions = policy.predict_actions(images, [ep.step_instructions[k] for k in steps], extra)
            else:
                actions = [predict(policy, ep.images[first], ep.step_instructions[first], extra[0])]
        except Exception as exc:
            where = f"step {first}" if len(steps) == 1 else f"steps {first}-{steps[-1]}"
            raise EvaluationError(
                f"policy {name!r} failed on episode {ep.episode_id} {where}: {type(exc).__name__}: {exc}"
            ) from exc
        share_s = (time.perf_counter() - start) / len(actions)
        for action in actions:
            yield action, share_s


def evaluate_bags(
    bags: Iterable[str | Path],
    policies: Mapping[str, Policy],
    topics: TopicConfig | None = None,
    sync: SyncConfig | None = None,
    cleaning: CleaningConfig | None = KEEP_ALL_STEPS,
    *,
    progress: bool = True,
    seed: int = 0,
    gripper_threshold: float = DEFAULT_GRIPPER_THRESHOLD,
    min_translation_norm_m: float = DEFAULT_MIN_TRANSLATION_NORM_M,
    batch_size: int = 1,
) -> EvalResult:
    """Read episodes from ``bags`` via the dataset layer and evaluate each policy on every step.

    By default every synchronised step is kept (``KEEP_ALL_STEPS``); pass a :class:`CleaningConfig` to
    evaluate on cleaned data instead.
    """
    bags = [Path(b) for b in bags]
    topics = topics or TopicConfig()
    sync = sync or SyncConfig()
    episodes, report = load_episodes(bags, topics, sync, cleaning, progress=progress)
    models = evaluate_episodes(
        episodes,
        policies,
        progress=progress,
        seed=seed,
        gripper_threshold=gripper_threshold,
        min_translation_norm_m=min_translation_norm_m,
        batch_size=batch_size,
    )
    settings = {
        "action_source": topics.action_source,
        "camera_topic": topics.camera,
        "instruction_topic": topics.instruction,
        "control_rate_hz": sync.control_rate_hz,
        "gripper_threshold": gripper_threshold,
        "min_translation_norm_m": min_translation_norm_m,
        "seed": seed,
    }
    return EvalResult([str(b) for b in bags], episodes, models, report, settings)
