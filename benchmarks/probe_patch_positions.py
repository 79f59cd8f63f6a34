"""Do a checkpoint's image patch tokens say where a part is? A readout that is told which patches.

Usage (from the repository root, after `make build`; about 5 min on two cores):

    bash scripts/with_env.sh python benchmarks/probe_patch_positions.py --model models/sim_policy

To find a part the language model must first attend to the patches that show it, then read the
part's position off what those patches carry. This probe removes the first step: a small readout is
given exactly the patches a part covers (from the workcell's segmentation) and learns to report the
part's table position from their mean feature. It is trained on rendered layouts and scored on
held-out ones, for three inputs:

- the vision backbone's patch features (DINOv2 + SigLIP, before the projector);
- the projector's output: the patch tokens the language model actually receives;
- the projector's output plus each patch's row and column (one-hot): the precision the same readout
  reaches once position is given, so the upper reference.

Each is printed next to chance: always answering the training mean. A policy cannot head for a part
whose patch tokens read at chance, whatever its language model learns.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _render(count: int, seed_start: int, image_px: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Images, part labels and [(image index, label, part xy)] with the arm in random places."""
    from vla_ros.sim import TASK_NAMES, Workcell, WorkcellConfig

    rng = np.random.default_rng(seed_start)
    images, labels, parts = [], [], []
    with Workcell(WorkcellConfig(image_width=image_px, image_height=image_px)) as cell:
        for index, seed in enumerate(range(seed_start, seed_start + count)):
            cell.reset(seed, TASK_NAMES[seed % len(TASK_NAMES)])
            if rng.random() < 0.8:  # else the arm stays home
                hand = [rng.uniform(0.3, 0.75), rng.uniform(-0.3, 0.3), rng.uniform(0.03, 0.35)]
                cell.place_ee(np.array(hand))
            images.append(cell.render())
            labels.append(cell.render_part_labels())
            for label, part in enumerate(cell.layout.parts, start=1):
                parts.append((index, label, cell.part_position(part.id)[:2]))
    return np.stack(images), np.stack(labels), parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/sim_policy")
    parser.add_argument("--layouts", type=int, default=1200)
    parser.add_argument("--heldout", type=int, default=300, help="the last layouts, scored only")
    parser.add_argument("--seed-start", type=int, default=200000, help="layouts no demonstration used")
    parser.add_argument("--steps", type=int, default=1500, help="readout training steps")
    parser.add_argument("--num-threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from PIL import Image
    from torch import nn

    from vla_ros.model.loading import load_checkpoint
    from vla_ros.model.processing import center_crop

    torch.set_num_threads(args.num_threads)
    torch.manual_seed(0)
    loaded = load_checkpoint(args.model, precision="fp32")
    model = loaded.model.eval()
    size = loaded.image_processor.image_size_px
    patch = model.vision_backbone.featurizer.patch_embed.patch_size[0]
    grid = size // patch

    start = time.perf_counter()
    images, labels, parts = _render(args.layouts, args.seed_start, size)
    print(f"rendered {args.layouts} layouts ({len(parts)} parts) in {time.perf_counter() - start:.0f} s")

    # The policy's view: centre crop, then the processor's resize (nearest for labels).
    def patch_mask(index: int, label: int) -> np.ndarray:
        cropped = Image.fromarray(center_crop(labels[index]))
        resized = np.asarray(cropped.resize((size, size), Image.NEAREST)) == label
        return resized.reshape(grid, patch, grid, patch).any(axis=(1, 3)).reshape(-1)

    masks = np.stack([patch_mask(i, label) for i, label, _ in parts])
    seen = masks.any(axis=1)  # a part hidden under the arm has no patches to read
    index = np.array([i for i, _, _ in parts])[seen]
    xy = np.stack([p for _, _, p in parts])[seen]
    masks = masks[seen]

    backbone, projected = [], []
    with torch.no_grad():
        for i in range(0, len(images), 32):
            pixels = loaded.image_processor.batch([center_crop(im) for im in images[i : i + 32]])
            features = model.vision_backbone(pixels)
            backbone.append(features)
            projected.append(model.projector(features))
    projected = torch.cat(projected)
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    coordinates = torch.cat([torch.eye(grid)[rows], torch.eye(grid)[cols]], dim=1)
    inputs = {
        "vision backbone": torch.cat(backbone),
        "projector (what the LM sees)": projected,
        "projector + patch row/column": torch.cat(
            [projected, coordinates.expand(len(projected), -1, -1)], dim=2
        ),
    }

    held = index >= args.layouts - args.heldout
    mean, scale = xy[~held].mean(axis=0), xy[~held].std(axis=0)
    target = torch.tensor((xy - mean) / scale, dtype=torch.float32)
    weights = torch.tensor(masks / masks.sum(axis=1, keepdims=True), dtype=torch.float32)
    chance = np.abs(xy[held] - mean).mean(axis=0) * 100
    print(f"model {args.model}; {int((~held).sum())} parts to fit, {int(held.sum())} held out")
    print(f"{'patch features':32s} held-out error x, y (cm)   chance x, y (cm)")
    train_rows = torch.from_numpy(np.nonzero(~held)[0])
    test_rows = torch.from_numpy(np.nonzero(held)[0])
    image_of = torch.from_numpy(index)
    for name, features in inputs.items():
        torch.manual_seed(0)
        readout = nn.Sequential(
            nn.LayerNorm(features.shape[-1]), nn.Linear(features.shape[-1], 128), nn.GELU(), nn.Linear(128, 2)
        )

        def predict(rows: torch.Tensor, features: torch.Tensor = features, readout: nn.Module = readout):
            # The mean feature over the part's patches: attention that already found the part.
            pooled = (weights[rows, :, None] * features[image_of[rows]]).sum(dim=1)
            return readout(pooled)

        optimizer = torch.optim.Adam(readout.parameters(), lr=2e-3)
        for _ in range(args.steps):
            batch = train_rows[torch.randint(len(train_rows), (128,))]
            loss = ((predict(batch) - target[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            error = (predict(test_rows) - target[test_rows]).abs().mean(dim=0).numpy() * scale * 100
        gap = " " * 18
        print(f"{name:32s} {error[0]:5.1f} {error[1]:5.1f}{gap}{chance[0]:5.1f} {chance[1]:5.1f}")


if __name__ == "__main__":
    main()
