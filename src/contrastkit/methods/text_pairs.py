"""Fine-tuning a sentence encoder on (anchor, positive[, hard negative]) text pairs for semantic search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

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

    Args:
        backbone: the text encoder, with ``feature_dim``.
        temperature: cosine similarities are divided by it (0.05 = sentence-transformers' scale 20).
        symmetric: also rank the anchors for each positive.
        gather_distributed: contrast against the texts of all processes.
    """

    default_views = None  # no image views

    num_views = 1
    task = "text-pairs"  # the batch's texts come as the second argument
    supports_grad_cache = True

    def __init__(
        self,
        backbone: nn.Module,
        temperature: float = 0.05,
        symmetric: bool = False,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__(backbone)
        self.criterion = MultipleNegativesRankingLoss(
            temperature=temperature, symmetric=symmetric, gather_distributed=gather_distributed
        )

    def export_module(self) -> tuple[nn.Module, dict[str, Any]]:
        """The fine-tuned text encoder, ``kind: text``."""
        return self.backbone, {"kind": "text", "text_encoder": self.backbone.text_config}

    def check_views(self, views: Sequence[Sequence[str]]) -> None:
        if len(views) != 1 or isinstance(views[0], (str, Tensor)):
            raise TypeError("TextPairs takes views=[anchors], anchors a list of strings")

    def embed_batch(self, views: Sequence[Sequence[str]], labels: Sequence[TextPair] | None = None) -> list[Tensor]:
        """``[anchors (B, D), positives (B, D)]`` plus ``hard negatives (B, D)`` when the pairs have them."""
        self.check_views(views)
        anchors = list(views[0])
        if labels is None or len(labels) != len(anchors):
            raise ValueError(f"got {len(anchors)} anchors and {0 if labels is None else len(labels)} pairs")
        widths = {len(pair) for pair in labels}
        if len(widths) != 1 or widths - {1, 2}:
            raise ValueError("every pair must be (positive,) or every pair (positive, hard_negative), not a mix")
        columns = [list(column) for column in zip(*labels, strict=True)]
        return [self.backbone(anchors), *(self.backbone(texts) for texts in columns)]

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Sequence[TextPair] | None = None) -> MethodOutput:
        loss = self.criterion(*embeddings)  # anchors, positives[, negatives]: (B, D) each
        return MethodOutput(loss, {"loss": loss.detach()})
