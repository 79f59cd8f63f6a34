"""Where does a policy look when it is told which part to go to? (move_to_part, 2-3 parts)

Usage (from the repository root, after `make build`; about 1 min):

    bash scripts/with_env.sh python benchmarks/probe_target_attention.py --model models/sim_policy --seeds 30

Reading the part's name means finding *that* part's patches among the image tokens. This probe puts
the arm at random places above held-out layouts, asks the policy's language model for its first
action token (the inference prompt, centre-cropped image, as the policy runs it) and reads the
attention of each head of the last layer from that position onto the image patches:

- on the named part's patches and on the other parts' patches;
- which part gets the most ("top"); then the instruction is changed to name another visible part B
  on the same image. How often top is B when B is named, against how often it is B when it is not:
  the two differ only by the name. A head that looks at whichever part stands out scores the same on
  both (bigger parts win more often).

``vla-ros train --target-attention-weight`` supervises the first heads of the last layer to look at
the named part; this says whether they learnt to, on layouts they never saw, and whether the name or
the picture decides where they look.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/sim_policy")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--places", type=int, default=4, help="random arm places per layout")
    parser.add_argument("--seed-start", type=int, default=100000, help="held-out: demos use < 100000")
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from vla_ros.model.loading import load_checkpoint
    from vla_ros.model.processing import center_crop
    from vla_ros.sim import Workcell, workcell_config
    from vla_ros.sim.layout import PART_AREA_MAX_M, PART_AREA_MIN_M
    from vla_ros.train.data import patches_showing
    from vla_ros.train.objectives import eager_attention

    torch.set_num_threads(args.num_threads)
    loaded = load_checkpoint(args.model, precision="fp32")
    model = loaded.model.eval()
    size = loaded.image_processor.image_size_px
    grid = tuple(int(n) for n in model.vision_backbone.featurizer.patch_embed.grid_size)
    heads = model.language_model.config.num_attention_heads
    rng = np.random.default_rng(0)

    def attention(image: np.ndarray, instruction: str) -> np.ndarray:
        """[heads, patches]: the last layer's attention from the first action token's position."""
        pixels = loaded.image_processor(image, center_crop_image=True)[None]
        ids = torch.tensor([loaded.prompt_tokenizer.encode_prompt(instruction)], dtype=torch.long)
        with torch.inference_mode(), eager_attention(model):
            weights = model(pixels, ids, output_attentions=True).attentions[-1]
        return weights[0, :, -1, 1 : 1 + model.num_patches].float().numpy()

    named_mass, other_mass = [[] for _ in range(heads)], [[] for _ in range(heads)]
    top_named, top_b_named, top_b_unnamed = np.zeros(heads), np.zeros(heads), np.zeros(heads)
    n_places = 0
    with Workcell(workcell_config(size)) as cell:
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            instruction = cell.reset(seed, "move_to_part")
            parts = list(cell.layout.parts)
            named = cell.task.part_id
            for _ in range(args.places):
                xy = rng.uniform(np.asarray(PART_AREA_MIN_M) - 0.05, np.asarray(PART_AREA_MAX_M) + 0.05)
                cell.place_ee(np.array([xy[0], xy[1], rng.uniform(0.12, 0.28)]))
                image = cell.render()
                shown = {
                    p.id: patches_showing(center_crop(cell.render_object_mask(p.id)), grid) for p in parts
                }
                others = [p for p in parts if p.id != named and shown[p.id].any()]
                if not shown[named].any() or not others:
                    continue  # the arm hides the named part, or every other one
                n_places += 1
                other = others[int(rng.integers(len(others)))]
                renamed = instruction.replace(next(p.name for p in parts if p.id == named), other.name)
                att, att2 = attention(image, instruction), attention(image, renamed)
                for h in range(heads):
                    mass = {pid: float(att[h, patches].sum()) for pid, patches in shown.items()}
                    mass2 = {pid: float(att2[h, patches].sum()) for pid, patches in shown.items()}
                    named_mass[h].append(mass[named])
                    other_mass[h].append(sum(v for pid, v in mass.items() if pid != named))
                    top, top2 = max(mass, key=mass.get), max(mass2, key=mass2.get)
                    top_named[h] += top == named
                    top_b_unnamed[h] += top == other.id
                    top_b_named[h] += top2 == other.id
    n = max(n_places, 1)
    print(f"model {args.model}: {n_places} arm places on layouts {args.seed_start}.. (2-3 parts, 2 visible)")
    print("attention from the first action token's position, summed over each part's patches;")
    print("top: the part whose patches get the most of it; B: another part, named in its place")
    print(
        f"{'head':<5} {'on named':>9} {'on others':>9} {'top=named':>9} {'top=B, B named':>14} "
        f"{'not named':>9}"
    )
    for h in range(heads):
        print(
            f"{h:<5} {np.mean(named_mass[h]):>9.3f} {np.mean(other_mass[h]):>9.3f} {top_named[h] / n:>9.2f} "
            f"{top_b_named[h] / n:>14.2f} {top_b_unnamed[h] / n:>9.2f}"
        )


if __name__ == "__main__":
    main()
