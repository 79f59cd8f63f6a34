"""Load and save OpenVLA checkpoints in the official Hugging Face directory layout.

A checkpoint directory holds ``config.json``, ``model.safetensors`` or safetensors shards with
``model.safetensors.index.json``, ``tokenizer.json`` (+ ``tokenizer_config.json`` /
``special_tokens_map.json``), ``preprocessor_config.json`` and, for fine-tuned models,
``dataset_statistics.json``. The model is built from ``config.json`` with empty (meta) parameters,
the safetensors headers are checked against it (names, shapes, dtypes) before a byte is read, and
only then are tensors materialised one by one in the requested precision, quantizing the chosen
linear layers with bitsandbytes as they arrive. Pickle files are never opened and no code from the
checkpoint directory is run.

Quantized models are finished objects: move them by loading with ``device=...``, never with
``.to()`` (bitsandbytes parameters do not survive a dtype change).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from vla_ros.errors import UserInputError
from vla_ros.model.action_tokenizer import (
    ActionStatistics,
    ActionStatisticsError,
    ActionTokenizer,
    select_unnorm_key,
)
from vla_ros.model.configuration_openvla import OpenVLAConfig
from vla_ros.model.modeling_openvla import OpenVLAForActionPrediction
from vla_ros.model.options import (
    DEFAULT_PRECISION,
    PRECISION_NAMES,
    check_device,
    check_precision_and_quantization,
    resolve_precision,
)
from vla_ros.model.processing import ImageProcessor, PromptTokenizer

log = logging.getLogger(__name__)

PRECISIONS: dict[str, torch.dtype] = dict(
    zip(PRECISION_NAMES, (torch.float32, torch.bfloat16, torch.float16), strict=True)
)
SAFETENSORS_INDEX = "model.safetensors.index.json"
SINGLE_SAFETENSORS = "model.safetensors"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "added_tokens.json",
)
_FLOAT_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


class CheckpointError(UserInputError, RuntimeError):
    """A checkpoint directory cannot be loaded as OpenVLA; the message names the offending part."""


class MissingCheckpointFileError(CheckpointError, FileNotFoundError):
    pass


class WeightMismatchError(CheckpointError):
    """The weights' names or shapes do not match the architecture described by config.json."""


class WeightDtypeError(CheckpointError):
    pass


class QuantizedModelError(CheckpointError):
    """An operation that bitsandbytes-quantized models do not support (save, .to(), ...)."""


@dataclass(frozen=True)
class TensorHeader:
    shape: tuple[int, ...]
    dtype: str
    file: Path


@dataclass
class LoadedCheckpoint:
    """Everything a policy needs from one checkpoint directory."""

    model: OpenVLAForActionPrediction
    config: OpenVLAConfig
    image_processor: ImageProcessor
    prompt_tokenizer: PromptTokenizer
    action_tokenizer: ActionTokenizer
    norm_stats: dict
    directory: Path
    precision: str = ""  # the dtype the weights were loaded in (``auto`` resolved), e.g. "bf16"

    def action_statistics(self, unnorm_key: str | None) -> tuple[str, ActionStatistics]:
        key = select_unnorm_key(self.norm_stats, unnorm_key)
        try:
            return key, ActionStatistics.from_norm_stats(self.norm_stats[key])
        except ActionStatisticsError as exc:
            raise ActionStatisticsError(
                f"{self.directory}: action statistics {key!r} (dataset_statistics.json or config.json "
                f"norm_stats): {exc}"
            ) from exc


# --- reading --------------------------------------------------------------------------------------
def _require_file(directory: Path, name: str, hint: str) -> Path:
    path = directory / name
    if not path.is_file():
        raise MissingCheckpointFileError(f"{directory} has no {name}: {hint}")
    return path


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint, from the index when there is one."""
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if not (directory / n).is_file()]
        if missing:
            raise MissingCheckpointFileError(
                f"{SAFETENSORS_INDEX} in {directory} names shards that are not there: {', '.join(missing)}; "
                "the download is incomplete"
            )
        return [directory / n for n in names]
    if (directory / SINGLE_SAFETENSORS).is_file():
        return [directory / SINGLE_SAFETENSORS]
    pickles = sorted(p.name for p in directory.glob("*.bin")) + sorted(p.name for p in directory.glob("*.pt"))
    hint = (
        f" It has pickle weights ({', '.join(pickles)}), which are never loaded: convert them to safetensors "
        "in a trusted environment."
        if pickles
        else ""
    )
    raise MissingCheckpointFileError(
        f"{directory} has neither {SAFETENSORS_INDEX} nor {SINGLE_SAFETENSORS}.{hint}"
    )


def read_weight_headers(directory: Path) -> dict[str, TensorHeader]:
    """Names, shapes and dtypes of all tensors, from the safetensors headers only (no data read)."""
    headers: dict[str, TensorHeader] = {}
    for path in weight_files(directory):
        try:
            with safe_open(str(path), framework="pt") as f:
                for name in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    sl = f.get_slice(name)
                    if name in headers:
                        raise WeightMismatchError(
                            f"tensor {name} appears in both {headers[name].file.name} and {path.name}"
                        )
                    headers[name] = TensorHeader(tuple(sl.get_shape()), sl.get_dtype(), path)
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(
                f"{path} is not a readable safetensors file ({exc}): it is truncated or corrupt; "
                "download or copy it again"
            ) from exc
    return headers


def _summarise(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_weights(expected: dict[str, tuple[int, ...]], headers: dict[str, TensorHeader]) -> None:
    """Refuse a checkpoint whose tensor names, shapes or dtypes differ from the model's."""
    missing = sorted(set(expected) - set(headers))
    unexpected = sorted(set(headers) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing weights ({len(missing)}): {_summarise(missing)}")
    if unexpected:
        problems.append(f"unexpected weights ({len(unexpected)}): {_summarise(unexpected)}")
    wrong_shape = [
        f"{n} checkpoint {list(headers[n].shape)} vs model {list(expected[n])}"
        for n in sorted(set(expected) & set(headers))
        if tuple(headers[n].shape) != tuple(expected[n])
    ]
    if wrong_shape:
        problems.append(f"shape mismatches ({len(wrong_shape)}): {_summarise(wrong_shape, 6)}")
    if problems:
        raise WeightMismatchError(
            "the safetensors do not match the architecture in config.json: "
            + "; ".join(problems)
            + ". Check that config.json belongs to these weights (text_config sizes, timm_model_ids, "
            "timm_model_kwargs)."
        )
    wrong_dtype = sorted(f"{n} ({h.dtype})" for n, h in headers.items() if h.dtype not in _FLOAT_DTYPES)
    if wrong_dtype:
        raise WeightDtypeError(
            f"weights must be float32, bfloat16 or float16; these are not: {_summarise(wrong_dtype)}. "
            "Pre-quantized checkpoints are not supported: load the float checkpoint with quantization=..."
        )


def load_norm_stats(directory: Path, config: OpenVLAConfig) -> dict:
    """Per-dataset statistics: config.json's ``norm_stats``, overridden by ``dataset_statistics.json``."""
    stats = dict(config.norm_stats or {})
    path = directory / "dataset_statistics.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path} is not valid JSON ({exc}); rewrite it or remove it") from exc
        if not isinstance(data, dict):
            raise CheckpointError(
                f"{path} holds a JSON {type(data).__name__}; it maps dataset names to their statistics"
            )
        stats.update(data)
    return stats


def build_empty_model(config: OpenVLAConfig) -> OpenVLAForActionPrediction:
    """The architecture with parameters on the meta device (no memory); buffers stay real."""
    with init_empty_weights(include_buffers=False):
        return OpenVLAForActionPrediction(config)


def _expected_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


# --- quantization ---------------------------------------------------------------------------------
def quantized_linear_names(model: OpenVLAForActionPrediction, vision: bool, projector: bool) -> list[str]:
    """Linear layers to quantize: the LM's (not lm_head, as transformers does) and optionally the rest."""
    prefixes = ["language_model.model."]
    if vision:
        prefixes.append("vision_backbone.")
    if projector:
        prefixes.append("projector.")
    return [
        name
        for name, module in model.named_modules()
        if type(module) is nn.Linear and any(name.startswith(p) for p in prefixes)
    ]


_BNB_CPU_PACK_BLOCK = 32
_BNB_BLOCKSIZE = 64  # bitsandbytes' default 4-bit quantization block


def _replace_with_bnb(
    model: nn.Module, names: list[str], quantization: str, compute_dtype: torch.dtype
) -> None:
    import bitsandbytes as bnb

    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        old: nn.Linear = getattr(parent, attr)
        with torch.device("meta"):
            if quantization == "8bit":
                new = bnb.nn.Linear8bitLt(
                    old.in_features,
                    old.out_features,
                    bias=old.bias is not None,
                    has_fp16_weights=False,
                    threshold=6.0,
                )
            else:
                new = bnb.nn.Linear4bit(
                    old.in_features,
                    old.out_features,
                    bias=old.bias is not None,
                    compute_dtype=compute_dtype,
                    compress_statistics=True,
                    quant_type=quantization.split("-")[1],
                )
                # On CPUs with AVX512-BF16, bitsandbytes repacks a 4-bit weight for its fast CPU kernel
                # at the first inference call. That repacking needs out_features % 32 == 0 and
                # in_features % blocksize (64) == 0, and crashes otherwise (bitsandbytes 0.50.2, e.g.
                # the tiny models' 344-wide MLP). Other layers keep the generic 4-bit path.
                if old.out_features % _BNB_CPU_PACK_BLOCK or old.in_features % _BNB_BLOCKSIZE:
                    new.support_avx512bf16_for_cpu = False
        new.requires_grad_(False)
        setattr(parent, attr, new)


def is_quantized(model: nn.Module) -> bool:
    return any(type(p).__module__.startswith("bitsandbytes") for p in model.parameters())


def _guard_to(model: nn.Module) -> None:
    """Make ``model.to(...)`` on a quantized model fail loudly instead of corrupting weights."""

    def refuse_to(*args, **kwargs):
        raise QuantizedModelError(
            "this model is bitsandbytes-quantized and cannot be moved or cast with .to(); load it again "
            "with load_checkpoint(..., device=..., precision=...) instead"
        )

    model.to = refuse_to  # type: ignore[method-assign]
    model.half = refuse_to  # type: ignore[method-assign]
    model.float = refuse_to  # type: ignore[method-assign]


def _aligned(tensor: torch.Tensor) -> torch.Tensor:
    """A copy at a 64-byte boundary when ``tensor`` is not at one (safetensors data sits at the
    header's offset). On AVX-512 CPUs an unaligned weight takes another matmul path that rounds
    differently: the loaded model's outputs then differ in the last bit from the model that was saved,
    and runs are not bit-reproducible across checkpoints."""
    if tensor.device.type == "cpu" and tensor.data_ptr() % 64:
        return tensor.clone()
    return tensor


def _set_tensor(
    model: nn.Module, name: str, tensor: torch.Tensor, quantization: str, device: torch.device
) -> None:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name)
    if attr == "weight" and type(module).__module__.startswith("bitsandbytes"):
        import bitsandbytes as bnb

        if quantization == "8bit":
            param = bnb.nn.Int8Params(tensor, requires_grad=False, has_fp16_weights=False)
        else:
            param = bnb.nn.Params4bit(
                tensor,
                requires_grad=False,
                quant_type=module.weight.quant_type,
                compress_statistics=True,
                module=module,
            )
        module.weight = param.to(device)
        return
    old = module._parameters[attr]
    module._parameters[attr] = nn.Parameter(tensor.to(device), requires_grad=old.requires_grad)


# --- public API -----------------------------------------------------------------------------------
def load_checkpoint(
    directory: str | Path,
    precision: str = DEFAULT_PRECISION,
    quantization: str = "none",
    quantize_vision: bool = False,
    quantize_projector: bool = False,
    device: str | torch.device = "cpu",
) -> LoadedCheckpoint:
    """Load an OpenVLA checkpoint directory (official layout) for inference or fine-tuning.

    ``precision`` (fp32/bf16/fp16, or auto: bf16 on a GPU with bf16 support, fp32 elsewhere; see
    :mod:`vla_ros.model.options`) is the dtype of all unquantized weights and the 4-bit compute
    dtype. ``quantization`` (none/8bit/4bit-nf4/4bit-fp4) applies to the language model's linear
    layers, and to the vision backbone / projector when asked.
    """
    directory = Path(directory)
    if directory.is_file():
        raise MissingCheckpointFileError(
            f"{directory} is a file; a checkpoint is a directory (config.json, tokenizer.json, "
            "preprocessor_config.json, model.safetensors or sharded safetensors with their index)"
        )
    if not directory.is_dir():
        raise MissingCheckpointFileError(f"checkpoint directory {directory} does not exist")
    check_precision_and_quantization(precision, quantization)
    device = torch.device(check_device(device))
    precision = resolve_precision(precision, device)
    dtype = PRECISIONS[precision]

    config = OpenVLAConfig.from_json_file(
        _require_file(directory, "config.json", "it is not an OpenVLA checkpoint directory")
    )
    _require_file(directory, "tokenizer.json", "copy the tokenizer files of the base model into it")
    preprocessor = _require_file(
        directory, "preprocessor_config.json", "copy preprocessor_config.json of the base model into it"
    )
    image_processor = ImageProcessor.from_preprocessor_config(json.loads(preprocessor.read_text()))
    if image_processor.image_size_px != config.image_size_px:
        raise CheckpointError(
            f"preprocessor_config.json resizes to {image_processor.image_size_px} px but config.json's "
            f"image_sizes say {config.image_size_px}"
        )
    prompt_tokenizer = PromptTokenizer.from_dir(directory)
    if prompt_tokenizer.base_vocab_size > config.vocab_size:
        raise CheckpointError(
            f"tokenizer has {prompt_tokenizer.base_vocab_size} tokens but the model's vocabulary is "
            f"{config.vocab_size}; tokenizer and config.json are from different models"
        )

    headers = read_weight_headers(directory)
    model = build_empty_model(config)
    check_weights(_expected_shapes(model), headers)

    if quantization != "none":
        names = quantized_linear_names(model, quantize_vision, quantize_projector)
        _replace_with_bnb(model, names, quantization, dtype)
    by_file: dict[Path, list[str]] = {}
    for name, header in headers.items():
        by_file.setdefault(header.file, []).append(name)
    for path, names in by_file.items():
        with safe_open(str(path), framework="pt") as f:
            for name in names:
                _set_tensor(model, name, _aligned(f.get_tensor(name).to(dtype)), quantization, device)
    _finish(model, quantization, device)

    norm_stats = load_norm_stats(directory, config)
    action_tokenizer = ActionTokenizer(
        n_bins=config.n_action_bins,
        vocab_size=prompt_tokenizer.base_vocab_size,
    )
    return LoadedCheckpoint(
        model=model,
        config=config,
        image_processor=image_processor,
        prompt_tokenizer=prompt_tokenizer,
        action_tokenizer=action_tokenizer,
        norm_stats=norm_stats,
        directory=directory,
        precision=precision,
    )


def save_checkpoint(
    model: OpenVLAForActionPrediction,
    directory: str | Path,
    *,
    image_processor: ImageProcessor,
    tokenizer_dir: str | Path,
    norm_stats: dict | None = None,
    dtype: torch.dtype | None = None,
    max_shard_size_bytes: int = 4 * 1024**3,
) -> Path:
    """Write ``model`` in the official layout (config, shards + index, tokenizer, preprocessor, stats).

    Shards are written to a temporary directory next to ``directory`` and renamed into place, so an
    interrupted save leaves no half-written checkpoint.
    """
    if is_quantized(model):
        raise QuantizedModelError(
            "refusing to save a bitsandbytes-quantized model: save the float model (or merge the adapter "
            "into a float model) and quantize again when loading"
        )
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_size_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors" if len(shards) > 1 else SINGLE_SAFETENSORS
        save_file(shard, str(tmp / fname), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, fname))
    if len(shards) > 1:
        total = sum(t.numel() * t.element_size() for t in state.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (tmp / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2) + "\n")
    config = model.config
    saved_dtype = next(iter(state.values())).dtype
    config = config.replace(torch_dtype=_DTYPE_NAMES.get(saved_dtype, config.torch_dtype))
    config.save(tmp / "config.json")
    (tmp / "preprocessor_config.json").write_text(
        json.dumps(image_processor.to_preprocessor_config(), indent=2) + "\n"
    )
    tokenizer_dir = Path(tokenizer_dir)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            (tmp / name).write_bytes((tokenizer_dir / name).read_bytes())
    if norm_stats:
        (tmp / "dataset_statistics.json").write_text(json.dumps(norm_stats, indent=2) + "\n")
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old")
        _rmtree(old)
        os.replace(directory, old)
        os.replace(tmp, directory)
        _rmtree(old)
    else:
        os.replace(tmp, directory)
    log.info("saved checkpoint with %d tensors in %d shard(s) to %s", len(state), len(shards), directory)
    return directory


def _finish(model: nn.Module, quantization: str, device: torch.device) -> None:
    for module in model.modules():  # non-persistent buffers (rotary frequencies) were built on the CPU
        for key, buf in module._buffers.items():
            if buf is not None and buf.device != device:
                module._buffers[key] = buf.to(device)
    model.eval()
    if quantization != "none":
        _guard_to(model)


def random_model(
    config: OpenVLAConfig,
    precision: str = DEFAULT_PRECISION,
    quantization: str = "none",
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> OpenVLAForActionPrediction:
    """The architecture with random weights made on ``device`` and quantized as :func:`load_checkpoint`
    quantizes a real checkpoint: speed and memory of a full-size model with nothing to download
    (``benchmarks/bench_gpu.py``). Its actions mean nothing."""
    check_precision_and_quantization(precision, quantization)
    device = torch.device(check_device(device))
    dtype = PRECISIONS[resolve_precision(precision, device)]
    model = build_empty_model(config)
    shapes = _expected_shapes(model)
    if quantization != "none":
        _replace_with_bnb(model, quantized_linear_names(model, False, False), quantization, dtype)
    generator = torch.Generator(device=device).manual_seed(seed)
    for name, shape in shapes.items():
        if len(shape) == 1:  # norms and layer scales start at one, biases at zero
            tensor = torch.full(shape, 0.0 if name.endswith("bias") else 1.0, dtype=dtype, device=device)
        else:
            tensor = torch.randn(shape, generator=generator, device=device, dtype=dtype) * 0.02
        _set_tensor(model, name, tensor, quantization, device)
    _finish(model, quantization, device)
    return model


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
