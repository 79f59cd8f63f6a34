"""Actions <-> OpenVLA action tokens, and dataset (un)normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vla_ros.model.action_tokenizer import (
    ActionStatistics,
    ActionTokenizer,
    UnnormKeyError,
    select_unnorm_key,
)

HALF_BIN = 1.0 / 255.0  # bins of width 2/255 over [-1, 1]


@given(st.lists(st.floats(-1.0, 1.0), min_size=7, max_size=7))
def test_decode_of_encode_lands_within_half_a_bin(values):
    tokenizer = ActionTokenizer()
    ids = tokenizer.encode(np.array(values))
    assert np.all((ids >= 31744) & (ids <= 31999))
    assert np.all(np.abs(tokenizer.decode(ids) - np.array(values)) <= HALF_BIN + 1e-12)


def test_token_ids_are_the_last_256_of_the_llama_vocabulary():
    tokenizer = ActionTokenizer()
    assert tokenizer.token_id_range == (31744, 32000)
    assert tokenizer.encode(np.array([1.0]))[0] == 31744
    assert tokenizer.encode(np.array([-1.0]))[0] == 31999
    assert tokenizer.encode(np.array([5.0, -5.0])).tolist() == [31744, 31999]  # clipped first


def test_encode_of_decode_is_identity_except_for_the_merged_top_bin():
    tokenizer = ActionTokenizer()
    ids = np.arange(31745, 32000)
    assert np.array_equal(tokenizer.encode(tokenizer.decode(ids)), ids)
    # 31744 (value exactly +1) decodes to the same centre as 31745, as upstream's clip does.
    assert tokenizer.decode(np.array([31744]))[0] == tokenizer.decode(np.array([31745]))[0]


def test_decode_of_non_action_ids_clips_to_the_range_ends():
    tokenizer = ActionTokenizer()
    assert tokenizer.decode(np.array([5]))[0] == tokenizer.bin_centers[-1]
    assert tokenizer.decode(np.array([32010]))[0] == tokenizer.bin_centers[0]


STATS = {"action": {"q01": [-0.1, -0.2, 0.0], "q99": [0.1, 0.2, 1.0], "mask": [True, True, False]}}


def test_unnormalize_maps_minus_one_and_one_to_q01_and_q99_and_leaves_masked_dims():
    stats = ActionStatistics.from_norm_stats(STATS)
    raw = stats.unnormalize(np.array([-1.0, 1.0, 0.25]))
    assert np.allclose(raw, [-0.1, 0.2, 0.25])


@given(st.lists(st.floats(-0.1, 0.1), min_size=2, max_size=2), st.floats(0.0, 1.0))
def test_normalize_then_unnormalize_is_identity_inside_the_bounds(xy, gripper):
    stats = ActionStatistics.from_norm_stats(STATS)
    action = np.array([xy[0], xy[1] * 2, gripper])
    assert np.allclose(stats.unnormalize(stats.normalize(action)), action, atol=1e-6)


def test_normalize_clips_outliers_to_the_unit_range():
    stats = ActionStatistics.from_norm_stats(STATS)
    assert np.allclose(stats.normalize(np.array([1.0, -1.0, 0.5])), [1.0, -1.0, 0.5])


def test_missing_mask_means_every_dimension_is_normalised():
    stats = ActionStatistics.from_norm_stats({"action": {"q01": [0.0, 0.0], "q99": [2.0, 4.0]}})
    assert np.allclose(stats.unnormalize(np.array([0.0, 0.0])), [1.0, 2.0])


def test_unnorm_key_is_chosen_automatically_only_when_there_is_one():
    assert select_unnorm_key({"bridge_orig": STATS}, None) == "bridge_orig"
    with pytest.raises(UnnormKeyError, match="bridge_orig, fractal"):
        select_unnorm_key({"fractal": STATS, "bridge_orig": STATS}, None)


def test_wrong_unnorm_key_lists_the_available_ones():
    with pytest.raises(UnnormKeyError, match=r"'libero' .*available: bridge_orig, fractal"):
        select_unnorm_key({"fractal": STATS, "bridge_orig": STATS}, "libero")
