"""Behaviour cloning's loss is cross-entropy on the action tokens (and EOS) only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_ros.data.dataset import compute_dataset_statistics, load_episodes
from vla_ros.data.synthetic import write_demo_bag
from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
from vla_ros.model.modeling_openvla import IGNORE_INDEX
from vla_ros.model.processing import ImageProcessor, PromptTokenizer
from vla_ros.model.tiny import TinySpec, build_tiny_model, write_tokenizer
from vla_ros.train.data import ActionTokenDataset
from vla_ros.train.objectives import action_token_loss

torch.set_num_threads(1)
SPEC = TinySpec(image_size_px=28, llm_num_layers=1, vit_depth=2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loss")
    rng = np.random.default_rng(0)
    actions = np.column_stack([rng.uniform(-0.03, 0.03, (6, 6)), rng.integers(0, 2, 6)])
    bag = write_demo_bag(tmp / "bag", actions, image_size=(32, 32), instruction="put the red gear in the bin")
    episodes, _ = load_episodes([bag])
    stats = ActionStatistics.from_norm_stats(compute_dataset_statistics(episodes))
    write_tokenizer(tmp / "tok")
    prompt_tokenizer = PromptTokenizer.from_dir(tmp / "tok")
    return ActionTokenDataset(
        episodes,
        ImageProcessor(image_size_px=SPEC.image_size_px),
        prompt_tokenizer,
        ActionTokenizer(vocab_size=prompt_tokenizer.base_vocab_size),
        stats,
        train=True,
    )


@pytest.fixture(scope="module")
def model():
    return build_tiny_model(SPEC, seed=3).train()


def test_only_the_action_tokens_and_eos_are_labelled(dataset):
    batch = dataset.batch(range(len(dataset)))
    for i, (ids, mask, labels) in enumerate(
        zip(batch["input_ids"], batch["attention_mask"], batch["labels"], strict=True)
    ):
        length = int(mask.sum())
        labelled = torch.nonzero(labels != IGNORE_INDEX).flatten().tolist()
        assert labelled == list(range(length - 8, length))
        eos = dataset.prompt_tokenizer.eos_token_id
        expected = [*dataset.action_tokens(dataset.actions[i]).tolist(), eos]
        assert labels[labelled].tolist() == expected
        assert ids[labelled].tolist() == expected  # teacher forcing: the labels are the inputs


def test_loss_is_cross_entropy_over_the_action_positions_of_the_full_logits(dataset, model):
    batch = dataset.batch(range(4))
    out = model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["labels"])
    with torch.no_grad():
        full = model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"]).logits
    # Logit j of the multimodal sequence predicts token j+1; the text is shifted by the image patches.
    n_patches = model.num_patches
    rows, targets = [], []
    for b, labels in enumerate(batch["labels"]):
        for t in torch.nonzero(labels != IGNORE_INDEX).flatten().tolist():
            rows.append(full[b, n_patches + t - 1])
            targets.append(labels[t])
    manual = torch.nn.functional.cross_entropy(torch.stack(rows).float(), torch.stack(targets))
    assert out.loss.item() == pytest.approx(manual.item(), rel=1e-4)
    assert out.labels.numel() == 4 * 8


def _loss_with_hidden_perturbed(model, batch, positions: str) -> float:
    """Replace the final hidden states at prompt/image positions (or at action positions) by noise:
    only what the model predicts there changes, nothing else can see it (it is the last layer)."""
    mask = batch["labels"] != IGNORE_INDEX
    n_patches = model.num_patches

    def hook(_module, _inputs, output):
        output = output.clone()
        for b in range(output.shape[0]):
            predicts_action = torch.zeros(output.shape[1], dtype=torch.bool)
            for t in torch.nonzero(mask[b]).flatten().tolist():
                predicts_action[n_patches + t - 1] = True
            chosen = ~predicts_action if positions == "non-action" else predicts_action
            generator = torch.Generator().manual_seed(b)
            noise = torch.randn(output[b].shape, generator=generator) * 10
            output[b, chosen] = noise[chosen]
        return output

    handle = model.language_model.model.norm.register_forward_hook(hook)
    try:
        with torch.no_grad():
            return model(
                batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["labels"]
            ).loss.item()
    finally:
        handle.remove()


def test_predictions_at_image_and_prompt_positions_do_not_change_the_loss(dataset, model):
    batch = dataset.batch(range(4))
    with torch.no_grad():
        reference = model(
            batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["labels"]
        ).loss.item()
    assert _loss_with_hidden_perturbed(model, batch, "non-action") == pytest.approx(reference, rel=1e-6)
    # The same perturbation at the action positions does change it: the check above can fail.
    assert _loss_with_hidden_perturbed(model, batch, "action") != pytest.approx(reference, rel=1e-3)


def test_training_loss_is_the_models_cross_entropy_unless_bins_are_smoothed(dataset, model):
    batch = dataset.batch(range(4))
    with torch.no_grad():
        out = model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["labels"])
    token_range = dataset.action_tokenizer.token_id_range
    exact = action_token_loss(out.logits, out.labels, token_range)
    assert exact.item() == pytest.approx(out.loss.item(), rel=1e-6)
    # Smoothing rewards probability on the neighbouring bins: a prediction one bin off costs less.
    target = torch.tensor([token_range[0] + 100, 2])  # an action token, then EOS
    off_by_one = torch.full((2, out.logits.shape[1]), -20.0)
    off_by_one[0, token_range[0] + 101] = 20.0
    off_by_one[1, 2] = 20.0
    far_off = off_by_one.clone()
    far_off[0, token_range[0] + 101], far_off[0, token_range[0] + 200] = -20.0, 20.0
    smoothed = action_token_loss(off_by_one, target, token_range, bin_smoothing=3.0)
    assert smoothed < action_token_loss(off_by_one, target, token_range)
    assert smoothed < action_token_loss(far_off, target, token_range, bin_smoothing=3.0)


def test_smoothed_loss_has_finite_gradients_next_to_an_exact_eos_target():
    logits = torch.randn(3, 32064, requires_grad=True)
    targets = torch.tensor([31750, 2, 31999])
    action_token_loss(logits, targets, (31744, 32000), bin_smoothing=4.0).backward()
    assert torch.isfinite(logits.grad).all()
