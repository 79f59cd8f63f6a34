"""The names of the model's run options, without the model: what a command line offers before it has
any reason to import torch (``vla-ros --help`` starts in well under a second because of this).

The default precision lives here and only here: the policy node, ``vla-ros predict``, ``serve``,
``eval-bag``, ``replay-bag``, ``sim``, ``sim-eval``, ``study``, the demo and the Python API
(:class:`~vla_ros.policy.runtime.PolicyConfig`, :func:`~vla_ros.model.loading.load_checkpoint`) all
default to :data:`DEFAULT_PRECISION` and turn ``auto`` into a dtype with :func:`resolve_precision`.
"""

from __future__ import annotations

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
