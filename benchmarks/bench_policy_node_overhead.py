"""Per-frame overhead of the policy node path, excluding the model forward pass.

For 640x480 rgb8 frames it times, side by side in one run:
  decode   sensor_msgs/Image -> RGB array (image_message_to_rgb, as the node: cv_bridge or image_codec)
  prepare  RGB array -> preprocessed pixel tensor + prompt ids (the model core's processor)
  publish  action -> TwistStamped + GripperCommand + ActionStep (the node's step_messages)
  step     the whole VLAPolicy.predict_action on the tiny model (prepare + forward + decode)
and prints p50/p95 in ms plus the share of (decode + prepare + publish) in the total step time.

    make build && bash scripts/with_env.sh python benchmarks/bench_policy_node_overhead.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from vla_ros.image_codec import image_converter, image_message_to_rgb
from vla_ros.model.tiny import make_tiny_checkpoint
from vla_ros.nodes.policy_node import OutputConvention, step_messages
from vla_ros.policy.runtime import PolicyConfig, VLAPolicy
from vla_ros.policy.worker import Frame, StepResult


def _timed(fn, iterations: int) -> np.ndarray:
    fn()  # warm-up
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return np.asarray(samples) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    msg = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
    msg.data = rgb.tobytes()
    instruction = "put the red gear in the left bin"

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = make_tiny_checkpoint(Path(tmp) / "tiny")
        policy = VLAPolicy(
            PolicyConfig(
                checkpoint_dir=checkpoint, precision="fp32", device="cpu", constrain_to_action_tokens=True
            )
        )
        decoded = image_message_to_rgb(msg)
        action = policy.predict_action(decoded, instruction)
        result = StepResult(
            action=action, frame=Frame(rgb=decoded, stamp_s=1.0), instruction=instruction, step=1
        )
        convention = OutputConvention()
        identity = {"model_id": "tiny", "adapter_id": "", "precision": "fp32/none", "unnorm_key": "sim"}

        rows = {
            f"decode (msg -> RGB, {image_converter()})": _timed(
                lambda: image_message_to_rgb(msg), args.iterations
            ),
            "prepare (RGB -> tensors)": _timed(
                lambda: policy.encode_inputs(decoded, instruction), args.iterations
            ),
            "publish (action -> msgs)": _timed(
                lambda: step_messages(result, convention, Time(sec=1), identity), args.iterations
            ),
            "step (predict_action, tiny)": _timed(
                lambda: policy.predict_action(decoded, instruction), max(5, args.iterations // 5)
            ),
        }

    print(f"640x480 rgb8, {args.iterations} iterations, torch threads={args.threads}")
    print(f"{'stage':<30} {'p50 ms':>9} {'p95 ms':>9}")
    for name, samples in rows.items():
        print(f"{name:<30} {np.percentile(samples, 50):9.3f} {np.percentile(samples, 95):9.3f}")
    overhead = sum(np.percentile(rows[k], 50) for k in ("decode (msg -> RGB)", "publish (action -> msgs)"))
    prepare = np.percentile(rows["prepare (RGB -> tensors)"], 50)
    step = np.percentile(rows["step (predict_action, tiny)"], 50)
    total = overhead + step  # predict_action already includes the preparation
    print(f"node overhead outside predict_action (decode + publish), p50: {overhead:.3f} ms")
    print(f"preparation inside predict_action, p50: {prepare:.3f} ms")
    print(
        f"share of the total step (decode + prepare + publish) / (decode + step + publish): "
        f"{(overhead + prepare) / total:.1%}"
    )


if __name__ == "__main__":
    main()
