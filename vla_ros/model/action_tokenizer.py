"""Continuous actions <-> OpenVLA's action tokens, and dataset (un)normalisation.

OpenVLA discretises each normalised action dimension into 256 uniform bins over [-1, 1] and writes
bin ``k`` (``np.digitize``, 1..256) as token id ``vocab_size - k`` with ``vocab_size`` = 32000, so
action tokens are the last 256 ids of Llama-2's vocabulary, 31744..31999 (upstream overwrote its
least used tokens). Decoding maps an id back to one of the 255 bin centres. Both directions are
here because behaviour cloning needs the encoder and the policy the decoder.
The tokens are emitted in the action's dimension order (dx, dy, dz, ..., gripper), as upstream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_ros.errors import UserInputError

LLAMA2_BASE_VOCAB_SIZE = 32000


class UnnormKeyError(UserInputError, KeyError):
    """The requested dataset has no statistics in this checkpoint."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class ActionStatisticsError(UserInputError, ValueError):
    """A dataset's q01/q99 statistics cannot un-normalise actions (missing, mismatched, NaN, reversed)."""


@dataclass(frozen=True)
class ActionStatistics:
    """q01/q99 bounds of one dataset's actions; ``mask`` marks the dimensions that are normalised."""

    q01: np.ndarray
    q99: np.ndarray
    mask: np.ndarray

    @classmethod
    def from_norm_stats(cls, stats: dict) -> ActionStatistics:
        """From one entry of ``dataset_statistics.json`` / ``norm_stats`` (``{"action": {...}}``).

        Refuses statistics that would turn every action into NaN or flip its sign: q01/q99 must be
        finite and q01 <= q99 wherever the mask normalises."""
        action = stats.get("action", stats) if isinstance(stats, dict) else stats
        if not isinstance(action, dict):
            raise ActionStatisticsError(
                f"expected {{'action': {{'q01': [...], 'q99': [...]}}}}, got {action!r:.80}"
            )
        try:
            q01 = np.asarray(action["q01"], dtype=np.float64)
            q99 = np.asarray(action["q99"], dtype=np.float64)
            mask = np.asarray(action.get("mask", np.ones_like(q01, dtype=bool)), dtype=bool)
        except KeyError as exc:
            raise ActionStatisticsError(
                f"action statistics need q01 and q99, found keys {sorted(action)}"
            ) from exc
        except (TypeError, ValueError) as exc:
            raise ActionStatisticsError(f"q01, q99 and mask must be lists of numbers: {exc}") from exc
        if not (q01.shape == q99.shape == mask.shape) or q01.ndim != 1:
            raise ActionStatisticsError(
                f"q01 {q01.shape}, q99 {q99.shape} and mask {mask.shape} must be equal 1-D shapes"
            )
        if not (np.all(np.isfinite(q01)) and np.all(np.isfinite(q99))):
            raise ActionStatisticsError(
                f"q01 and q99 must be finite numbers, got q01={q01.tolist()} q99={q99.tolist()}"
            )
        reversed_dims = np.flatnonzero(mask & (q01 > q99))
        if reversed_dims.size:
            raise ActionStatisticsError(
                f"q01 > q99 in dimension(s) {reversed_dims.tolist()} (q01={q01.tolist()}, "
                f"q99={q99.tolist()}): the bounds are swapped"
            )
        return cls(q01=q01, q99=q99, mask=mask)

    @property
    def action_dim(self) -> int:
        return int(self.q01.shape[0])

    def to_dict(self) -> dict:
        return {"q01": self.q01.tolist(), "q99": self.q99.tolist(), "mask": self.mask.tolist()}

    def normalize(self, action: np.ndarray) -> np.ndarray:
        """Raw action -> [-1, 1] (masked dimensions pass through unchanged), as in OpenVLA's RLDS code."""
        action = np.asarray(action, dtype=np.float64)
        scaled = 2.0 * (action - self.q01) / (self.q99 - self.q01 + 1e-8) - 1.0
        return np.where(self.mask, np.clip(scaled, -1.0, 1.0), action)

    def unnormalize(self, normalized: np.ndarray) -> np.ndarray:
        """[-1, 1] -> raw action units; masked dimensions (the gripper, usually) are left as they are."""
        normalized = np.asarray(normalized, dtype=np.float64)
        raw = 0.5 * (normalized + 1.0) * (self.q99 - self.q01) + self.q01
        return np.where(self.mask, raw, normalized)


def select_unnorm_key(norm_stats: dict, unnorm_key: str | None) -> str:
    """The dataset whose statistics un-normalise actions: explicit, or the only one there is."""
    available = sorted(norm_stats)
    if not available:
        raise UnnormKeyError(
            "this checkpoint has no action statistics (no dataset_statistics.json and no norm_stats in "
            "config.json): add the dataset_statistics.json written by fine-tuning to the checkpoint directory"
        )
    if unnorm_key is None:
        if len(available) == 1:
            return available[0]
        raise UnnormKeyError(
            f"this checkpoint has statistics for {len(available)} datasets; choose one with unnorm_key "
            f"(--unnorm-key): {', '.join(available)}"
        )
    if unnorm_key not in norm_stats:
        raise UnnormKeyError(
            f"unnorm_key {unnorm_key!r} is not in this checkpoint's statistics; "
            f"available: {', '.join(available)}"
        )
    return unnorm_key


class ActionTokenizer:
    """Normalised actions in [-1, 1] <-> token ids ``vocab_size - n_bins .. vocab_size - 1``."""

    def __init__(
        self,
        n_bins: int = 256,
        vocab_size: int = LLAMA2_BASE_VOCAB_SIZE,
        min_action: float = -1.0,
        max_action: float = 1.0,
    ) -> None:
        self.n_bins = n_bins
        self.vocab_size = vocab_size
        self.min_action = min_action
        self.max_action = max_action
        self.bins = np.linspace(min_action, max_action, n_bins)
        self.bin_centers = (self.bins[:-1] + self.bins[1:]) / 2.0

    @property
    def token_id_range(self) -> tuple[int, int]:
        """[lo, hi) of the ids an action can encode to (31744, 32000 for OpenVLA)."""
        return self.vocab_size - self.n_bins, self.vocab_size

    def encode(self, normalized_action: np.ndarray) -> np.ndarray:
        """Normalised action(s), last axis the dimensions -> token ids (int64)."""
        clipped = np.clip(np.asarray(normalized_action, dtype=np.float64), self.min_action, self.max_action)
        return (self.vocab_size - np.digitize(clipped, self.bins)).astype(np.int64)

    def decode(self, token_ids: np.ndarray) -> np.ndarray:
        """Token ids -> normalised action (bin centres). Ids outside the action range clip to the ends."""
        token_ids = np.asarray(token_ids, dtype=np.int64)
        index = self.vocab_size - token_ids - 1
        return self.bin_centers[np.clip(index, 0, self.bin_centers.shape[0] - 1)]
