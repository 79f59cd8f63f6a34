"""OpenVLA-7B on a GPU: steps per second, time per stage, peak memory, batched throughput.

A full-size OpenVLA (DINOv2 ViT-L + SigLIP So400m, Llama-2 7B; 7.5B parameters) with random weights
made on the device (nothing downloaded; :func:`vla_ros.model.loading.random_model` quantizes them as
a real checkpoint is quantized), in bf16, 8-bit and 4-bit NF4. Per mode: one action step at batch 1
(median of ``--iterations``), its stages (vision encoder + projector, LM prefill, each of the 7 decoded
tokens), peak GPU memory, and throughput at batch 1 / 4 / 16. One table at the end.

    bash scripts/with_env.sh python benchmarks/bench_gpu.py            # a GPU machine; < 8 min on an H100
    bash scripts/with_env.sh python benchmarks/bench_gpu.py --reduced  # a tiny model on the CPU (tests)

Random weights decode different tokens from a trained model's, but the work per step is the same:
every step decodes exactly 7 tokens with a KV cache, whatever they are.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import time
from dataclasses import dataclass, field

import torch

from vla_ros.model.configuration_openvla import OpenVLAConfig
from vla_ros.model.loading import random_model
from vla_ros.model.tiny import PRESETS, tiny_config

PROMPT_TOKENS = 20  # "In: What action should the robot take to pick up the red block?\nOut: " is 20
ACTION_TOKENS = 7
MODES = (("bf16", "none"), ("bf16", "8bit"), ("bf16", "4bit-nf4"))
BATCHES = (1, 4, 16)

# openvla/openvla-7b's config.json, as far as the architecture goes (LlamaConfig's defaults are Llama-2 7B).
OPENVLA_7B = {
    "vision_backbone_id": "dinosiglip-vit-so-224px",
    "llm_backbone_id": "llama2-7b-pure",
    "image_sizes": [224, 224],
    "timm_model_ids": ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"],
    "timm_override_act_layers": [None, None],
    "use_fused_vision_backbone": True,
    "text_config": {"model_type": "llama", "pad_token_id": 32000, "vocab_size": 32064},
    "n_action_bins": 256,
}


@dataclass
class ModeResult:
    mode: str
    step_s: float = float("nan")
    vision_s: float = float("nan")
    prefill_s: float = float("nan")
    token_s: list[float] = field(default_factory=list)
    peak_gib: float = float("nan")
    throughput: dict[int, float] = field(default_factory=dict)
    error: str = ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inputs(batch: int, image_px: int, device: torch.device, dtype: torch.dtype):
    generator = torch.Generator().manual_seed(batch)
    pixel_values = torch.randn(batch, 6, image_px, image_px, generator=generator).to(device, dtype)
    input_ids = torch.randint(1000, 30000, (batch, PROMPT_TOKENS), generator=generator)
    input_ids[:, 0] = 1  # BOS
    return pixel_values, input_ids.to(device)


def _profile_step(model, pixel_values, input_ids, device) -> tuple[float, float, float, list[float]]:
    """(step, vision, prefill, per-token) seconds of one batch-1 action step."""
    vision_runs = []
    for _ in range(2):  # the faster of two: one pause of a shared machine would eat the prefill
        _sync(device)
        start = time.perf_counter()
        with torch.inference_mode():
            model.embed_image(pixel_values)
        _sync(device)
        vision_runs.append(time.perf_counter() - start)
    vision_s = min(vision_runs)
    marks: list[float] = []

    def mark(_step: int) -> None:
        _sync(device)
        marks.append(time.perf_counter())

    _sync(device)
    start = time.perf_counter()
    model.generate_action_tokens(pixel_values, input_ids, ACTION_TOKENS, on_token=mark)
    step_s = marks[-1] - start
    # The first mark closes the vision encoder and the prefill together; the vision time was measured
    # on its own just before.
    prefill_s = max(marks[0] - start - vision_s, 0.0)
    tokens = [b - a for a, b in itertools.pairwise(marks)]
    return step_s, vision_s, prefill_s, tokens


def run_mode(
    config: OpenVLAConfig, precision: str, quantization: str, device: torch.device, iterations: int
) -> ModeResult:
    result = ModeResult(mode=precision if quantization == "none" else f"{precision} + {quantization}")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    model = random_model(config, precision, quantization, device)
    dtype = model.dtype if model.dtype in (torch.float32, torch.float16, torch.bfloat16) else torch.bfloat16
    image_px = config.image_size_px
    pixel_values, input_ids = _inputs(1, image_px, device, dtype)
    _profile_step(model, pixel_values, input_ids, device)  # warm-up (kernels, allocator)
    runs = [_profile_step(model, pixel_values, input_ids, device) for _ in range(iterations)]
    result.step_s = statistics.median(r[0] for r in runs)
    result.vision_s = statistics.median(r[1] for r in runs)
    result.prefill_s = statistics.median(r[2] for r in runs)
    result.token_s = [statistics.median(r[3][i] for r in runs) for i in range(ACTION_TOKENS - 1)]
    if device.type == "cuda":
        result.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
    for batch in BATCHES:
        pixel_values, input_ids = _inputs(batch, image_px, device, dtype)
        model.generate_action_tokens(pixel_values, input_ids, ACTION_TOKENS)  # warm-up at this size
        _sync(device)
        start = time.perf_counter()
        repeats = max(1, iterations // 2)
        for _ in range(repeats):
            model.generate_action_tokens(pixel_values, input_ids, ACTION_TOKENS)
        _sync(device)
        result.throughput[batch] = batch * repeats / (time.perf_counter() - start)
    del model
    gc.collect()
    return result


def print_table(results: list[ModeResult], device_name: str) -> None:
    print(f"\nOpenVLA action steps on {device_name} (batch 1 unless noted; median seconds)")
    header = (
        f"{'mode':<16} {'steps/s':>8} {'step':>8} {'vision':>8} {'prefill':>8} {'token':>8} "
        f"{'peak GiB':>9} " + " ".join(f"{f'b{b} st/s':>9}" for b in BATCHES) + f" {'b16/b1':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.error:
            print(f"{r.mode:<16} failed: {r.error}")
            continue
        token = statistics.mean(r.token_s) if r.token_s else float("nan")
        ratio = r.throughput[BATCHES[-1]] / r.throughput[1]
        print(
            f"{r.mode:<16} {1 / r.step_s:>8.2f} {r.step_s:>8.4f} {r.vision_s:>8.4f} {r.prefill_s:>8.4f} "
            f"{token:>8.4f} {r.peak_gib:>9.2f} "
            + " ".join(f"{r.throughput[b]:>9.2f}" for b in BATCHES)
            + f" {ratio:>7.2f}"
        )
    print("token: mean of the 6 KV-cached decoding steps after the prefill; each, per mode:")
    for r in results:
        if not r.error:
            print(f"  {r.mode:<16} " + " ".join(f"{t:.4f}" for t in r.token_s))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reduced", action="store_true", help="a tiny model on the CPU (checks the script)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    args = parser.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.reduced:
        config = tiny_config(PRESETS["tiny"])
    else:
        if device.type != "cuda":
            parser.error("the full-size benchmark needs a GPU (CUDA); --reduced runs a tiny model on the CPU")
        config = OpenVLAConfig.from_dict(OPENVLA_7B)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    results = []
    for precision, quantization in MODES:
        start = time.perf_counter()
        try:
            result = run_mode(config, precision, quantization, device, args.iterations)
        except Exception as exc:  # one mode failing (e.g. a bitsandbytes build) must not hide the others
            result = ModeResult(mode=f"{precision} + {quantization}", error=f"{type(exc).__name__}: {exc}")
        results.append(result)
        print(f"{result.mode}: done in {time.perf_counter() - start:.0f} s", flush=True)
    print_table(results, device_name)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
