"""predict_action latency and parameter memory of OpenVLA on the CPU.

Side by side in one run, on the same weights and inputs:
  * ours      -- VLAPolicy.predict_action (preprocessing, KV-cached greedy decoding of 7 tokens,
                 logits only for the last position, un-normalisation)
  * generate  -- the same preprocessing and multimodal embeddings, then transformers'
                 LlamaForCausalLM.generate(inputs_embeds=..., max_new_tokens=7, do_sample=False)
Then per precision / quantization: latency of our path, token agreement with fp32, and parameter
memory (state-dict bytes) of the tiny model and, computed from the meta-device build, of the
full-size OpenVLA-7B.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_model.py [--variant tiny|small] [--iterations 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vla_ros.model.configuration_openvla import OpenVLAConfig
from vla_ros.model.loading import build_empty_model, quantized_linear_names
from vla_ros.model.tiny import make_tiny_checkpoint
from vla_ros.policy.runtime import PolicyConfig, VLAPolicy

INSTRUCTIONS = (
    "pick up the red cube",
    "open the drawer",
    "push the blue block left",
    "put the bolt in the tray",
)
SETTINGS = [
    ("fp32", "none"),
    ("bf16", "none"),
    ("fp16", "none"),
    ("bf16", "8bit"),
    ("fp32", "4bit-nf4"),
    ("fp32", "4bit-fp4"),
]


def _observations(n: int) -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng(0)
    return [(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), INSTRUCTIONS[i % 4]) for i in range(n)]


def _generate_baseline(policy: VLAPolicy, image: np.ndarray, instruction: str) -> tuple[list[int], float]:
    start = time.perf_counter()
    model = policy.core_model
    pixel_values, input_ids = policy.encode_inputs(image, instruction)
    with torch.inference_mode():
        embeds, mask = model.embed_multimodal(pixel_values, input_ids)
        out = model.language_model.generate(
            inputs_embeds=embeds, attention_mask=mask, max_new_tokens=7, do_sample=False, pad_token_id=32000
        )
    tokens = out[0, -7:].tolist()
    policy.action_statistics.unnormalize(policy.action_tokenizer.decode(np.array(tokens)))
    return tokens, time.perf_counter() - start


def _ms(samples: list[float]) -> str:
    return f"{1000 * statistics.median(samples):8.1f} {1000 * np.percentile(samples, 90):8.1f}"


def _state_bytes(model: torch.nn.Module) -> int:
    return sum(
        t.numel() * t.element_size() for t in model.state_dict().values() if isinstance(t, torch.Tensor)
    )


def _full_size_bytes(precision: str, quantization: str) -> float:
    """Weight bytes of OpenVLA-7B under a setting, from the meta-device build (bitsandbytes layouts)."""
    model = build_empty_model(OpenVLAConfig())
    quantized = {f"{n}.weight" for n in quantized_linear_names(model, vision=False, projector=False)}
    width = {"fp32": 4, "bf16": 2, "fp16": 2}[precision]
    total = 0.0
    for name, p in model.named_parameters():
        if quantization != "none" and name in quantized:
            if quantization == "8bit":
                total += p.numel() + 4 * p.shape[0]  # int8 + one fp32 scale per row
            else:
                total += (
                    p.numel() / 2 + p.numel() / 64 + 4 * p.numel() / (64 * 256)
                )  # 4 bit + double-quantized absmax
        else:
            total += p.numel() * width
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="checkpoint dir (default: a fresh tiny model)"
    )
    parser.add_argument("--variant", choices=["tiny", "small"], default="tiny")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-full-size", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    model_dir = args.model or make_tiny_checkpoint(Path(tmp.name) / args.variant, spec=args.variant, seed=0)
    observations = _observations(args.iterations)
    print(
        f"model {model_dir} ({args.variant if args.model is None else 'given'}), {args.threads} thread(s), "
        f"{args.iterations} observations, torch {torch.__version__}"
    )

    policy = VLAPolicy(PolicyConfig(model_dir, precision="fp32"))
    n_params = sum(p.numel() for p in policy.core_model.parameters())
    print(f"parameters: {n_params / 1e6:.2f} M")
    for image, instruction in observations[:2]:  # warm-up
        policy.predict_action(image, instruction)
        _generate_baseline(policy, image, instruction)
    constrained = VLAPolicy(
        PolicyConfig(model_dir, precision="fp32", constrain_to_action_tokens=True), loaded=policy.loaded
    )
    ours, ours_constrained, baseline, same = [], [], [], 0
    for image, instruction in observations:  # interleaved so that machine load hits all three alike
        action = policy.predict_action(image, instruction)
        ours_constrained.append(constrained.predict_action(image, instruction).inference_time_s)
        tokens, seconds = _generate_baseline(policy, image, instruction)
        ours.append(action.inference_time_s)
        baseline.append(seconds)
        same += list(action.token_ids) == tokens
    print("\npredict_action latency, fp32 (ms)              median      p90")
    print(f"  ours (KV cache, last-position logits)       {_ms(ours)}")
    print(f"  ours, constrained (256-row LM head)         {_ms(ours_constrained)}")
    print(f"  transformers generate() (same embeddings)   {_ms(baseline)}")
    print(
        f"  identical 7-token outputs ours vs generate(): {same}/{len(observations)}; speed-up "
        f"{statistics.median(baseline) / statistics.median(ours):.2f}x unconstrained, "
        f"{statistics.median(baseline) / statistics.median(ours_constrained):.2f}x constrained"
    )

    changed = sum(
        policy.predict_action(im, ins).token_ids != constrained.predict_action(im, ins).token_ids
        for im, ins in observations
    )
    print(
        f"  constraining decoding to action tokens changed {changed}/{len(observations)} outputs "
        "(an untrained model mostly emits non-action tokens)"
    )

    reference = [constrained.predict_action(im, ins).token_ids for im, ins in observations]
    print(
        "\nper setting (constrained decoding)   median ms   p90 ms  token agreement  tiny weights MB"
        + ("  7B weights GB" if not args.skip_full_size else "")
    )
    for precision, quantization in SETTINGS:
        p = VLAPolicy(
            PolicyConfig(
                model_dir, precision=precision, quantization=quantization, constrain_to_action_tokens=True
            )
        )
        p.predict_action(*observations[0])
        times, agree = [], 0
        for (im, ins), ref in zip(observations, reference, strict=True):
            action = p.predict_action(im, ins)
            times.append(action.inference_time_s)
            agree += sum(a == b for a, b in zip(action.token_ids, ref, strict=True))
        full = "" if args.skip_full_size else f"  {_full_size_bytes(precision, quantization) / 1e9:13.2f}"
        print(
            f"  {precision:>5} {quantization:<9}            {_ms(times)}  "
            f"{agree / (7 * len(observations)):15.2f}  {_state_bytes(p.core_model) / 1e6:15.2f}{full}"
        )


if __name__ == "__main__":
    main()
