"""The names of the model's run options, without the model: what a command line offers before it has
any reason to import torch (``vla-ros --help`` starts in well under a second because of this)."""

from __future__ import annotations

PRECISION_NAMES = ("fp32", "bf16", "fp16")
QUANTIZATIONS = ("none", "8bit", "4bit-nf4", "4bit-fp4")
DEFAULT_LORA_RANK = 32
