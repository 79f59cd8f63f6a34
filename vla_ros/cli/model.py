"""``vla-ros make-tiny-model`` and ``vla-ros predict``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_ros.errors import UserInputError
from vla_ros.model.options import DEFAULT_PRECISION, PRECISION_CHOICES, PRECISION_HELP, QUANTIZATIONS


def register(subparsers: argparse._SubParsersAction) -> None:
    tiny = subparsers.add_parser(
        "make-tiny-model", help="write a small randomly initialised OpenVLA in the official checkpoint layout"
    )
    tiny.add_argument("out_dir", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--variant", choices=["tiny", "small"], default="tiny")
    tiny.add_argument(
        "--vocab-size", type=int, default=None, help="LM vocabulary (default 32064, as OpenVLA)"
    )
    tiny.set_defaults(func=_make_tiny_model)

    predict = subparsers.add_parser("predict", help="predict one action from an image and an instruction")
    predict.add_argument("--image", type=Path, required=True, help="RGB image file (PNG, JPEG)")
    predict.add_argument("--instruction", required=True)
    add_policy_arguments(predict)
    predict.add_argument("--device", default="cpu")
    predict.set_defaults(func=_predict)


def add_policy_arguments(p: argparse.ArgumentParser) -> None:
    """How to run a checkpoint: the options every command that loads one for inference offers."""
    p.add_argument("--model", type=Path, required=True, help="checkpoint directory (official layout)")
    p.add_argument("--adapter", type=Path, default=None, help="LoRA adapter directory")
    p.add_argument("--unnorm-key", default=None, help="dataset statistics to un-normalise with")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default=DEFAULT_PRECISION, help=PRECISION_HELP)
    p.add_argument("--quantization", choices=QUANTIZATIONS, default="none")
    add_center_crop_argument(p)
    p.add_argument("--constrain", action="store_true", help="decode only action tokens")


def require_checkpoint_dir(path: Path) -> None:
    """Refuse a ``--model`` that cannot be a checkpoint before anything slow starts (Ray, the simulator's
    nodes); the loader checks the rest of the directory."""
    if not (Path(path) / "config.json").is_file():
        raise UserInputError(f"{path} is not a checkpoint directory (no config.json)")


def policy_config_from_args(args: argparse.Namespace, device: str):
    """The :class:`~vla_ros.policy.runtime.PolicyConfig` of :func:`add_policy_arguments`' options."""
    from vla_ros.policy.runtime import PolicyConfig

    return PolicyConfig(
        checkpoint_dir=args.model,
        precision=args.precision,
        quantization=args.quantization,
        device=device,
        adapter_dir=args.adapter,
        unnorm_key=args.unnorm_key,
        center_crop=args.center_crop,
        constrain_to_action_tokens=args.constrain,
    )


def add_center_crop_argument(p: argparse.ArgumentParser) -> None:
    """--center-crop / --no-center-crop; neither means as the checkpoint's config.json records (a model
    trained on random crops is centre-cropped, an upstream checkpoint is not)."""
    crop = p.add_mutually_exclusive_group()
    crop.add_argument(
        "--center-crop",
        dest="center_crop",
        action="store_const",
        const=True,
        default=None,
        help="centre-crop frames (default: as the checkpoint's config.json records)",
    )
    crop.add_argument(
        "--no-center-crop", dest="center_crop", action="store_const", const=False, help="never crop"
    )


def _make_tiny_model(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from vla_ros.model.tiny import PRESETS, make_tiny_checkpoint

    spec = PRESETS[args.variant]
    if args.vocab_size is not None:
        spec = replace(spec, vocab_size=args.vocab_size)
    out = make_tiny_checkpoint(args.out_dir, spec=spec, seed=args.seed)
    print(f"wrote {args.variant} OpenVLA checkpoint to {out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from vla_ros.action import ACTION_NAMES
    from vla_ros.image_codec import read_image_file

    image = read_image_file(args.image)  # a wrong image is refused before torch loads (seconds)
    from vla_ros.policy.runtime import VLAPolicy

    policy = VLAPolicy(policy_config_from_args(args, args.device))
    action = policy.predict_action(image, args.instruction)
    print(
        json.dumps(
            {
                "action": dict(zip(ACTION_NAMES, action.vector.round(6).tolist(), strict=True)),
                "token_ids": list(action.token_ids),
                "unnorm_key": policy.unnorm_key,
                "precision": policy.precision,
                "inference_time_s": round(action.inference_time_s, 4),
            }
        )
    )
    return 0
