"""What a run writes: the resume point and the deliverable, every file atomically.

Every file is written under a temporary name and renamed, so an interrupted run never leaves a
half-written output. ``training_state/`` holds the trainable weights (and any objective's
training-only head) and the AdamW state as safetensors, with the step and metrics in ``state.json``;
``--resume`` continues from it and ``vla-ros export-run`` exports it while the run goes on. The
deliverable is a checkpoint in the official layout (full mode) or an adapter (LoRA; optionally merged
into its base).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vla_ros.model import adapters
from vla_ros.model.loading import load_checkpoint, save_checkpoint
from vla_ros.train.config import TrainConfig, TrainingError
from vla_ros.train.model import ModelBundle, build_model, core_model, trainable_parameters

STATE_DIR = "training_state"


def _atomic_dir(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))


def _commit_dir(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp``; at every instant one complete version exists under some name."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """AdamW state as flat tensors (for safetensors) plus the JSON-able rest (param groups)."""
    state = optimizer.state_dict()
    tensors = {}
    for index, per_param in state["state"].items():
        for key, value in per_param.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{index}.{key}"] = tensor.detach().to("cpu").contiguous()
    return tensors, {"param_groups": state["param_groups"]}


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_training_state(
    config: TrainConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    total_steps: int,
    metrics: list[dict],
    extra: dict[str, torch.nn.Parameter] | None = None,
) -> Path:
    """Trainable weights (and ``extra``, training-only heads) + optimiser state (safetensors) + step and
    metrics (JSON), atomically."""
    final = config.out / STATE_DIR
    tmp = _atomic_dir(final)
    params = {**trainable_parameters(model), **(extra or {})}
    weights = {n: p.detach().to("cpu").contiguous() for n, p in params.items()}
    save_file(weights, str(tmp / "trainable.safetensors"))
    tensors, meta = optimizer_tensors(optimizer)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    _write_json(
        tmp / "state.json",
        {"step": step, "total_steps": total_steps, "optimizer": meta, "metrics": metrics},
    )
    _commit_dir(tmp, final)
    return final


def load_training_state(
    config: TrainConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, torch.nn.Parameter] | None = None,
) -> tuple[int, list[dict]]:
    """Restore weights and optimiser from ``out/training_state``; returns (step, metrics so far)."""
    state_dir = config.out / STATE_DIR
    if not (state_dir / "state.json").is_file():
        raise TrainingError(f"nothing to resume: {state_dir} has no state.json; start without --resume")
    state = json.loads((state_dir / "state.json").read_text())
    weights = load_file(str(state_dir / "trainable.safetensors"))
    params = {**trainable_parameters(model), **(extra or {})}
    if set(weights) != set(params):
        raise TrainingError(
            f"{state_dir} was saved from a different model or mode ({len(weights)} trainable tensors, this "
            f"run has {len(params)}); resume with the same --base/--init, --mode and extra objectives"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name].to(p.device))
    load_optimizer_tensors(optimizer, load_file(str(state_dir / "optimizer.safetensors")), state["optimizer"])
    return int(state["step"]), list(state.get("metrics", []))


def export_model(config: TrainConfig, bundle: ModelBundle, norm_stats: dict) -> list[Path]:
    """The deliverable: a checkpoint (full) or an adapter (+ merged checkpoint on request)."""
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[config.save_dtype]
    model = bundle.model
    if config.mode == "full":
        # Training saw 90%-area crops (random, or centred with --no-random-crop): the checkpoint records
        # it, so every entry point centre-crops this model without being told (PolicyConfig.center_crop).
        core_model(model).config.center_crop = True
        path = save_checkpoint(
            core_model(model),
            config.checkpoint_dir,
            image_processor=bundle.image_processor,
            tokenizer_dir=bundle.tokenizer_dir,
            norm_stats=norm_stats,
            dtype=dtype,
        )
        return [path]
    final = config.out / "adapter"
    tmp = _atomic_dir(final)
    adapters.save_adapter(model, tmp)
    _write_json(tmp / "dataset_statistics.json", norm_stats)
    _commit_dir(tmp, final)
    written = [final]
    if config.export_merged:
        written.append(export_merged(config, final, bundle, norm_stats, dtype))
    return written


def export_resume_point(run_dir: str | Path, dest: str | Path | None = None) -> tuple[int, list[Path]]:
    """Export what a run's resume point holds, as the end of the run would (checkpoint for full mode,
    adapter for LoRA); returns (step, written paths). Default ``dest``: ``RUN_DIR/step<N>``.

    The resume point is written every ``--save-every-steps``, so this is how to evaluate a run that
    is still training without stopping it, or an earlier point of a finished one that was copied away.
    The resume point is replaced atomically by the running trainer; the step is read before and after
    the weights so a replacement in between is noticed and the read repeated.
    """
    run = Path(run_dir)
    config_path = run / "train_config.json"
    if not config_path.is_file():
        raise TrainingError(f"{run} has no train_config.json: give the --out directory of a training run")
    state_dir = run / STATE_DIR

    def saved_step() -> int | None:
        try:
            return int(json.loads((state_dir / "state.json").read_text())["step"])
        except (OSError, ValueError, KeyError):
            return None

    weights, step = None, None
    for _ in range(6):
        before = saved_step()
        try:
            candidate = load_file(str(state_dir / "trainable.safetensors"))
        except Exception:  # missing while being replaced, or not a safetensors file: try again, then say so
            candidate = None
        if before is not None and candidate is not None and saved_step() == before:
            weights, step = candidate, before
            break
        time.sleep(0.5)
    if weights is None or step is None:
        raise TrainingError(
            f"{run} has no complete resume point ({STATE_DIR}/state.json and trainable.safetensors); a run "
            "writes one every --save-every-steps and when it stops"
        )
    config = replace(TrainConfig.from_json(json.loads(config_path.read_text())), progress=False)
    bundle = build_model(config)  # with out_dir = run: a fresh model finds its tokenizer there
    params = trainable_parameters(bundle.model)
    if not set(params) <= set(weights):
        raise TrainingError(
            f"{state_dir} does not hold this run's trainable weights ({len(set(params) - set(weights))} "
            "missing): was train_config.json changed after the run started?"
        )
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name].to(p.device))
    norm_stats = json.loads((run / "dataset_statistics.json").read_text())
    dest = Path(dest) if dest is not None else run / f"step{step}"
    # Full mode writes the checkpoint to dest; LoRA writes dest/adapter (and dest/merged on request).
    target = replace(config, out_dir=str(dest), checkpoint_out=str(dest) if config.mode == "full" else None)
    return step, export_model(target, bundle, norm_stats)


def export_merged(
    config: TrainConfig, adapter_dir: Path, bundle: ModelBundle, norm_stats: dict, dtype: torch.dtype
) -> Path:
    """Base (full precision, even for qlora) + adapter folded into plain weights, official layout."""
    loaded = load_checkpoint(config.base, precision="fp32")
    merged = adapters.merge_adapter(adapters.load_adapter(loaded.model, adapter_dir))
    stats = {**loaded.norm_stats, **norm_stats}
    return save_checkpoint(
        merged,
        config.out / "merged",
        image_processor=bundle.image_processor,
        tokenizer_dir=bundle.tokenizer_dir,
        norm_stats=stats,
        dtype=dtype,
    )
