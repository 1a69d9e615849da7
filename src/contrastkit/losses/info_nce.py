"""InfoNCE / NT-Xent with its false-negative, debiased, hard-negative and decoupled variants."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit.losses.block_logsumexp import block_logsumexp
from contrastkit.losses.distributed import gather_no_grad, gather_with_grad
from contrastkit.losses.similarity import normalize
from contrastkit.losses.validation import (
    check_batch,
    check_embeddings,
    check_finite,
    check_labels,
    check_pair,
    check_temperature,
)


def contrast_from_logsumexp(
    pos: Tensor,
    lse: Tensor,
    num_neg: Tensor,
    temperature: float,
    tau_plus: float = 0.0,
    hard_negative_beta: float = 0.0,
    decoupled: bool = False,
) -> Tensor:
    """Per-anchor InfoNCE loss from the positive logit and the log-sum-exp of the negative logits.

    Args:
        pos: ``(M,)`` positive logit ``s_pos / temperature``.
        lse: ``(M, S)`` log-sum-exp over each anchor's negatives: column 0 at scale ``1 / temperature``, or with
            ``hard_negative_beta > 0`` columns at scales ``(1 + beta) / temperature`` and ``beta / temperature``.
        num_neg: ``(M,)`` number of negatives of each anchor (``> 0``).
        temperature: the temperature of the logits.
        tau_plus: class prior of Chuang et al. 2020; ``> 0`` enables the debiased estimator.
        hard_negative_beta: concentration of Robinson et al. 2021; ``> 0`` reweights negatives by ``exp(beta s)``.
        decoupled: drop the positive from the denominator (Yeh et al. 2021).

    Returns:
        ``(M,)`` loss per anchor, ``-pos + log(exp(pos) + Ng)`` (or ``-pos + log Ng`` when decoupled).
    """
    log_n = num_neg.clamp(min=1).to(pos.dtype).log()  # (M,)
    if hard_negative_beta > 0:
        # n * sum(e^{(1+b)s}) / sum(e^{b s}): importance-weighted negative sum (Robinson et al. 2021, eq. 4).
        log_neg = log_n + lse[:, 0] - lse[:, 1]
    else:
        log_neg = lse[:, 0]
    if tau_plus > 0 or hard_negative_beta > 0:
        # Ng = max((-tau+ n e^pos + neg) / (1 - tau+), n e^{-1/t}), in log space shifted by the largest term.
        floor = log_n - 1.0 / temperature
        shift = torch.maximum(torch.maximum(pos, log_neg), floor).detach()
        value = (torch.exp(log_neg - shift) - tau_plus * torch.exp(log_n + pos - shift)) / (1.0 - tau_plus)
        value = torch.maximum(value, torch.exp(floor - shift))
        log_neg = shift + value.log()
    if decoupled:
        return log_neg - pos
    return torch.logaddexp(pos, log_neg) - pos


def masked_mean(per_anchor: Tensor, valid: Tensor) -> Tensor:
    """Mean over the valid anchors; zero (still attached to the graph) when none is valid."""
    if bool(valid.all()):
        return per_anchor.mean()
    kept = torch.where(valid, per_anchor, torch.zeros_like(per_anchor))
    return kept.sum() / valid.sum().clamp(min=1)


class InfoNCELoss(nn.Module):
    """InfoNCE over cosine similarities divided by a temperature (SimCLR's NT-Xent and MoCo's form).

    Two calling conventions:

    * ``loss(z_a, z_b)``: two views of N samples, NT-Xent of Chen et al. 2020, "A Simple Framework for
      Contrastive Learning of Visual Representations" (arXiv 2002.05709). Each of the 2N embeddings is an anchor
      with one positive (its other view) and 2N-2 negatives; the loss is the mean over the 2N anchors.
    * ``loss(query, key, negatives=bank)``: MoCo, He et al. 2020 (arXiv 1911.05722). One positive (the key) and
      the K rows of ``bank`` (a queue of past keys) as negatives; the bank is never differentiated.

    Variants, combinable:

    * ``labels=`` (or ``mask=``): samples known to share the anchor's class are removed from its negatives
      (false-negative cancellation). In the MoCo form pass ``negative_labels=`` for the bank rows.
    * ``tau_plus``: debiased contrastive estimator, Chuang et al. 2020, "Debiased Contrastive Learning"
      (arXiv 2007.00224).
    * ``hard_negative_beta``: hard-negative reweighting, Robinson et al. 2021, "Contrastive Learning with Hard
      Negative Samples" (arXiv 2010.04592); with ``tau_plus`` as well it is their full HCL estimator.
    * ``decoupled=True``: positive removed from the denominator, Yeh et al. 2021, "Decoupled Contrastive
      Learning" (arXiv 2110.06848).

    The similarity matrix is never held whole: log-sum-exp and its gradient are computed exactly in row blocks
    (see ``block_logsumexp``), in float32 even under bf16/fp16 autocast.

    Args:
        temperature: softmax temperature (> 0).
        tau_plus: class prior for the debiased estimator, in ``[0, 1)``; 0 disables it.
        hard_negative_beta: concentration ``beta >= 0`` of the hard-negative weights; 0 disables it.
        decoupled: remove the positive from the denominator.
        gather_distributed: in the two-view form, use the embeddings of all ``torch.distributed`` processes as
            negatives, with gradients flowing back to their owners (see ``contrastkit.losses.distributed``).
        block_size: anchor rows per block; ``None`` chooses automatically (one block for small batches).
        check_finite: refuse NaN/inf embeddings (one extra pass; set False for speed).
    """

    def __init__(
        self,
        temperature: float = 0.1,
        tau_plus: float = 0.0,
        hard_negative_beta: float = 0.0,
        decoupled: bool = False,
        gather_distributed: bool = False,
        block_size: int | None = None,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        if not 0.0 <= tau_plus < 1.0:
            raise ValueError(f"tau_plus must be in [0, 1), got {tau_plus}")
        if hard_negative_beta < 0:
            raise ValueError(f"hard_negative_beta must be >= 0, got {hard_negative_beta}")
        if block_size is not None and block_size < 1:
            raise ValueError(f"block_size must be >= 1 or None, got {block_size}")
        self.tau_plus = float(tau_plus)
        self.hard_negative_beta = float(hard_negative_beta)
        self.decoupled = decoupled
        self.gather_distributed = gather_distributed
        self.block_size = block_size
        self.check_finite = check_finite

    def _scales(self) -> list[float] | float:
        if self.hard_negative_beta > 0:
            return [
                (1.0 + self.hard_negative_beta) / self.temperature,
                self.hard_negative_beta / self.temperature,
            ]
        return 1.0 / self.temperature

    def _reduce(self, pos: Tensor, lse: Tensor, num_neg: Tensor) -> Tensor:
        lse = lse if lse.dim() == 2 else lse[:, None]  # (M, S)
        valid = num_neg > 0  # anchors without a single negative carry no contrastive signal
        lse = torch.where(valid[:, None], lse, torch.zeros_like(lse))
        per_anchor = contrast_from_logsumexp(
            pos, lse, num_neg, self.temperature, self.tau_plus, self.hard_negative_beta, self.decoupled
        )
        return masked_mean(per_anchor, valid)

    def forward(
        self,
        z_a: Tensor,
        z_b: Tensor,
        negatives: Tensor | None = None,
        labels: Tensor | None = None,
        mask: Tensor | None = None,
        negative_labels: Tensor | None = None,
    ) -> Tensor:
        """Compute the loss.

        Args:
            z_a: ``(N, D)`` first view (or MoCo queries).
            z_b: ``(N, D)`` second view (or MoCo keys), row i the positive of row i of ``z_a``.
            negatives: ``(K, D)`` MoCo memory bank; selects the MoCo form.
            labels: ``(N,)`` class ids; same-class samples are not used as negatives.
            mask: boolean, ``True`` where sample j must not be a negative of sample i: ``(N, N_total)`` in the
                two-view form (``N_total`` = samples over all processes), ``(N, K)`` in the MoCo form.
            negative_labels: ``(K,)`` class ids of the bank rows (MoCo form with ``labels``).

        Returns:
            Scalar loss (float32).
        """
        check_pair("z_a", z_a, "z_b", z_b, finite=self.check_finite)
        n = z_a.shape[0]
        if labels is not None:
            labels = check_labels("labels", labels, n).to(z_a.device)
        if negatives is not None:
            return self._moco(z_a, z_b, negatives, labels, mask, negative_labels)
        if negative_labels is not None:
            raise ValueError("negative_labels is only used with negatives= (the MoCo form)")
        return self._two_view(z_a, z_b, labels, mask)

    def _two_view(self, z_a: Tensor, z_b: Tensor, labels: Tensor | None, mask: Tensor | None) -> Tensor:
        n = z_a.shape[0]
        a, b = normalize(z_a), normalize(z_b)  # (N, D) float32
        offset, n_total = 0, n
        if self.gather_distributed:
            a_all, offset = gather_with_grad(a)  # (N_total, D)
            b_all, _ = gather_with_grad(b)
            n_total = a_all.shape[0]
        else:
            a_all, b_all = a, b
        check_batch("z_a", n_total)
        anchors = torch.cat([a, b])  # (2N, D)
        candidates = torch.cat([a_all, b_all])  # (2N_total, D)
        local = torch.arange(n, device=a.device) + offset  # (N,) global sample index
        self_idx = torch.cat([local, local + n_total])  # (2N,)
        pos_idx = torch.cat([local + n_total, local])  # (2N,)
        pos = (a * b).sum(-1).div(self.temperature).repeat(2)  # (2N,)
        row_labels = col_labels = dense = None
        if labels is not None:
            all_labels = gather_no_grad(labels) if self.gather_distributed else labels  # (N_total,)
            row_labels, col_labels = labels.repeat(2), all_labels.repeat(2)
        if mask is not None:
            if mask.shape != (n, n_total) or mask.dtype != torch.bool:
                raise ValueError(
                    f"mask must be a bool tensor of shape ({n}, {n_total}), got {mask.dtype} {tuple(mask.shape)}"
                )
            dense = mask.to(a.device).repeat(2, 2)  # (2N, 2N_total)
        lse, num_neg = block_logsumexp(
            anchors,
            candidates,
            self._scales(),
            exclude_index=(self_idx, pos_idx),
            row_labels=row_labels,
            col_labels=col_labels,
            mask=dense,
            block_size=self.block_size,
        )
        return self._reduce(pos, lse, num_neg)

    def _moco(
        self,
        query: Tensor,
        key: Tensor,
        bank: Tensor,
        labels: Tensor | None,
        mask: Tensor | None,
        bank_labels: Tensor | None,
    ) -> Tensor:
        check_embeddings("negatives", bank)
        if bank.shape[1] != query.shape[1]:
            raise ValueError(
                f"negatives must have the embedding size of z_a ({query.shape[1]}), got {tuple(bank.shape)}"
            )
        if bank.shape[0] < 1:
            raise ValueError("negatives must hold at least one row")
        if self.check_finite:
            check_finite("negatives", bank)
        if (labels is None) != (bank_labels is None):
            raise ValueError("labels and negative_labels must be given together in the MoCo form")
        if bank_labels is not None:
            bank_labels = check_labels("negative_labels", bank_labels, bank.shape[0]).to(query.device)
        if mask is not None and (mask.shape != (query.shape[0], bank.shape[0]) or mask.dtype != torch.bool):
            raise ValueError(
                f"mask must be a bool tensor of shape ({query.shape[0]}, {bank.shape[0]}) in the MoCo form, "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
        q, k = normalize(query), normalize(key)  # (N, D)
        neg = normalize(bank.detach())  # (K, D)
        pos = (q * k).sum(-1).div(self.temperature)  # (N,)
        lse, num_neg = block_logsumexp(
            q,
            neg,
            self._scales(),
            row_labels=labels,
            col_labels=bank_labels,
            mask=mask,
            block_size=self.block_size,
        )
        return self._reduce(pos, lse, num_neg)

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, tau_plus={self.tau_plus}, "
            f"hard_negative_beta={self.hard_negative_beta}, decoupled={self.decoupled}, "
            f"gather_distributed={self.gather_distributed}"
        )
