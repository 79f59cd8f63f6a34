"""Training objectives: the action-token loss, and extra objectives the loop adds with a weight.

An extra objective is a small object the loop builds from the model and calls after every training
forward pass with the batch and the model's output: :meth:`Objective.loss` returns its (unweighted)
loss, :attr:`Objective.parameters` any training-only head it owns (saved with the resume point, not
exported), :meth:`Objective.metrics` what it measured since the last call. It says which optional
outputs it reads (``output_image_embeddings``, ``output_attentions``) and the model returns them; no
hooks.

- :class:`PatchPositionObjective` (``patch_position_weight``, not upstream's): a linear readout asks
  each projector output token for its own patch row and column. For models trained from scratch,
  whose patch tokens otherwise lose where they are.
- :class:`TargetAttentionObjective` (``target_attention_weight``, not upstream's): -log of the
  attention mass that heads of the LM's last layer put, from the action-predicting positions, on the
  patches showing what the step heads for (masks from bags recorded by ``record-demos``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from vla_ros.model.modeling_openvla import IGNORE_INDEX, OpenVLAForActionPrediction, OpenVLAOutput
from vla_ros.train.config import TrainingError
from vla_ros.train.model import core_model


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


class Objective:
    """An extra loss term: ``weight * loss(batch, out)``. Subclasses set what they read from the model."""

    name = ""
    output_image_embeddings = False
    output_attentions = False

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self._values: list[float] = []

    @property
    def parameters(self) -> dict[str, torch.nn.Parameter]:
        """Training-only weights, by the name they are saved under in the resume point."""
        return {}

    def loss(self, batch: dict[str, torch.Tensor], out: OpenVLAOutput) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self) -> dict[str, float]:
        """The mean of what :meth:`loss` measured since the last call (then forgotten)."""
        values, self._values = self._values, []
        return {f"train_{self.name}": float(np.mean(values))} if values else {}

    def close(self) -> None:
        """Undo what the objective changed on the model (nothing by default)."""


class PatchPositionObjective(Objective):
    """Asks each projector output token, through a linear readout, for its own patch row and column.

    The language model sees the image only through the projector's tokens, and its rotary positions
    shape where attention looks, not what the attended values say. So a token must itself carry
    where its patch is, or no policy on top can tell where a part lies (pretrained DINOv2/SigLIP
    features carry it; a backbone trained from scratch on behaviour cloning drops it:
    ``benchmarks/probe_patch_positions.py``). This self-supervised loss keeps it. The head is only
    for training: the exported checkpoint is the plain OpenVLA model.
    """

    name = "patch_position_loss"
    output_image_embeddings = True
    PREFIX = "patch_position_head."

    def __init__(self, model: torch.nn.Module, weight: float) -> None:
        super().__init__(weight)
        core = core_model(model)
        self.rows, self.cols = (int(n) for n in core.vision_backbone.featurizer.patch_embed.grid_size)
        self.linear = torch.nn.Linear(core.config.llama_config().hidden_size, self.rows + self.cols)
        self.linear.to(core.device)

    @property
    def parameters(self) -> dict[str, torch.nn.Parameter]:
        return {f"{self.PREFIX}linear.{name}": p for name, p in self.linear.named_parameters()}

    def loss(self, batch: dict[str, torch.Tensor], out: OpenVLAOutput) -> torch.Tensor:
        """Cross-entropy (row + column) over every view's patch tokens."""
        tokens = out.image_embeddings.reshape(-1, self.rows * self.cols, out.image_embeddings.shape[-1])
        logits = self.linear(tokens.float())  # [B * views, rows * cols, rows + cols]
        index = torch.arange(self.rows * self.cols, device=logits.device)
        row, col = index // self.cols, index % self.cols
        images = logits.shape[0]
        loss = torch.nn.functional.cross_entropy(
            logits[..., : self.rows].reshape(-1, self.rows), row.repeat(images)
        ) + torch.nn.functional.cross_entropy(
            logits[..., self.rows :].reshape(-1, self.cols), col.repeat(images)
        )
        self._values.append(loss.item())
        return loss


@contextlib.contextmanager
def eager_attention(model: torch.nn.Module) -> Iterator[None]:
    """Run the language model with eager attention, the implementation that returns attention
    probabilities (``forward(output_attentions=True)``); the previous one comes back on exit."""
    config = core_model(model).language_model.config
    previous = config._attn_implementation
    config._attn_implementation = "eager"
    try:
        yield
    finally:
        config._attn_implementation = previous


class TargetAttentionObjective(Objective):
    """Asks heads of the language model's last layer to look, from the positions that predict action
    tokens, at the image patches that show what the instruction names.

    A policy trained from scratch by behaviour cloning alone learnt to find a lone part but not to
    pick the named one of several: the action loss says only where to go, not which tokens hold the
    answer, and the cheap solutions (head for some part, for the middle) cost it little. Here the
    lookup itself is supervised: the last layer is where a head can key on the name, which an earlier
    layer has moved to the action positions, and it reads the patches' positions into the action
    (docs/training_runs.md, run V). Only for training: nothing is added to the model. The model runs
    with eager attention until :meth:`close`.
    """

    name = "target_attention_mass"
    output_attentions = True

    def __init__(self, model: torch.nn.Module, weight: float, num_heads: int) -> None:
        super().__init__(weight)
        self._core: OpenVLAForActionPrediction = core_model(model)
        available = int(self._core.language_model.config.num_attention_heads)
        if not 1 <= num_heads <= available:
            raise TrainingError(
                f"target_attention_heads must be 1..{available} (the last layer's heads), got {num_heads}"
            )
        self.num_heads = num_heads
        self._eager = eager_attention(model)
        self._eager.__enter__()

    def loss(self, batch: dict[str, torch.Tensor], out: OpenVLAOutput) -> torch.Tensor:
        """Mean over steps with a visible target, action-predicting positions and supervised heads of
        -log(attention mass on the target's patches)."""
        weights = out.attentions[-1]
        labels, target = batch["labels"].to(weights.device), batch["target_patches"].to(weights.device)
        # The positions the action loss is computed at: each predicts a labelled token.
        predicts = self._core.next_token_targets(labels) != IGNORE_INDEX
        rows = target.any(dim=1)
        if not rows.any():
            return weights.sum() * 0.0
        on_patches = weights[:, : self.num_heads, :-1, 1 : 1 + self._core.num_patches].float()
        mass = (on_patches * target[:, None, None, :]).sum(-1)  # [B, heads, T-1]
        keep = (predicts & rows[:, None])[:, None, :].expand_as(mass)
        selected = mass[keep]
        self._values.append(float(selected.detach().mean()))
        return -torch.log(selected.clamp_min(1e-6)).mean()

    def close(self) -> None:
        self._eager.__exit__(None, None, None)
