"""OpenVLA: fused DINOv2 + SigLIP patch features, a GELU MLP projector and a Llama-2 causal LM.

Read next to the paper's figure (Kim et al., 2024, Fig. 2): the image goes through two ViT
featurizers, whose second-to-last-block patch tokens are concatenated per patch; the projector maps
each patch into the LM's embedding space; the patch embeddings are inserted right after BOS; the LM
then decodes 7 action tokens greedily.

Module and parameter names are the official checkpoint's (``vision_backbone.featurizer.*``,
``vision_backbone.fused_featurizer.*``, ``projector.fc1..fc3``, ``language_model.*``), so its
safetensors load without renaming. Upstream stores timm's LayerScale ``gamma`` as ``scale_factor``;
:class:`LayerScale` below carries that name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import timm
import torch
from torch import nn
from transformers import LlamaForCausalLM

from vla_ros.model.configuration_openvla import OpenVLAConfig

IGNORE_INDEX = -100


class LayerScale(nn.Module):
    """timm's LayerScale with the parameter named as in OpenVLA checkpoints (``scale_factor``)."""

    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.scale_factor = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_factor


def _rename_layer_scales(vit: nn.Module) -> None:
    for block in getattr(vit, "blocks", []):
        for attr in ("ls1", "ls2"):
            old = getattr(block, attr, None)
            if isinstance(old, timm.layers.LayerScale):
                new = LayerScale(old.gamma.shape[0]).to(device=old.gamma.device, dtype=old.gamma.dtype)
                with torch.no_grad():
                    if old.gamma.device.type != "meta":
                        new.scale_factor.copy_(old.gamma)
                setattr(block, attr, new)


def create_featurizer(
    timm_model_id: str, image_size_px: int, act_layer: str | None, **overrides
) -> nn.Module:
    """A timm ViT with random weights (``pretrained=False``: weights come from the checkpoint)."""
    kwargs = dict(pretrained=False, num_classes=0, img_size=image_size_px)
    if act_layer is not None:
        kwargs["act_layer"] = act_layer
    kwargs.update(overrides)
    vit = timm.create_model(timm_model_id, **kwargs)
    _rename_layer_scales(vit)
    return vit


def second_to_last_patch_tokens(vit: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Patch tokens after the second-to-last block (no final norm, prefix tokens dropped).

    OpenVLA (like Prismatic) feeds the LM these features rather than the final block's; the last
    block's weights are in the checkpoint but never used.
    """
    x = vit.patch_embed(pixel_values)
    x = vit._pos_embed(x)
    x = vit.patch_drop(x)
    x = vit.norm_pre(x)
    for block in vit.blocks[:-1]:
        x = block(x)
    return x[:, vit.num_prefix_tokens :]


class FusedVisionBackbone(nn.Module):
    """DINOv2 (``featurizer``) and SigLIP (``fused_featurizer``) on the 6-channel stacked image."""

    def __init__(self, config: OpenVLAConfig) -> None:
        super().__init__()
        size = config.image_size_px
        self.featurizer = create_featurizer(
            config.timm_model_ids[0], size, config.timm_override_act_layers[0], **config.timm_model_kwargs[0]
        )
        self.fused_featurizer = None
        if config.use_fused_vision_backbone:
            self.fused_featurizer = create_featurizer(
                config.timm_model_ids[1],
                size,
                config.timm_override_act_layers[1],
                **config.timm_model_kwargs[1],
            )

    @property
    def embed_dim(self) -> int:
        dim = self.featurizer.embed_dim
        if self.fused_featurizer is not None:
            dim += self.fused_featurizer.embed_dim
        return dim

    @property
    def num_patches(self) -> int:
        return self.featurizer.patch_embed.num_patches

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``pixel_values``: [B, 6, H, W] (DINOv2-normalised RGB, then SigLIP-normalised RGB)."""
        if self.fused_featurizer is None:
            return second_to_last_patch_tokens(self.featurizer, pixel_values[:, :3])
        dino = second_to_last_patch_tokens(self.featurizer, pixel_values[:, :3])
        siglip = second_to_last_patch_tokens(self.fused_featurizer, pixel_values[:, 3:])
        return torch.cat([dino, siglip], dim=2)


class Projector(nn.Module):
    """Per-patch MLP into the LM's embedding space (``fc1..fc3`` for the fused backbone)."""

    def __init__(self, vision_dim: int, llm_dim: int, fused: bool) -> None:
        super().__init__()
        self.fused = fused
        if fused:
            hidden = 4 * vision_dim
            self.fc1 = nn.Linear(vision_dim, hidden)
            self.act_fn1 = nn.GELU()
            self.fc2 = nn.Linear(hidden, llm_dim)
            self.act_fn2 = nn.GELU()
            self.fc3 = nn.Linear(llm_dim, llm_dim)
        else:
            self.fc1 = nn.Linear(vision_dim, llm_dim)
            self.act_fn1 = nn.GELU()
            self.fc2 = nn.Linear(llm_dim, llm_dim)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.act_fn1(self.fc1(patches)))
        if self.fused:
            x = self.fc3(self.act_fn2(x))
        return x


@dataclass
class OpenVLAOutput:
    """Training-time output. ``logits`` cover only the positions that were asked for (see forward)."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    # Asked for with forward(output_image_embeddings=True): the projector's patch embeddings,
    # [B, num_patches, llm_dim] (every view's, one view after another), as the LM receives them.
    image_embeddings: torch.Tensor | None = None
    # Asked for with forward(output_attentions=True) under eager attention: each LM layer's attention
    # probabilities over the multimodal sequence, [B, heads, T, T].
    attentions: tuple[torch.Tensor, ...] | None = None


class OpenVLAForActionPrediction(nn.Module):
    """The whole model. Pure torch module; checkpoints go through :mod:`vla_ros.model.loading`."""

    def __init__(self, config: OpenVLAConfig) -> None:
        super().__init__()
        self.config = config
        llama_config = config.llama_config()
        self.vision_backbone = FusedVisionBackbone(config)
        self.projector = Projector(
            self.vision_backbone.embed_dim, llama_config.hidden_size, config.use_fused_vision_backbone
        )
        self.language_model = LlamaForCausalLM(llama_config)

    @property
    def num_patches(self) -> int:
        """Image positions in the LM's sequence: every view's patches."""
        return self.vision_backbone.num_patches * self.config.num_images

    @property
    def patches_per_image(self) -> int:
        return self.vision_backbone.num_patches

    def set_image_size(self, image_size_px: int) -> None:
        """Make both backbones take ``image_size_px`` images; their position embeddings are resampled.

        For fine-tuning a checkpoint at another input resolution (the sim policy went from 112 to
        224 px): the patch grid changes, every learned weight but the position embeddings carries
        over unchanged, so training resumes from what the model knew instead of from scratch.
        """
        patch = self.vision_backbone.featurizer.patch_embed.patch_size[0]
        if image_size_px < patch or image_size_px % patch:
            raise ValueError(
                f"image size must be a positive multiple of the {patch} px patch, got {image_size_px}"
            )
        for vit in (self.vision_backbone.featurizer, self.vision_backbone.fused_featurizer):
            if vit is not None:
                vit.set_input_size(img_size=image_size_px)
        self.config.image_sizes = [image_size_px] * len(self.config.image_sizes)

    @property
    def dtype(self) -> torch.dtype:
        return self.projector.fc1.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.language_model.model.embed_tokens.weight.device

    def embed_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, 6 * num_images, H, W] (3 channels per view without the fused backbone) -> projected
        patch embeddings [B, num_patches, llm_dim].

        The views go through the backbone and projector as one batch (shared weights, as in
        OpenVLA-OFT) and reach the LM one view after another."""
        views = self.config.num_images
        per_view = 3 * self.config.n_backbones
        if pixel_values.ndim != 4 or pixel_values.shape[1] != views * per_view:
            raise ValueError(
                f"pixel_values must be [B, {views * per_view}, H, W] for a model of {views} camera view(s), "
                f"got {list(pixel_values.shape)}"
            )
        batch = pixel_values.shape[0]
        pixel_values = pixel_values.reshape(batch * views, -1, *pixel_values.shape[2:])
        vision_dtype = self.vision_backbone.featurizer.patch_embed.proj.weight.dtype
        patches = self.vision_backbone(pixel_values.to(device=self.device, dtype=vision_dtype))
        proj_dtype = self.projector.fc1.weight.dtype
        if proj_dtype not in (torch.float32, torch.float16, torch.bfloat16):  # quantized projector
            proj_dtype = self.language_model.model.embed_tokens.weight.dtype
        embedded = self.projector(patches.to(proj_dtype))
        return embedded.reshape(batch, views * embedded.shape[1], embedded.shape[2])

    def embed_multimodal(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_embeddings: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """LM input embeddings with the image patches inserted right after BOS, and their mask
        (``image_embeddings``: :meth:`embed_image`'s output when the caller already has it).

        Rows may be right-padded (training batches) or left-padded (prompts of different lengths
        decoded together): a left-padded row's patches go right after its own BOS, behind its padding.
        """
        input_ids = input_ids.to(self.device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attention_mask = attention_mask.to(self.device)
        text = self.language_model.get_input_embeddings()(input_ids)
        if image_embeddings is None:
            image_embeddings = self.embed_image(pixel_values)
        image = image_embeddings.to(text.dtype)
        image_mask = torch.ones(image.shape[:2], dtype=attention_mask.dtype, device=attention_mask.device)
        left_pad = _left_padding(attention_mask)
        if not left_pad.any():
            embeds = torch.cat([text[:, :1], image, text[:, 1:]], dim=1)
            mask = torch.cat([attention_mask[:, :1], image_mask, attention_mask[:, 1:]], dim=1)
            return embeds, mask
        # Position t of a row with k pads reads text[t] up to its BOS (t <= k), then the P patches,
        # then text[t - P]: the same layout as above, shifted behind the padding.
        num_text, num_image = text.shape[1], image.shape[1]
        t = torch.arange(num_text + num_image, device=text.device)[None, :]
        k = left_pad[:, None]
        index = torch.where(t <= k, t, torch.where(t <= k + num_image, num_text + t - k - 1, t - num_image))
        pool = torch.cat([text, image], dim=1)
        embeds = pool.gather(1, index[..., None].expand(-1, -1, pool.shape[-1]))
        mask = torch.cat([attention_mask, image_mask], dim=1).gather(1, index)
        return embeds, mask

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_image_embeddings: bool = False,
        output_attentions: bool = False,
    ) -> OpenVLAOutput:
        """Logits of the multimodal sequence, for training with cross-entropy on action tokens.

        Without ``labels``: logits for every position of the multimodal sequence,
        [B, 1 + num_patches + T - 1, V]. With ``labels`` ([B, T], aligned with ``input_ids``,
        IGNORE_INDEX where no loss is wanted): the LM head runs only on the positions that predict a
        labelled token (the 32064-wide head is most of a small model's cost), ``logits`` is
        [N_labelled, V] in row-major order, ``labels`` the matching targets and ``loss`` their mean
        cross-entropy.

        ``output_image_embeddings`` and ``output_attentions`` (attentions need eager attention) also
        return what training objectives beyond the action loss read; they change nothing else.
        """
        image = self.embed_image(pixel_values) if output_image_embeddings else None
        embeds, mask = self.embed_multimodal(pixel_values, input_ids, attention_mask, image_embeddings=image)
        if labels is None:
            out = self.language_model(
                inputs_embeds=embeds, attention_mask=mask, output_attentions=output_attentions
            )
            return OpenVLAOutput(
                logits=out.logits,
                image_embeddings=image,
                attentions=out.attentions if output_attentions else None,
            )
        targets = self.next_token_targets(labels.to(self.device))
        lm_out = self.language_model.model(
            inputs_embeds=embeds, attention_mask=mask, output_attentions=output_attentions
        )
        hidden = lm_out.last_hidden_state
        keep = targets != IGNORE_INDEX
        logits = self.language_model.lm_head(hidden[:, :-1][keep]).float()
        targets = targets[keep]
        loss = nn.functional.cross_entropy(logits, targets) if targets.numel() else logits.sum() * 0.0
        return OpenVLAOutput(
            logits=logits,
            loss=loss,
            labels=targets,
            image_embeddings=image,
            attentions=lm_out.attentions if output_attentions else None,
        )

    def next_token_targets(self, labels: torch.Tensor) -> torch.Tensor:
        """[B, 1 + num_patches + T - 2]: for each position of the multimodal sequence but the last, the
        label of the token it predicts (``labels`` aligned with ``input_ids``; image positions carry
        IGNORE_INDEX)."""
        ignore = torch.full(
            (labels.shape[0], self.num_patches), IGNORE_INDEX, dtype=labels.dtype, device=labels.device
        )
        return torch.cat([labels[:, :1], ignore, labels[:, 1:]], dim=1)[:, 1:]

    @torch.inference_mode()
    def first_step_logits(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits for the first generated token, [B, V] (the #346 image-sensitivity probe)."""
        embeds, mask = self.embed_multimodal(pixel_values, input_ids, attention_mask)
        out = self.language_model(inputs_embeds=embeds, attention_mask=mask, logits_to_keep=1)
        return out.logits[:, -1].float()

    @torch.inference_mode()
    def generate_action_tokens(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        num_tokens: int,
        allowed_token_range: tuple[int, int] | None = None,
        attention_mask: torch.Tensor | None = None,
        on_token: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """KV-cached greedy decoding of ``num_tokens`` tokens; returns [B, num_tokens] ids.

        Prompts of different lengths are decoded together when left-padded, with ``attention_mask``
        0 on the padding: each row then decodes as it would alone (the LM's rotary position encoding
        sees only relative positions, so the shift by the padding changes nothing).

        ``allowed_token_range`` = (lo, hi) restricts the choice to ids lo..hi-1 (the action tokens;
        upstream decodes unconstrained) and then only those rows of the LM head are computed. The
        image is part of the first step's input, so it cannot be dropped by a cache bookkeeping bug
        (openvla #346). ``on_token(step)`` is called once each token is chosen (profiling: the first
        call ends the vision encoder and the prefill, each later one a decoding step).
        """
        embeds, mask = self.embed_multimodal(pixel_values, input_ids, attention_mask)
        lm = self.language_model
        head = lm.lm_head.weight
        lo, hi = allowed_token_range if allowed_token_range is not None else (0, head.shape[0])
        head = head[lo:hi]
        cache, step_input, tokens = None, {"inputs_embeds": embeds}, []
        for step in range(num_tokens):
            out = lm.model(**step_input, attention_mask=mask, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logits = nn.functional.linear(out.last_hidden_state[:, -1], head)
            next_ids = logits.argmax(dim=-1) + lo
            tokens.append(next_ids)
            if on_token is not None:
                on_token(step)
            if step + 1 < num_tokens:
                mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
                step_input = {"input_ids": next_ids[:, None]}
        return torch.stack(tokens, dim=1)


def _left_padding(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B] number of padding positions before each row's first real token."""
    return (attention_mask.cumsum(dim=1) == 0).sum(dim=1)
