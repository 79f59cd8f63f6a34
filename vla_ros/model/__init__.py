"""OpenVLA without remote code: config, architecture, processors, action tokenizer, loading, LoRA.

Entry points: :func:`vla_ros.model.loading.load_checkpoint` (a checkpoint directory in the official
layout), :func:`vla_ros.model.tiny.make_tiny_checkpoint` (a small model of the same architecture),
and :class:`vla_ros.policy.runtime.VLAPolicy` (image + instruction -> Action).
"""
