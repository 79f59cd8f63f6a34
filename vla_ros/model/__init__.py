"""OpenVLA without remote code: config, architecture, processors, action tokenizer, loading, LoRA.

Entry points: :func:`vla_ros.model.loading.load_checkpoint` (a checkpoint directory in the official
layout), :func:`vla_ros.model.tiny.make_tiny_checkpoint` (a small model of the same architecture),
and :class:`vla_ros.policy.runtime.VLAPolicy` (image + instruction -> Action).
"""

import logging

# bitsandbytes notices that say nothing a user can act on, dropped at their loggers (installed with the
# model package, before peft or loading import bitsandbytes):
# - it offers an optional CPU 4-bit kernel that it fetches from a model hub and warns on every start where
#   it cannot; this package never downloads at run time and bitsandbytes' built-in CPU path runs instead;
# - LLM.int8 always multiplies in fp16 and logs that on every call for other input dtypes.
_BITSANDBYTES_NOTICES = {
    "bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward from kernels-community",
    "bitsandbytes.autograd._functions": "MatMul8bitLt: inputs will be cast",
}


def _notice_filter(prefix: str):
    return lambda record: not str(record.msg).startswith(prefix)


for _logger, _prefix in _BITSANDBYTES_NOTICES.items():
    logging.getLogger(_logger).addFilter(_notice_filter(_prefix))
