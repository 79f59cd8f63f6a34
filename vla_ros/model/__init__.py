"""OpenVLA without remote code: config, architecture, processors, action tokenizer, loading, LoRA.

Entry points: :func:`vla_ros.model.loading.load_checkpoint` (a checkpoint directory in the official
layout), :func:`vla_ros.model.tiny.make_tiny_checkpoint` (a small model of the same architecture),
and :class:`vla_ros.policy.runtime.VLAPolicy` (image + instruction -> Action).
"""

import logging


def _drop_hub_kernel_notice(record: logging.LogRecord) -> bool:
    # bitsandbytes (imported by peft as soon as either loads) offers an optional CPU 4-bit kernel that
    # it fetches from a model hub, and logs a warning on every start where it cannot. This package never
    # downloads at run time and bitsandbytes' built-in CPU path is what runs, so the notice says nothing
    # a user can act on.
    return not str(record.msg).startswith("Failed to load CPU gemm_4bit_forward from kernels-community")


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_drop_hub_kernel_notice)
