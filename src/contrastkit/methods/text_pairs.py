"""Fine-tuning a sentence encoder on (anchor, positive[, hard negative]) text pairs for semantic search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.backbones.embed_by_length import embed_by_length
from contrastkit.data.tokenized_texts import TextColumns, TokenizedTexts
from contrastkit.losses import MultipleNegativesRankingLoss
from contrastkit.methods.method import Method, MethodOutput
from contrastkit.methods.registry import register_method

TextPair = tuple[str, ...]  # (positive,) or (positive, hard negative)


@register_method
class TextPairs(Method):
    """In-batch-negatives fine-tuning of a text encoder (Henderson et al. 2017, arXiv 1705.00652; the
    MultipleNegativesRankingLoss of Sentence-BERT, Reimers and Gurevych 2019, arXiv 1908.10084).

    Each anchor is contrasted against the positives of the whole (global) batch and the given hard negatives with
    :class:`~contrastkit.losses.MultipleNegativesRankingLoss`. The backbone is a text encoder (strings in,
    ``(B, D)`` out), usually the pretrained all-MiniLM-L6-v2.

    ``forward(views, pairs)``: ``views`` is ``[anchors]`` (a list of B strings) and ``pairs`` B tuples
    ``(positive,)`` or ``(positive, hard_negative)`` (all of the batch the same length).

    With ``guide`` (an encoder file with a text tower, e.g. the untouched model being fine-tuned or a larger one),
    in-batch candidates that the frozen guide ranks above an anchor's own positive are masked out of its loss as
    probable false negatives (GISTEmbed, Solatorio 2024, arXiv 2402.16829; see the loss). The guide is not trained,
    not saved in checkpoints and not exported.

    Args:
        backbone: the text encoder, with ``feature_dim``.
        temperature: cosine similarities are divided by it (0.05 = sentence-transformers' scale 20).
        symmetric: also rank the anchors for each positive.
        gather_distributed: contrast against the texts of all processes.
        guide: path of a guide encoder file (``kind: text`` or ``dual``); None: no masking.
        guide_margin: mask candidates whose guide similarity exceeds the positive's minus this.
    """

    default_views = None  # no image views

    num_views = 1
    task = "text-pairs"  # the batch's texts come as the second argument
    takes_views = False
    supports_grad_cache = True

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.05,
        symmetric: bool = False,
        gather_distributed: bool = True,
        guide: str | None = None,
        guide_margin: float = 0.0,
    ) -> None:
        super().__init__(backbone)
        self.criterion = MultipleNegativesRankingLoss(
            temperature=temperature,
            symmetric=symmetric,
            gather_distributed=gather_distributed,
            guide_margin=guide_margin,
        )
        self._guide = [] if guide is None else [load_guide(guide)]  # a list: not a submodule (never trained or saved)

    def export_module(self) -> tuple[nn.Module, dict[str, Any]]:
        """The fine-tuned text encoder, ``kind: text``."""
        return self.backbone, {"kind": "text", "text_encoder": self.backbone.text_config}

    def check_views(self, views: Sequence[Sequence[str]]) -> None:
        if len(views) != 1 or isinstance(views[0], (str, Tensor)):
            raise TypeError("TextPairs takes views=[anchors], anchors a list of strings")

    def embed_batch(self, views: Sequence[Sequence[str]], labels: Sequence[TextPair] | None = None) -> list[Tensor]:
        """``[anchors (B, D), positives (B, D)]`` plus ``hard negatives (B, D)`` when the pairs have them."""
        self.check_views(views)
        anchors = views[0] if isinstance(views[0], TokenizedTexts) else list(views[0])
        if labels is None or len(labels) != len(anchors):
            raise ValueError(f"got {len(anchors)} anchors and {0 if labels is None else len(labels)} pairs")
        widths = {len(pair) for pair in labels}
        if len(widths) != 1 or widths - {1, 2}:
            raise ValueError("every pair must be (positive,) or every pair (positive, hard_negative), not a mix")
        if isinstance(labels, TextColumns):  # tokenised ahead (contrastkit train text-pairs)
            columns = labels.columns
        else:
            columns = [list(column) for column in zip(*labels, strict=True)]
        groups = [anchors, *columns]
        sortable = all(isinstance(g, TokenizedTexts) for g in groups) and len({g.key for g in groups}) == 1
        if sortable:
            embedded = embed_by_length(self.backbone, groups, chunk_size=len(anchors))  # (B, D) each, less padding
        else:
            embedded = [self.backbone(texts) for texts in groups]  # (B, D) each
        if self._guide:  # the same texts under the frozen guide: (B, G) each, no graph
            guide = self._guide[0].to(embedded[0].device)
            with torch.no_grad():
                if sortable and guide.kind == "text":  # length-sorted too (a guide with another tokenizer
                    guided = embed_by_length(guide.model, groups, chunk_size=len(anchors))  # re-tokenises them)
                else:
                    guided = [guide.encode_text(texts) for texts in groups]
                embedded += [g.float() for g in guided]
        return embedded

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Sequence[TextPair] | None = None) -> MethodOutput:
        if self._guide:  # anchors, positives[, negatives], then their guide embeddings
            half = len(embeddings) // 2
            loss = self.criterion(*embeddings[:half], guide=embeddings[half:])
        else:
            loss = self.criterion(*embeddings)  # anchors, positives[, negatives]: (B, D) each
        return MethodOutput(loss, {"loss": loss.detach()})


def load_guide(path: str) -> nn.Module:
    """The frozen guide encoder of ``path`` (it must embed text), in eval mode without gradients."""
    from contrastkit.backbones.encoder import TextEncoder
    from contrastkit.backbones.encoder_file import load_encoder

    guide = load_encoder(path)
    if not isinstance(guide, TextEncoder):
        raise ValueError(f"method.guide: {path} is a {guide.kind} encoder; a guide must embed text (text or dual)")
    return guide.requires_grad_(False).eval()
