"""LoRA adapters (peft) on an OpenVLA model: create, save, load, switch, merge.

Module names are the official checkpoint's, so adapter directories written here and those written
by upstream's fine-tuning script (peft on ``OpenVLAForActionPrediction``) address the same layers.
"""

from __future__ import annotations

from pathlib import Path

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from vla_ros.errors import UserInputError
from vla_ros.model.modeling_openvla import OpenVLAForActionPrediction
from vla_ros.model.options import DEFAULT_LORA_RANK


class AdapterError(UserInputError, RuntimeError):
    pass


def all_linear_target_modules(model: nn.Module) -> list[str]:
    """Suffixes of every linear layer except the LM head, as peft's ``"all-linear"`` selects them
    for upstream's model (peft leaves out a PreTrainedModel's output layer)."""
    names = set()
    for name, module in model.named_modules():
        if ".lora_" in name or not (
            isinstance(module, nn.Linear) or type(module).__name__ in ("Linear8bitLt", "Linear4bit")
        ):
            continue
        name = name.removesuffix(".base_layer")  # a layer that already carries LoRA
        if not name.endswith("lm_head"):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def lora_config(
    model: nn.Module,
    rank: int = DEFAULT_LORA_RANK,
    alpha: int | None = None,
    dropout: float = 0.0,
    target_modules: list[str] | None = None,
) -> LoraConfig:
    """Upstream's fine-tuning defaults: all linear layers, r=32, alpha=min(r, 16), gaussian init."""
    return LoraConfig(
        r=rank,
        lora_alpha=min(rank, 16) if alpha is None else alpha,
        lora_dropout=dropout,
        target_modules=target_modules or all_linear_target_modules(model),
        init_lora_weights="gaussian",
    )


def add_lora_adapter(
    model: OpenVLAForActionPrediction | PeftModel,
    adapter_name: str = "default",
    config: LoraConfig | None = None,
) -> PeftModel:
    """A new trainable adapter; the base weights are frozen by peft."""
    if isinstance(model, PeftModel):
        model.add_adapter(adapter_name, config or lora_config(base_model(model)))
        model.set_adapter(adapter_name)
        return model
    return get_peft_model(model, config or lora_config(model), adapter_name=adapter_name)


def load_adapter(
    model: OpenVLAForActionPrediction | PeftModel, adapter_dir: str | Path, adapter_name: str = "default"
) -> PeftModel:
    """Attach an adapter directory (adapter_config.json + adapter_model.safetensors), make it active."""
    adapter_dir = Path(adapter_dir)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (adapter_dir / name).is_file():
            raise AdapterError(
                f"{adapter_dir} has no {name}; an adapter directory is what PeftModel.save_pretrained writes"
                + (" (pickle adapter_model.bin files are not loaded)" if name.endswith("safetensors") else "")
            )
    if isinstance(model, PeftModel):
        model.load_adapter(str(adapter_dir), adapter_name=adapter_name, is_trainable=False)
        model.set_adapter(adapter_name)
        return model
    return PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=adapter_name, is_trainable=False)


def save_adapter(model: PeftModel, directory: str | Path, adapter_name: str | None = None) -> Path:
    """Write one adapter so that ``directory`` itself holds its config and safetensors."""
    import shutil
    import tempfile

    adapter_name = adapter_name or model.active_adapter
    set_active_adapter(model, adapter_name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        model.save_pretrained(tmp, selected_adapters=[adapter_name], safe_serialization=True)
        src = Path(tmp) if adapter_name == "default" else Path(tmp) / adapter_name
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.move(str(src / name), str(directory / name))
    return directory


def set_active_adapter(model: PeftModel, adapter_name: str) -> None:
    if adapter_name not in model.peft_config:
        raise AdapterError(
            f"no adapter named {adapter_name!r}; loaded: {', '.join(sorted(model.peft_config))}"
        )
    model.set_adapter(adapter_name)


def merge_adapter(model: PeftModel, adapter_name: str | None = None) -> OpenVLAForActionPrediction:
    """Fold one adapter (the active one by default) into the base weights; returns the plain model."""
    if adapter_name is not None:
        set_active_adapter(model, adapter_name)
    return model.merge_and_unload(adapter_names=[model.active_adapter])


def base_model(model: OpenVLAForActionPrediction | PeftModel) -> OpenVLAForActionPrediction:
    """The OpenVLA module itself; with adapters attached its layers carry the active LoRA weights."""
    if isinstance(model, PeftModel):
        return model.base_model.model
    return model
