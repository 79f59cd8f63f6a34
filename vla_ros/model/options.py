"""The names of the model's run options, without the model: what a command line offers before it has
any reason to import torch (``vla-ros --help`` starts in well under a second because of this).

The default precision lives here and only here: the policy node, ``vla-ros predict``, ``serve``,
``eval-bag``, ``replay-bag``, ``sim``, ``sim-eval``, ``study``, the demo and the Python API
(:class:`~vla_ros.policy.runtime.PolicyConfig`, :func:`~vla_ros.model.loading.load_checkpoint`) all
default to :data:`DEFAULT_PRECISION` and turn ``auto`` into a dtype with :func:`resolve_precision`.
"""

from __future__ import annotations

from vla_ros.errors import UserInputError

PRECISION_NAMES = ("fp32", "bf16", "fp16")
AUTO_PRECISION = "auto"
PRECISION_CHOICES = (AUTO_PRECISION, *PRECISION_NAMES)
# bf16 where it is fast (a GPU with bf16 units: half the memory, the speed OpenVLA is run at), fp32
# everywhere else: on a CPU bf16 is fast only with bf16 instructions (AVX512-BF16, AMX) and much slower
# without them, and fp32 gives upstream OpenVLA's actions bit for bit (test_model_conformance.py).
DEFAULT_PRECISION = AUTO_PRECISION
# The one-line description of the choices (node parameter, launch argument) and the --help text.
PRECISION_CHOICES_TEXT = "auto (bf16 on a GPU with bf16 support, fp32 on the CPU) | fp32 | bf16 | fp16"
PRECISION_HELP = (
    "weights' dtype: auto (the default) is bf16 on a GPU with bf16 support and fp32 on the CPU (exact; "
    "bf16 is fast only on CPUs with bf16 instructions); or fp32 | bf16 | fp16. With --quantization, the "
    "compute dtype"
)
QUANTIZATIONS = ("none", "8bit", "4bit-nf4", "4bit-fp4")
DEFAULT_LORA_RANK = 32


class OptionError(UserInputError, ValueError):
    """A run option (precision, quantization, device) has a value that cannot be used here."""


def check_precision_and_quantization(precision: str, quantization: str) -> None:
    if precision not in PRECISION_CHOICES:
        raise OptionError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
    if quantization not in QUANTIZATIONS:
        raise OptionError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")


def check_device(device: object) -> str:
    """``device`` unchanged if torch can run on it here; an :class:`OptionError` saying what to use if
    not (a name torch does not know, ``cuda`` on a machine without a GPU, a GPU index past the last)."""
    import torch

    name = str(device)
    try:
        parsed = torch.device(name)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise OptionError(f"device {name!r} is not a torch device: use cpu, cuda, cuda:N or auto") from exc
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise OptionError(f"device {name!r}: torch sees no CUDA GPU on this machine; use cpu (or auto)")
        if parsed.index is not None and parsed.index >= count:
            raise OptionError(
                f"device {name!r}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}"
            )
    elif parsed.type != "cpu":
        backend = getattr(torch, parsed.type, None)
        available = getattr(backend, "is_available", None)
        if callable(available) and not available():
            raise OptionError(f"device {name!r}: torch has no {parsed.type} device here; use cpu (or auto)")
    return name


def resolve_device(device: str) -> str:
    """``auto``: cuda when torch sees a GPU, else cpu; any other name unchanged."""
    if str(device) != "auto":
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_precision(precision: str, device: object = "cpu") -> str:
    """``auto`` as the dtype name for ``device`` (see :data:`DEFAULT_PRECISION`); others unchanged."""
    if precision != AUTO_PRECISION:
        return precision
    kind = resolve_device(str(device)).split(":", 1)[0]
    if kind != "cuda":
        return "fp32"
    import torch

    # A GPU without bf16 units (before Ampere) only emulates it, slowly: fp32 there too.
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
