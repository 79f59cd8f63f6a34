"""Target masks: record-demos writes which pixels show what each step heads for, the dataset carries
them through cleaning, mirroring and cropping, and --target-attention-weight teaches heads to look there."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vla_ros.data.bag import MissingTopicsError
from vla_ros.data.dataset import (
    DEFAULT_TARGET_MASK_TOPIC,
    CleaningConfig,
    Episode,
    SyncConfig,
    TopicConfig,
    load_episodes,
)
from vla_ros.data.synthetic import write_demo_bag
from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
from vla_ros.model.processing import ImageProcessor, PromptTokenizer
from vla_ros.model.tiny import PRESETS, write_tokenizer
from vla_ros.sim import Workcell, workcell_config
from vla_ros.train.config import TrainingError
from vla_ros.train.data import ActionTokenDataset, mirror_episode
from vla_ros.train.loop import train
from vla_ros.train.record import record_demonstrations

torch.set_num_threads(1)
KEEP_ALL = CleaningConfig(drop_noop_steps=False, outlier_iqr_k=None, min_steps=1)
MASKS = TopicConfig(target_mask=DEFAULT_TARGET_MASK_TOPIC)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two pick_place and two random-start move_to_part episodes at 56 px, with their target masks."""
    out = tmp_path_factory.mktemp("masked")
    common = dict(episodes=2, seed_start=0, image_size_px=56, progress=False)
    record_demonstrations(out / "pp", tasks=["pick_place"], **common)
    record_demonstrations(out / "mtp", tasks=["move_to_part"], random_start=True, **common)
    return out


def _episodes(paths) -> list[Episode]:
    bags = sorted(p for d in paths for p in d.iterdir())
    return load_episodes(bags, MASKS, SyncConfig(control_rate_hz=10.0), KEEP_ALL)[0]


def test_recorded_masks_show_the_named_part_until_it_is_held_then_the_place(recorded):
    episodes = _episodes([recorded / "pp"])
    assert len(episodes) == 2
    with Workcell(workcell_config(56)) as cell:
        for seed, episode in enumerate(episodes):
            masks = episode.step_data.get("target_mask")
            assert len(masks) == len(episode) and all(m is not None and m.shape == (56, 56) for m in masks)
            # The first frame is the reset layout: its mask is exactly the named part's pixels as the
            # part-label render (a separate segmentation pass) sees them.
            cell.reset(seed, "pick_place")
            index = [p.id for p in cell.layout.parts].index(cell.task.part_id)
            np.testing.assert_array_equal(masks[0], cell.render_part_labels() == index + 1)
            # The target switches to the place (a 12 cm square, several times the part's pixels) after
            # the gripper has closed on the part, and stays there: later masks only lose the pixels the
            # arm hides as it comes down to put the part away.
            closed = int(np.argmax(episode.actions[:, 6] < 0.5))
            switch = next(k for k in range(len(masks)) if masks[k].sum() > 3 * masks[0].sum())
            assert 0 < closed < switch
            place = masks[switch]
            assert all(not (m & ~place).any() for m in masks[switch:])
            assert not (place & masks[0]).any()


def test_masks_survive_cleaning_and_flip_with_the_mirrored_image(recorded):
    episode = _episodes([recorded / "mtp"])[0]
    kept = episode.subset(np.arange(len(episode)) % 2 == 0)
    assert [m.sum() for m in kept.step_data.get("target_mask")] == [
        m.sum() for m in episode.step_data.get("target_mask")[::2]
    ]
    mirrored = mirror_episode(episode)
    for image, mask, flipped_image, flipped_mask in zip(
        episode.images,
        episode.step_data.get("target_mask"),
        mirrored.images,
        mirrored.step_data.get("target_mask"),
        strict=True,
    ):
        np.testing.assert_array_equal(flipped_image, image[:, ::-1])
        np.testing.assert_array_equal(flipped_mask, mask[:, ::-1])
    # Bags read without the mask topic have none at all (not a list of Nones).
    plain = load_episodes([episode.metadata["bag"]], TopicConfig(), cleaning=KEEP_ALL)[0][0]
    assert plain.step_data.get("target_mask") is None


@pytest.fixture(scope="module")
def prompt_tokenizer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tok")
    write_tokenizer(directory)
    return PromptTokenizer.from_dir(directory)


def _dataset(
    masks: list[np.ndarray | None], prompt_tokenizer, train: bool, mirror: bool
) -> ActionTokenDataset:
    n = len(masks)
    episode = Episode(
        images=[np.zeros((32, 32, 3), dtype=np.uint8)] * n,
        actions=np.zeros((n, 7)),
        instruction="move to the red gear",
        step_data={"target_mask": masks},
    )
    stats = ActionStatistics(q01=np.full(7, -1.0), q99=np.ones(7), mask=np.ones(7, dtype=bool))
    return ActionTokenDataset(
        [episode],
        ImageProcessor(image_size_px=28),
        prompt_tokenizer,
        ActionTokenizer(vocab_size=prompt_tokenizer.base_vocab_size),
        stats,
        train=train,
        mirror=mirror,
        random_crop=False,
        target_grid=(4, 4),
    )


def test_target_patches_follow_the_crop_and_the_mirror(prompt_tokenizer):
    top_right = np.zeros((32, 32), dtype=bool)
    top_right[0:3, 25:31] = True
    corner = np.zeros((32, 32), dtype=bool)
    corner[31, 0] = True  # outside the centre crop (30 x 30 at offset 1)
    plain = _dataset([top_right, None, corner], prompt_tokenizer, train=False, mirror=False)
    # Centre crop 1..30, patch edges every 7.5 px: rows 0-2 and columns 25-30 are patch (0, 3).
    np.testing.assert_array_equal(np.flatnonzero(plain.target_patches(0)), [3])
    assert not plain.target_patches(1).any() and not plain.target_patches(2).any()
    batch = plain.batch([0, 1])
    assert batch["target_patches"].shape == (2, 16) and batch["target_patches"].dtype == torch.bool

    mirrored = _dataset([top_right] * 16, prompt_tokenizer, train=True, mirror=True)
    seen = {mirrored.is_mirrored(i): np.flatnonzero(mirrored.target_patches(i)).tolist() for i in range(16)}
    assert seen == {False: [3], True: [0]}  # both occur in 16 draws; mirrored, the mask is top left


def test_target_attention_loss_points_the_heads_at_the_target_and_adds_nothing_to_the_model(
    recorded, tmp_path, train_config
):
    bags = sorted(p for d in (recorded / "pp", recorded / "mtp") for p in d.iterdir())
    supervised = train(
        train_config(bags, tmp_path / "sup", target_attention_weight=1.0, target_attention_heads=2, epochs=1)
    )
    masses = [m["train_target_attention_mass"] for m in supervised.metrics]
    # 16 patches and some 90 text positions share the attention at first; then the heads look at the
    # target's few patches.
    assert masses[0] < 0.2
    assert masses[-1] > 0.5 and masses[-1] > 3 * masses[0]
    plain = train(train_config(bags, tmp_path / "plain", max_steps=4))
    assert "train_target_attention_mass" not in plain.metrics[-1]
    names = set(load_file(str(tmp_path / "sup" / "checkpoint" / "model.safetensors")))
    assert names == set(load_file(str(tmp_path / "plain" / "checkpoint" / "model.safetensors")))


def test_target_attention_needs_masks_and_existing_heads(recorded, tmp_path, train_config):
    bags = sorted((recorded / "mtp").iterdir())
    # A bag recorded elsewhere, without masks: reading it names the topic and the option.
    plain = write_demo_bag(tmp_path / "plain", np.zeros((4, 7)), image_size=(56, 56), seed=0)
    with pytest.raises(
        MissingTopicsError, match=r"target mask topic /vla/target_mask is missing \(set --target-mask-topic\)"
    ):
        train(train_config([plain], tmp_path / "a", target_attention_weight=1.0))
    with pytest.raises(TrainingError, match=r"target_attention_heads must be 1\.\.4"):
        train(train_config(bags, tmp_path / "b", target_attention_weight=1.0, target_attention_heads=5))
    with pytest.raises(TrainingError, match="target_attention_weight must be >= 0"):
        train_config(bags, tmp_path / "c", target_attention_weight=-1.0)


def test_the_model_returns_attention_probabilities_under_eager_attention_and_then_restores_it():
    from vla_ros.model.tiny import build_tiny_model
    from vla_ros.train.objectives import eager_attention

    model = build_tiny_model(replace(PRESETS["tiny"], image_size_px=28))
    before = model.language_model.config._attn_implementation
    pixels, ids = torch.zeros(2, 6, 28, 28), torch.ones(2, 5, dtype=torch.long)
    expected = model(pixels, ids).logits
    assert model(pixels, ids).attentions is None  # only when asked for
    with eager_attention(model):
        out = model(pixels, ids, output_attentions=True)
    weights = out.attentions[-1]
    heads = model.language_model.config.num_attention_heads
    sequence = 1 + model.num_patches + 4  # BOS, the patches, the rest of the prompt
    assert weights.shape == (2, heads, sequence, sequence)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, heads, sequence))
    assert torch.all(weights.triu(diagonal=1) == 0)  # causal
    torch.testing.assert_close(out.logits, expected, atol=1e-5, rtol=1e-4)  # eager gives the same answer
    assert model.language_model.config._attn_implementation == before
