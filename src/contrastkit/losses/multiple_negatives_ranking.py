"""In-batch negatives plus given hard negatives for (anchor, positive[, negative]) text pairs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from contrastkit.losses.block_logsumexp import block_logsumexp
from contrastkit.losses.distributed import gather_with_grad
from contrastkit.losses.similarity import normalize
from contrastkit.losses.validation import check_batch, check_embeddings, check_finite, check_pair, check_temperature


class MultipleNegativesRankingLoss(nn.Module):
    """InfoNCE of each anchor against every positive of the batch and every given hard negative.

    Henderson et al. 2017, "Efficient Natural Language Response Suggestion for Smart Reply" (arXiv 1705.00652),
    the objective sentence-transformers calls MultipleNegativesRankingLoss. Anchor ``i``'s candidates are the ``N``
    positives (its own is the target) and the ``N`` hard negatives when given (``(N + N) `` candidates, the hard
    negatives of the other anchors included, as in the reference implementation); logits are cosine similarities
    over ``temperature`` (0.05, i.e. scale 20, by default). With ``symmetric=True`` the positive-to-anchor direction
    is added (positives as queries against the anchors) and the two means are averaged, as in CLIP. Computed with
    the exact row-blocked log-sum-exp in float32.

    Guided false-negative masking (GISTEmbed, Solatorio 2024, arXiv 2402.16829): given the embeddings of the same
    texts under a frozen guide model (``guide=``), a candidate other than anchor ``i``'s own positive whose guide
    similarity to the anchor exceeds the guide similarity of that positive (minus ``guide_margin``) is probably
    another positive of the anchor, and is left out of its denominator (with ``symmetric``, likewise for each
    positive against the anchors).

    Args:
        temperature: divides the cosine similarities (0.05 in sentence-transformers).
        symmetric: also rank the anchors for each positive.
        gather_distributed: candidates from all ``torch.distributed`` processes, with gradients flowing back.
        check_finite: refuse NaN/inf embeddings.
        guide_margin: with a guide, mask candidates whose guide similarity exceeds the positive's minus this.
    """

    def __init__(
        self,
        temperature: float = 0.05,
        symmetric: bool = False,
        gather_distributed: bool = False,
        check_finite: bool = True,
        guide_margin: float = 0.0,
    ) -> None:
        super().__init__()
        self.guide_margin = float(guide_margin)
        self.temperature = check_temperature(temperature)
        self.symmetric = symmetric
        self.gather_distributed = gather_distributed
        self.check_finite = check_finite

    def forward(
        self,
        anchors: Tensor,
        positives: Tensor,
        negatives: Tensor | None = None,
        guide: Sequence[Tensor] | None = None,
    ) -> Tensor:
        """Compute the loss.

        Args:
            anchors: ``(N, D)`` anchor (query) embeddings.
            positives: ``(N, D)`` embeddings, row ``i`` the positive of anchor ``i``.
            negatives: optional ``(N, D)`` (or ``(M, D)``) hard negative embeddings, shared by all anchors.
            guide: optional guide-model embeddings of the same texts, ``(anchors, positives[, negatives])`` (any
                dimension ``G``; no gradient flows into them), for guided false-negative masking.

        Returns:
            Scalar float32 loss.
        """
        check_pair("anchors", anchors, "positives", positives, finite=self.check_finite)
        if negatives is not None:
            check_embeddings("negatives", negatives)
            if negatives.shape[1] != anchors.shape[1]:
                raise ValueError(
                    f"negatives must have the anchors' dimension {anchors.shape[1]}, got {tuple(negatives.shape)}"
                )
            if self.check_finite:
                check_finite("negatives", negatives)
        scale = 1.0 / self.temperature
        a, p = normalize(anchors), normalize(positives)  # (N, D) float32
        a_all, p_all = a, p
        if self.gather_distributed:
            a_all, _ = gather_with_grad(a)  # (N_total, D)
            p_all, _ = gather_with_grad(p)
        candidates = p_all
        if negatives is not None:
            n = normalize(negatives)  # (M, D)
            n_all = gather_with_grad(n)[0] if self.gather_distributed else n
            candidates = torch.cat([p_all, n_all])  # (N_total + M_total, D)
        check_batch("anchors", candidates.shape[0])
        mask = mask_back = None
        if guide is not None:
            mask, mask_back = self._guide_masks(guide, negatives is not None, a.shape[0])
        pos = (a * p).sum(-1) * scale  # (N,)
        lse, _ = block_logsumexp(a, candidates, scale, mask=mask)  # (N,)
        loss = (lse - pos).mean()
        if self.symmetric:
            lse_back, _ = block_logsumexp(p, a_all, scale, mask=mask_back)  # (N,)
            loss = (loss + (lse_back - pos).mean()) / 2
        return loss

    @torch.no_grad()
    def _guide_masks(self, guide: Sequence[Tensor], with_negatives: bool, n: int) -> tuple[Tensor, Tensor]:
        """``(N, C)`` and ``(N, N_total)`` masks of probable false negatives under the guide (own positive kept)."""
        if len(guide) != 2 + with_negatives:
            raise ValueError(
                f"guide needs the guide embeddings of anchors, positives{', negatives' if with_negatives else ''} "
                f"({2 + with_negatives} tensors), got {len(guide)}"
            )
        g = [normalize(x.detach()) for x in guide]  # (N, G) each, float32
        if any(x.shape[0] != n for x in g[:2]):
            raise ValueError(f"guide embeddings must have the batch's {n} rows, got {[tuple(x.shape) for x in g]}")
        g_all = [gather_with_grad(x)[0] if self.gather_distributed else x for x in g]
        offset = gather_with_grad(g[0])[1] if self.gather_distributed else 0
        own = torch.arange(n, device=g[0].device) + offset  # (N,) column of each anchor's own positive
        g_pos = (g[0] * g[1]).sum(-1, keepdim=True)  # (N, 1) guide similarity of the true pair
        mask = g[0] @ torch.cat(g_all[1:]).t() > g_pos - self.guide_margin  # (N, C)
        mask[torch.arange(n), own] = False
        mask_back = g[1] @ g_all[0].t() > g_pos - self.guide_margin  # (N, N_total): positives against anchors
        mask_back[torch.arange(n), own] = False
        return mask, mask_back

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, symmetric={self.symmetric}, guide_margin={self.guide_margin}"
