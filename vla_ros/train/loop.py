"""Behaviour cloning of OpenVLA from rosbags: the training loop, read top to bottom as nanoGPT's.

The recipe is upstream's fine-tuning recipe: cross-entropy on the 7 action tokens and the closing EOS
only (prompt and image positions carry IGNORE_INDEX; the LM head does not even run on them), AdamW,
linear warm-up then cosine decay, gradient accumulation and clipping, seeded. Modes: ``full`` (every
weight; for the small models), ``lora`` (peft, all linear layers but the LM head, r=32,
alpha=min(r, 16): upstream's defaults), ``qlora`` (the same adapter on a 4-bit NF4 base). Where the
pieces live: :mod:`.config` (every option), :mod:`.data` (examples and augmentation), :mod:`.model`
(what is trained), :mod:`.objectives` (the losses), :mod:`.checkpoints` (what is written).

Outputs under ``--out``:
    checkpoint/            full mode: official layout, loads with load_checkpoint / VLAPolicy
                           (``--checkpoint-out`` puts it elsewhere)
    adapter/               lora/qlora: adapter_config.json + adapter_model.safetensors +
                           dataset_statistics.json (VLAPolicy(adapter_dir=...) un-normalises with it)
    merged/                lora/qlora with --export-merged: base + adapter folded, official layout
    training_state/        resume point: trainable weights and AdamW state (safetensors), state.json
    dataset_statistics.json, cleaning_report.json, metrics.jsonl, train_config.json

Ctrl-C once finishes the current step, saves and exports; twice aborts (outputs stay whole).

Multi-GPU: the loop runs under ``torchrun`` or ``accelerate launch`` (which set ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``): each process takes its share of every batch, gradients are averaged by
DistributedDataParallel, and only rank 0 evaluates and writes. For example::

    torchrun --nproc_per_node 8 -m vla_ros.cli train --bags demos/ --base openvla-7b --mode lora \\
        --out runs/lora --batch-size 16 --device cuda

``--batch-size`` is per process; the effective batch is batch_size x grad_accum x processes. Only the
single-process path is tested here (CPU).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from vla_ros.data.dataset import TARGET_MASK, Episode, compute_dataset_statistics, load_episodes
from vla_ros.model.action_tokenizer import ActionStatistics, ActionTokenizer
from vla_ros.model.modeling_openvla import OpenVLAOutput
from vla_ros.train.checkpoints import _write_json, export_model, load_training_state, save_training_state
from vla_ros.train.config import TrainConfig, TrainingError
from vla_ros.train.data import ActionTokenDataset, expand_bags, mirror_episode, split_episodes
from vla_ros.train.model import build_model, core_model, trainable_parameters
from vla_ros.train.objectives import (
    Objective,
    PatchPositionObjective,
    TargetAttentionObjective,
    action_token_loss,
)

# ----------------------------------------------------------------------------------------------------------
# Metrics


@dataclass
class BatchMetrics:
    """Sums over action tokens / steps, so batches of any size combine exactly."""

    loss_sum: float = 0.0
    labelled: int = 0
    correct_action_tokens: int = 0
    action_tokens: int = 0
    l1_sum: float = 0.0
    steps: int = 0

    def add(self, other: BatchMetrics) -> None:
        for name in asdict(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}loss": self.loss_sum / max(self.labelled, 1),
            f"{prefix}action_token_accuracy": self.correct_action_tokens / max(self.action_tokens, 1),
            f"{prefix}action_l1": self.l1_sum / max(self.steps, 1),
        }


def batch_metrics(
    out: OpenVLAOutput,
    action_tokenizer: ActionTokenizer,
    statistics: ActionStatistics,
    true_actions: np.ndarray,
) -> BatchMetrics:
    """Token accuracy and L1 (mean over dimensions, raw units) of the greedy decoded actions.

    ``out.logits``/``out.labels`` are the model's labelled positions in row-major order: per example
    the action tokens and then EOS; ``out.loss`` is their mean cross-entropy.
    """
    logits, targets, loss, action_dim = out.logits.detach(), out.labels, out.loss, statistics.action_dim
    per_example = action_dim + 1
    b = targets.shape[0] // per_example
    if b * per_example != targets.shape[0]:
        raise TrainingError("every example must label exactly the action tokens and EOS")
    predicted = logits.argmax(dim=-1).view(b, per_example)[:, :action_dim].cpu().numpy()
    expected = targets.view(b, per_example)[:, :action_dim].cpu().numpy()
    decoded = statistics.unnormalize(action_tokenizer.decode(predicted))
    return BatchMetrics(
        loss_sum=float(loss.detach()) * targets.shape[0],
        labelled=int(targets.shape[0]),
        correct_action_tokens=int((predicted == expected).sum()),
        action_tokens=int(expected.size),
        l1_sum=float(np.abs(decoded - true_actions).mean(axis=1).sum()),
        steps=b,
    )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: ActionTokenDataset,
    batch_size: int,
    max_steps: int | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Held-out loss, action-token accuracy and L1 of the decoded actions (centre crops)."""
    was_training = model.training
    model.eval()
    indices = np.arange(len(dataset))
    if max_steps is not None and len(indices) > max_steps:
        indices = np.linspace(0, len(dataset) - 1, max_steps).round().astype(np.int64)
    total = BatchMetrics()
    chunks = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="held-out eval", unit="batch", leave=False)
    for chunk in chunks:
        batch = dataset.batch(chunk)
        out = core_model(model)(
            batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["labels"]
        )
        true = np.stack([dataset.action(int(i)) for i in chunk])
        total.add(batch_metrics(out, dataset.action_tokenizer, dataset.statistics, true))
    model.train(was_training)
    return total.as_dict("val_")


# ----------------------------------------------------------------------------------------------------------
# Schedule


def learning_rate_at(step: int, config: TrainConfig, total_steps: int) -> float:
    """Linear warm-up to ``learning_rate``, then cosine decay to ``min_lr_ratio * learning_rate``."""
    peak = config.learning_rate
    if config.warmup_steps > 0 and step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    span = max(1, total_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = peak * config.min_lr_ratio
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))


# ----------------------------------------------------------------------------------------------------------
# Distributed (torchrun / accelerate launch)


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(config: TrainConfig) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if config.device.startswith("cuda"):
        config.device = f"cuda:{info.local_rank}"
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group("nccl" if config.device.startswith("cuda") else "gloo")
    return info


# ----------------------------------------------------------------------------------------------------------
# The loop


class _StopFlag:
    """First Ctrl-C: finish the current step, save, stop. Second: abort at once (outputs stay whole)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _StopFlag:
        if hasattr(signal, "SIGINT") and _in_main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: finishing this step and saving (Ctrl-C again to abort)", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@dataclass
class TrainResult:
    step: int
    total_steps: int
    metrics: list[dict]
    outputs: list[Path]
    interrupted: bool
    train_steps: int  # dataset steps (transitions) used for training
    heldout_steps: int
    wall_time_s: float


def train(config: TrainConfig, resume: bool = False, stop_after_steps: int | None = None) -> TrainResult:
    """Run behaviour cloning as configured. ``stop_after_steps`` ends this call early (as an
    interrupt would: state saved, outputs exported) without changing the schedule."""
    start_time = time.perf_counter()
    dist_info = init_distributed(config)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    config.out.mkdir(parents=True, exist_ok=True)

    def say(*parts: object) -> None:
        if dist_info.is_main:
            print(*parts, flush=True)  # flushed: the log is often a file next to tqdm's stderr

    # --- data: episodes, held-out split, normalisation statistics --------------------------------
    train_eps, val_eps, norm_stats, statistics = _load_data(config, dist_info, say)
    bundle = build_model(config)
    model = bundle.model
    supervise_attention = config.target_attention_weight > 0
    if supervise_attention and not any(
        m is not None for e in train_eps for m in e.step_data.get(TARGET_MASK, [])
    ):
        raise TrainingError(
            f"--target-attention-weight needs target masks on {config.topics.target_mask!r}; none of the "
            "training steps has one (record the bags with this version's record-demos)"
        )
    make = dict(
        image_processor=bundle.image_processor,
        prompt_tokenizer=bundle.prompt_tokenizer,
        action_tokenizer=bundle.action_tokenizer,
        statistics=statistics,
        seed=config.seed,
    )
    grid = tuple(int(n) for n in core_model(model).vision_backbone.featurizer.patch_embed.grid_size)
    train_set = ActionTokenDataset(
        train_eps,
        train=config.random_crop or config.mirror_augment,
        mirror=config.mirror_augment,
        random_crop=config.random_crop,
        target_grid=grid if supervise_attention else None,
        **make,
    )
    val_set = ActionTokenDataset(val_eps, train=False, **make) if val_eps else None
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in trainable_parameters(model).values())
    say(
        f"data: {len(train_eps)} training episodes ({len(train_set)} steps), {len(val_eps)} held out "
        f"({len(val_set) if val_set else 0} steps); model: {n_params / 1e6:.2f}M parameters, "
        f"{n_train / 1e6:.3f}M trainable ({100 * n_train / n_params:.2f}%), mode {config.mode}"
    )

    # --- objectives, optimiser and schedule -------------------------------------------------------
    objectives: list[Objective] = []
    if config.patch_position_weight > 0:
        objectives.append(PatchPositionObjective(model, config.patch_position_weight))
    if supervise_attention:
        objectives.append(
            TargetAttentionObjective(model, config.target_attention_weight, config.target_attention_heads)
        )
    extra = {name: p for o in objectives for name, p in o.parameters.items()}
    params = list(trainable_parameters(model).values()) + list(extra.values())
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
    )
    global_batch = config.batch_size * config.grad_accum * dist_info.world_size
    steps_per_epoch = max(1, len(train_set) // global_batch)
    total_steps = config.max_steps if config.max_steps is not None else config.epochs * steps_per_epoch
    step, metrics_log = 0, []
    if resume:
        step, metrics_log = load_training_state(config, model, optimizer, extra)
        say(f"resumed at step {step}/{total_steps}")
    # The OpenVLA module itself (LoRA layers sit inside it), or DDP around the model under torchrun.
    forward: torch.nn.Module = core_model(model)
    if dist_info.world_size > 1:
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist_info.local_rank] if config.device.startswith("cuda") else None
        )
    outputs_wanted = {
        "output_image_embeddings": any(o.output_image_embeddings for o in objectives),
        "output_attentions": any(o.output_attentions for o in objectives),
    }

    # --- the loop ---------------------------------------------------------------------------------
    bar = None
    if config.progress and dist_info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"train ({config.mode})", unit="step")
    running = BatchMetrics()
    interrupted = False
    stop_at = total_steps if stop_after_steps is None else min(total_steps, step + stop_after_steps)
    with _StopFlag() as stop:
        while step < stop_at:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            train_set.set_epoch(epoch)
            order = np.random.default_rng([config.seed, epoch]).permutation(len(train_set))
            lr = learning_rate_at(step, config, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for micro in range(config.grad_accum):
                offset = (in_epoch * config.grad_accum + micro) * dist_info.world_size + dist_info.rank
                chunk = order[offset * config.batch_size : (offset + 1) * config.batch_size]
                batch = train_set.batch(chunk)
                out = forward(
                    batch["pixel_values"],
                    batch["input_ids"],
                    batch["attention_mask"],
                    batch["labels"],
                    **outputs_wanted,
                )
                loss = action_token_loss(
                    out.logits, out.labels, bundle.action_tokenizer.token_id_range, config.bin_smoothing
                )
                for objective in objectives:
                    loss = loss + objective.weight * objective.loss(batch, out)
                (loss / config.grad_accum).backward()
                true = np.stack([train_set.action(int(i)) for i in chunk])
                running.add(batch_metrics(out, bundle.action_tokenizer, statistics, true))
            if extra and dist_info.world_size > 1:
                for p in extra.values():  # the heads are outside DDP: average their gradients by hand
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= dist_info.world_size
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if bar is not None:
                shown = running.as_dict("")
                bar.update(1)
                bar.set_postfix(
                    loss=f"{shown['loss']:.3f}", acc=f"{shown['action_token_accuracy']:.3f}", lr=f"{lr:.2e}"
                )
            end_of_epoch = step % steps_per_epoch == 0 or step == total_steps
            if end_of_epoch and dist_info.is_main:
                entry = {"step": step, "epoch": step / steps_per_epoch, "lr": lr, **running.as_dict("train_")}
                for objective in objectives:
                    entry.update(objective.metrics())
                if val_set is not None:
                    entry.update(
                        evaluate(model, val_set, config.batch_size, config.eval_max_steps, config.progress)
                    )
                entry["wall_time_s"] = time.perf_counter() - start_time
                metrics_log.append(entry)
                say(
                    " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items())
                )
                with open(config.out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(entry) + "\n")
                running = BatchMetrics()
            periodic = config.save_every_steps and step % config.save_every_steps == 0
            if dist_info.is_main and (end_of_epoch or periodic) and step < stop_at:
                save_training_state(config, model, optimizer, step, total_steps, metrics_log, extra)
            if stop.requested:
                interrupted = True
                break
    if bar is not None:
        bar.close()
    for objective in objectives:
        objective.close()  # the exported model is the plain OpenVLA one

    outputs: list[Path] = []
    if dist_info.is_main:
        save_training_state(config, model, optimizer, step, total_steps, metrics_log, extra)
        outputs = export_model(config, bundle, norm_stats)
        say("wrote " + ", ".join(str(p) for p in outputs))
    return TrainResult(
        step=step,
        total_steps=total_steps,
        metrics=metrics_log,
        outputs=outputs,
        interrupted=interrupted,
        train_steps=len(train_set),
        heldout_steps=len(val_set) if val_set else 0,
        wall_time_s=time.perf_counter() - start_time,
    )


def _load_data(
    config: TrainConfig, dist_info: DistInfo, say
) -> tuple[list[Episode], list[Episode], dict, ActionStatistics]:
    """Cleaned episodes split into training and held-out ones, and the training set's statistics
    (written with the cleaning report and the config)."""
    episodes, report = load_episodes(
        expand_bags(config.bags),
        config.topics,
        config.sync,
        config.cleaning,
        progress=config.progress and dist_info.is_main,
        # Random access to every step's frames, at a thirtieth of the memory (PackedImage).
        pack_images=True,
    )
    say(report.summary())
    train_eps, val_eps = split_episodes(
        episodes, config.heldout_fraction, config.heldout_episodes, config.seed
    )
    if not train_eps:
        raise TrainingError("no training episodes left after cleaning; see the cleaning report")
    # With mirroring, the statistics cover the mirrored actions too (else their tokens would clip).
    stats = compute_dataset_statistics(
        train_eps + [mirror_episode(e, flip_images=False) for e in train_eps]
        if config.mirror_augment
        else train_eps
    )
    norm_stats = {config.dataset_name: stats}
    if dist_info.is_main:
        _write_json(config.out / "dataset_statistics.json", norm_stats)
        _write_json(config.out / "cleaning_report.json", report.to_dict())
        _write_json(config.out / "train_config.json", config.to_json())
    return train_eps, val_eps, norm_stats, ActionStatistics.from_norm_stats(stats)
