"""Small OpenVLA models of the same architecture, made locally, for tests and the simulated cell.

Same timm families (DINOv2-reg4 and SigLIP ViTs, reduced depth/width), same projector shape rule,
a few-layer Llama with the real 32064-token vocabulary by default, and a Llama-style BPE tokenizer
trained here on robot instructions: byte fallback, "▁" word boundaries, 32000 base ids with "▁" at
29871 and the action tokens at 31744..31999, <PAD> at 32000. The result is written in the official
layout and loads through :func:`vla_ros.model.loading.load_checkpoint` like the real checkpoint.
"""

from __future__ import annotations

import json
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from vla_ros.model.action_tokenizer import LLAMA2_BASE_VOCAB_SIZE
from vla_ros.model.configuration_openvla import OFFICIAL_VOCAB_SIZE, OpenVLAConfig
from vla_ros.model.loading import save_checkpoint
from vla_ros.model.modeling_openvla import OpenVLAForActionPrediction
from vla_ros.model.processing import SPACE_TOKEN_ID, ImageProcessor, build_prompt


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a small OpenVLA. ``vocab_size`` must be at least 32001 (base vocabulary + <PAD>)."""

    vit_depth: int = 3
    dino_embed_dim: int = 64
    siglip_embed_dim: int = 64
    vit_num_heads: int = 4
    llm_hidden_size: int = 128
    llm_intermediate_size: int = 344
    llm_num_layers: int = 2
    llm_num_heads: int = 4
    vocab_size: int = OFFICIAL_VOCAB_SIZE
    image_size_px: int = 224
    # 1: both ViTs' position embeddings start as fixed 2-D sin-cos patterns (as in MAE), not timm's
    # std-0.02 noise, so patch tokens say where they are from the first step (an int, so that
    # ``vla-ros train --init-override sincos_position_init=1`` can set it).
    sincos_position_init: int = 0


PRESETS: dict[str, TinySpec] = {
    # A forward pass in tens of milliseconds on one CPU thread: unit tests.
    "tiny": TinySpec(),
    # Still trainable by behaviour cloning on a 2-core CPU: the simulated cell's policy.
    "small": TinySpec(
        vit_depth=4,
        dino_embed_dim=128,
        siglip_embed_dim=128,
        vit_num_heads=4,
        llm_hidden_size=256,
        llm_intermediate_size=688,
        llm_num_layers=4,
        llm_num_heads=4,
    ),
}

# Instruction vocabulary the tokenizer learns its merges from (everything else falls back to bytes).
_VERBS = (
    "pick up",
    "put",
    "place",
    "move",
    "push",
    "pull",
    "open",
    "close",
    "lift",
    "stack",
    "slide",
    "grasp",
    "drop",
    "turn",
    "insert",
    "remove",
    "take",
    "sort",
    "align",
    "rotate",
    "press",
    "wipe",
    "fold",
    "pour",
)
_OBJECTS = (
    "cube",
    "block",
    "bolt",
    "nut",
    "screw",
    "gear",
    "bracket",
    "part",
    "tray",
    "bin",
    "box",
    "drawer",
    "lid",
    "bottle",
    "cup",
    "bowl",
    "pan",
    "spoon",
    "plate",
    "tool",
    "washer",
    "pin",
    "can",
    "ball",
)
_ADJECTIVES = (
    "red",
    "green",
    "blue",
    "yellow",
    "black",
    "white",
    "small",
    "large",
    "left",
    "right",
    "metal",
    "plastic",
    "front",
    "back",
    "top",
    "bottom",
    "middle",
    "empty",
    "full",
)
_RELATIONS = (
    "in",
    "on",
    "into",
    "onto",
    "next to",
    "behind",
    "under",
    "above",
    "to the left of",
    "to the right of",
    "near",
    "from",
    "out of",
    "the",
    "a",
    "it",
    "and",
    "then",
)


# The simulated workcell's own vocabulary (vla_ros.sim.layout: part colours and categories, location
# names). Learned as whole words: with only the generic lists above, "orange" was "▁o r an ge" and
# "assembly fixture" thirteen pieces, so a two-layer policy had to assemble a part's name before it
# could look for it. Listed here, not imported: importing vla_ros.sim loads PyBullet, which the model
# core does not need; test_tiny_tokenizer_keeps_the_workcells_words_whole keeps the two lists in step.
_WORKCELL_WORDS = (
    ("red", "green", "blue", "yellow", "orange", "purple"),
    ("bolt", "nut", "gear", "bracket"),
    ("reject bin", "parts tray", "inspection station", "assembly fixture"),
)


def _training_corpus() -> list[str]:
    rng = np.random.default_rng(0)
    lines = [build_prompt("pick up the red cube and place it in the tray")]
    for _ in range(3000):
        v = _VERBS[rng.integers(len(_VERBS))]
        a1, a2 = _ADJECTIVES[rng.integers(len(_ADJECTIVES))], _ADJECTIVES[rng.integers(len(_ADJECTIVES))]
        o1, o2 = _OBJECTS[rng.integers(len(_OBJECTS))], _OBJECTS[rng.integers(len(_OBJECTS))]
        r = _RELATIONS[rng.integers(len(_RELATIONS))]
        lines.append(build_prompt(f"{v} the {a1} {o1} {r} the {a2} {o2}"))
    colors, categories, locations = _WORKCELL_WORDS
    for _ in range(1000):
        color, category = colors[rng.integers(len(colors))], categories[rng.integers(len(categories))]
        location = locations[rng.integers(len(locations))]
        lines.append(build_prompt(f"put the {color} {category} in the {location}"))
        lines.append(build_prompt(f"move to the {location}"))
    lines.append(string.digits + string.ascii_letters + string.punctuation)
    return lines


def build_llama_style_tokenizer(
    base_vocab_size: int = LLAMA2_BASE_VOCAB_SIZE, learned_pieces: int = 1000
) -> Tokenizer:
    """A BPE tokenizer laid out like Llama-2's: <unk>=0, <s>=1, </s>=2, <0x00..0xFF>=3..258, "▁"=29871."""
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # Merges are learned within words only (as sentencepiece does for Llama); punctuation stays apart.
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(r"[^A-Za-z0-9▁]"), behavior="isolated"),
        ]
    )
    alphabet = [*string.ascii_letters, *string.digits, *string.punctuation, "▁", "\n"]
    trainer = trainers.BpeTrainer(
        vocab_size=learned_pieces, initial_alphabet=alphabet, show_progress=False, special_tokens=[]
    )
    trainer_tok.train_from_iterator(_training_corpus(), trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    pieces = sorted(trained["vocab"], key=trained["vocab"].get)

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    next_id = len(vocab)
    for piece in pieces:
        if piece == "▁" or piece in vocab:
            continue
        vocab[piece] = next_id
        next_id += 1
    if next_id >= SPACE_TOKEN_ID:
        raise ValueError("too many learned pieces for a Llama-2 layout")
    vocab["▁"] = SPACE_TOKEN_ID
    used = set(vocab.values())
    # Unreachable filler pieces (no merge produces them) keep the id layout of the real vocabulary.
    for i in range(base_vocab_size):
        if i not in used:
            vocab[f"<unused{i}>"] = i

    tok = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=[tuple(m) for m in trained["merges"]],
            unk_token="<unk>",
            byte_fallback=True,
            fuse_unk=True,
        )
    )
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.add_special_tokens([AddedToken("<PAD>", special=True, normalized=False)])
    return tok


def write_tokenizer(directory: Path) -> None:
    """tokenizer.json + tokenizer_config.json + special_tokens_map.json, as in the official layout."""
    directory.mkdir(parents=True, exist_ok=True)
    build_llama_style_tokenizer().save(str(directory / "tokenizer.json"))
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<PAD>"}
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = {
        **special,
        "add_bos_token": True,
        "add_eos_token": False,
        "model_max_length": 2048,
        "padding_side": "right",
        "tokenizer_class": "LlamaTokenizer",
        "legacy": False,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def tiny_config(spec: TinySpec) -> OpenVLAConfig:
    """config.json of a small model: official fields plus per-backbone timm size overrides."""
    vit = {"depth": spec.vit_depth, "num_heads": spec.vit_num_heads}
    return OpenVLAConfig(
        vision_backbone_id="dinosiglip-vit-so-224px",
        llm_backbone_id="llama2-tiny",
        image_sizes=[spec.image_size_px, spec.image_size_px],
        timm_model_kwargs=[
            {**vit, "embed_dim": spec.dino_embed_dim},
            {**vit, "embed_dim": spec.siglip_embed_dim},
        ],
        text_config={
            "model_type": "llama",
            "vocab_size": spec.vocab_size,
            "hidden_size": spec.llm_hidden_size,
            "intermediate_size": spec.llm_intermediate_size,
            "num_hidden_layers": spec.llm_num_layers,
            "num_attention_heads": spec.llm_num_heads,
            "num_key_value_heads": spec.llm_num_heads,
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "pad_token_id": 32000,
        },
        llm_max_length=512,
        torch_dtype="float32",
    )


def example_norm_stats(action_dim: int = 7) -> dict:
    """Statistics shaped like a real dataset's: small deltas, gripper in [0, 1] and not normalised."""
    q01 = [-0.02, -0.02, -0.02, -0.05, -0.05, -0.05, 0.0][:action_dim]
    q99 = [0.02, 0.02, 0.02, 0.05, 0.05, 0.05, 1.0][:action_dim]
    mask = [True] * (action_dim - 1) + [False]
    action = {
        "q01": q01,
        "q99": q99,
        "mask": mask,
        "mean": [0.0] * action_dim,
        "std": [0.01] * action_dim,
        "min": q01,
        "max": q99,
    }
    return {"sim_workcell": {"action": action, "num_transitions": 0, "num_trajectories": 0}}


def build_tiny_model(spec: TinySpec | str = "tiny", seed: int = 0) -> OpenVLAForActionPrediction:
    """A randomly initialised small model (deterministic for a given seed)."""
    spec = PRESETS[spec] if isinstance(spec, str) else spec
    if spec.vocab_size <= LLAMA2_BASE_VOCAB_SIZE:
        raise ValueError(f"vocab_size must exceed {LLAMA2_BASE_VOCAB_SIZE} (base vocabulary + <PAD>)")
    torch.manual_seed(seed)
    model = OpenVLAForActionPrediction(tiny_config(spec)).eval()
    if spec.sincos_position_init:
        set_sincos_positions(model, add=False)
    return model


def set_sincos_positions(model: OpenVLAForActionPrediction, add: bool) -> None:
    """Write (or, with ``add``, add) :func:`sincos_position_embedding` patterns into both ViTs'
    position embeddings.

    Adding them to a trained model's learnt embeddings keeps what it has learnt and makes its
    backbone say precisely where each patch is (benchmarks/probe_patch_positions.py).
    """
    with torch.no_grad():
        for vit in (model.vision_backbone.featurizer, model.vision_backbone.fused_featurizer):
            if vit is None:
                continue
            rows, cols = vit.patch_embed.grid_size
            if vit.pos_embed.shape[1] != rows * cols:
                raise ValueError(
                    f"position embeddings hold {vit.pos_embed.shape[1]} rows, the patch grid {rows}x{cols}: "
                    "sin-cos patterns need one per patch (no class or register positions)"
                )
            pattern = sincos_position_embedding(rows, cols, vit.pos_embed.shape[-1])[None]
            pattern = pattern.to(dtype=vit.pos_embed.dtype, device=vit.pos_embed.device)
            vit.pos_embed.copy_(vit.pos_embed + pattern if add else pattern)


def sincos_position_embedding(rows: int, cols: int, dim: int) -> torch.Tensor:
    """[rows * cols, dim] fixed 2-D sin-cos patterns, row-major: half the channels encode the row,
    half the column, each at ``dim / 4`` geometric frequencies (MAE's recipe; amplitude 1)."""
    if dim % 4:
        raise ValueError(f"sin-cos position embeddings need a width divisible by 4, got {dim}")
    omega = 1.0 / 10000.0 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    row, col = torch.meshgrid(
        torch.arange(rows, dtype=torch.float64), torch.arange(cols, dtype=torch.float64), indexing="ij"
    )
    parts = []
    for coordinate in (row.reshape(-1), col.reshape(-1)):
        angles = coordinate[:, None] * omega[None]
        parts += [torch.sin(angles), torch.cos(angles)]
    return torch.cat(parts, dim=1).float()


def make_tiny_checkpoint(
    directory: str | Path,
    spec: TinySpec | str = "tiny",
    seed: int = 0,
    norm_stats: dict | None = None,
    max_shard_size_bytes: int = 16 * 1024**2,
) -> Path:
    """Build a small model and write it in the official layout (several shards + index)."""
    model = build_tiny_model(spec, seed)
    with tempfile.TemporaryDirectory() as tok_dir:
        write_tokenizer(Path(tok_dir))
        return save_checkpoint(
            model,
            directory,
            image_processor=ImageProcessor(image_size_px=model.config.image_size_px),
            tokenizer_dir=tok_dir,
            norm_stats=norm_stats if norm_stats is not None else example_norm_stats(),
            max_shard_size_bytes=max_shard_size_bytes,
        )
