"""CPC: the InfoNCE loss of van den Oord et al. 2018.

"Representation Learning with Contrastive Predictive Coding", arXiv 1807.03748. An autoregressive context
``c_t`` predicts the future encodings ``z_{t+k}``, ``k = 1..K``, through one linear map per step
(``W_k c_t``). Each prediction must pick its true future ``z_{t+k}`` out of a set of candidates by the score
``f_k = exp(z^T W_k c_t)``; the loss is the cross-entropy of that choice (InfoNCE)::

    L = mean_{b,k,t: t+k<T}  -log( exp(s(p_bkt, z_{b,t+k})) / sum_{b',t'} exp(s(p_bkt, z_{b',t'})) )

Here the candidates are all ``B * T`` encodings of the batch: the other time steps of the same sequence and
every step of the other sequences, as in the paper's audio experiments. ``s`` is the dot product over a
temperature (the cosine if ``normalize=True``). The log-sum-exp over candidates goes through
``block_logsumexp``, so no ``M x (B*T)`` matrix is held between forward and backward.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .block_logsumexp import auto_block_size, block_logsumexp
from .similarity import normalize as l2_normalize
from .validation import check_embeddings, check_finite, check_temperature


class CPCLoss(nn.Module):
    """InfoNCE over k-step-ahead predictions (van den Oord et al. 2018, arXiv 1807.03748).

    Args:
        temperature: scores are divided by it (the paper uses plain dot products: 1.0).
        normalize: L2-normalise predictions and targets (cosine scores), in float32.
        block_size: anchor rows per tile in ``block_logsumexp``; ``None`` picks one automatically.
        check_finite: refuse NaN/inf inputs (one extra pass over them).
    """

    def __init__(
        self,
        temperature: float = 1.0,
        normalize: bool = False,
        block_size: int | None = None,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        if block_size is not None and block_size < 1:
            raise ValueError(f"block_size must be >= 1 or None, got {block_size!r}")
        self.normalize = normalize
        self.block_size = block_size
        self.check_finite = check_finite

    def _prepare(self, predictions: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Validate; return float32 anchors ``(M, D)``, candidates ``(B*T, D)``, positive columns, steps."""
        check_embeddings("predictions", predictions, dim=4)
        check_embeddings("targets", targets, dim=3)
        b, k_max, t_len, d = predictions.shape
        if targets.shape[0] != b:
            raise ValueError(
                f"predictions and targets must have the same batch size B, got predictions "
                f"{tuple(predictions.shape)} (B, K, T, D) and targets {tuple(targets.shape)} (B, T, D)"
            )
        if targets.shape[2] != d:
            raise ValueError(
                f"predictions and targets must have the same feature size D, got predictions "
                f"{tuple(predictions.shape)} (B, K, T, D) and targets {tuple(targets.shape)} (B, T, D)"
            )
        if targets.shape[1] != t_len:
            raise ValueError(
                f"predictions and targets must have the same length T, got predictions "
                f"{tuple(predictions.shape)} (B, K, T, D) and targets {tuple(targets.shape)} (B, T, D)"
            )
        if b == 0 or k_max == 0 or k_max >= t_len:
            raise ValueError(
                "predictions must have B >= 1 and 1 <= K < T (some t + k < T), "
                f"got shape {tuple(predictions.shape)} (B, K, T, D)"
            )
        if self.check_finite:
            check_finite("predictions", predictions)
            check_finite("targets", targets)
        device = predictions.device
        with torch.autocast(device_type=device.type, enabled=False):
            if self.normalize:
                predictions = l2_normalize(predictions)  # (B, K, T, D)
                targets = l2_normalize(targets)  # (B, T, D)
            else:
                predictions, targets = predictions.float(), targets.float()
        row_start = torch.arange(b, device=device)[:, None] * t_len  # (B, 1)
        anchors, positives, steps = [], [], []
        for k in range(1, k_max + 1):
            anchors.append(predictions[:, k - 1, : t_len - k].reshape(-1, d))  # (B*(T-k), D)
            positives.append((row_start + torch.arange(k, t_len, device=device)).reshape(-1))  # (B*(T-k),)
            steps.append(torch.full((b * (t_len - k),), k - 1, device=device))  # (B*(T-k),)
        return torch.cat(anchors), targets.reshape(-1, d), torch.cat(positives), torch.cat(steps)

    def forward(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Mean InfoNCE over every valid ``(b, k, t)``.

        Args:
            predictions: ``(B, K, T, D)``; ``predictions[b, k-1, t]`` predicts ``targets[b, t+k]``.
                Entries with ``t + k >= T`` are ignored.
            targets: ``(B, T, D)`` encodings ``z``.

        Returns:
            0-d float32 loss.
        """
        anchors, candidates, positives, _ = self._prepare(predictions, targets)  # (M, D), (B*T, D), (M,)
        scale = 1.0 / self.temperature
        lse, _ = block_logsumexp(anchors, candidates, scale, block_size=self.block_size)  # (M,)
        positive = (anchors * candidates[positives]).sum(-1) * scale  # (M,)
        return (lse - positive).mean()

    @torch.no_grad()
    def accuracy(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Top-1 accuracy per prediction step: ``(K,)`` float32, entry ``k-1`` for ``k`` steps ahead.

        A prediction counts as correct when its true future scores highest among all ``B * T`` candidates
        (ties go to the lowest index). Computed in row blocks, without gradient.
        """
        anchors, candidates, positives, steps = self._prepare(predictions, targets)
        block = self.block_size or auto_block_size(anchors.shape[0], candidates.shape[0])
        correct = torch.empty(anchors.shape[0], device=anchors.device)  # (M,)
        for r0 in range(0, anchors.shape[0], block):
            best = (anchors[r0 : r0 + block] @ candidates.T).argmax(1)  # (R,)
            correct[r0 : r0 + block] = (best == positives[r0 : r0 + block]).float()
        k_max = predictions.shape[1]
        hits = torch.zeros(k_max, device=anchors.device).index_add_(0, steps, correct)  # (K,)
        return hits / torch.bincount(steps, minlength=k_max).float()
