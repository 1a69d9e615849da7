"""Supervised contrastive loss (SupCon, L_out)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit.losses.block_logsumexp import block_logsumexp
from contrastkit.losses.distributed import gather_no_grad, gather_with_grad, row_offset
from contrastkit.losses.info_nce import masked_mean
from contrastkit.losses.similarity import normalize
from contrastkit.losses.validation import check_embeddings, check_finite, check_labels, check_temperature


class SupConLoss(nn.Module):
    """Supervised contrastive loss, Khosla et al. 2020, "Supervised Contrastive Learning" (arXiv 2004.11362).

    The L_out form (their eq. 2): every view of every sample is an anchor; its positives are all other views
    with the same label (including its own other views), its denominator all other views. For anchor i with
    positives P(i) and candidates A(i) = all views but i::

        loss_i = -1/|P(i)| * sum_{p in P(i)} log( exp(s_ip / t) / sum_{a in A(i)} exp(s_ia / t) )

    averaged over anchors that have at least one positive (an anchor without one is excluded, never NaN).
    Without labels every sample is its own class, which is SimCLR's NT-Xent over V views.

    Unlike the reference code there is no ``temperature / base_temperature`` factor: the loss is exactly L_out.
    The mean over positives is computed from per-class sums of embeddings, and the denominator with the exact
    row-blocked log-sum-exp, so no N x N matrix is held, in float32 under autocast.

    Args:
        temperature: softmax temperature (> 0).
        gather_distributed: contrast against the views and labels of all ``torch.distributed`` processes, with
            gradients flowing back to their owners.
        block_size: anchor rows per block; ``None`` chooses automatically.
        check_finite: refuse NaN/inf features.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        gather_distributed: bool = False,
        block_size: int | None = None,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        self.temperature = check_temperature(temperature)
        self.gather_distributed = gather_distributed
        self.block_size = block_size
        self.check_finite = check_finite

    def forward(self, features: Tensor, labels: Tensor | None = None) -> Tensor:
        """Compute the loss.

        Args:
            features: ``(N, V, D)`` V views of N samples (``(N, D)`` is read as one view).
            labels: ``(N,)`` class ids; ``None`` makes each sample its own class.

        Returns:
            Scalar loss (float32).
        """
        if isinstance(features, Tensor) and features.dim() == 2:
            features = features[:, None]
        check_embeddings("features", features, dim=3)
        if self.check_finite:
            check_finite("features", features)
        n, views, _ = features.shape
        if labels is None:
            labels = torch.arange(n, device=features.device)
            if self.gather_distributed:  # sample ids unique across processes
                labels = labels + row_offset(n, features.device)
        labels = check_labels("labels", labels, n).to(features.device)
        z = normalize(features)  # (N, V, D) float32
        offset, z_all, labels_all = 0, z, labels
        if self.gather_distributed:
            z_all, offset = gather_with_grad(z)  # (N_total, V, D)
            labels_all = gather_no_grad(labels)  # (N_total,)
        if z_all.shape[0] * views < 2:
            raise ValueError(f"features needs at least 2 views in total to contrast, got shape {tuple(features.shape)}")
        anchors = z.reshape(n * views, -1)  # (NV, D), sample-major
        candidates = z_all.reshape(-1, z.shape[-1])  # (N_total V, D)
        row_labels = labels.repeat_interleave(views)  # (NV,)
        col_labels = labels_all.repeat_interleave(views)  # (N_total V,)
        self_idx = torch.arange(n * views, device=z.device) + offset * views  # (NV,)

        lse, _ = block_logsumexp(
            anchors, candidates, 1.0 / self.temperature, exclude_index=(self_idx,), block_size=self.block_size
        )  # (NV,)
        # Mean positive logit from class sums: (sum of same-class candidates - self) . anchor / count.
        classes, col_class = torch.unique(col_labels, return_inverse=True)  # (C,), (N_total V,)
        class_sum = candidates.new_zeros(len(classes), candidates.shape[1]).index_add(0, col_class, candidates)
        class_count = torch.bincount(col_class, minlength=len(classes))  # (C,)
        row_class = torch.searchsorted(classes, row_labels)  # (NV,)
        num_pos = class_count[row_class] - 1  # (NV,)
        pos_sum = (anchors * class_sum[row_class]).sum(-1) - (anchors * anchors).sum(-1)  # (NV,)
        mean_pos = pos_sum / (self.temperature * num_pos.clamp(min=1))  # (NV,)
        return masked_mean(lse - mean_pos, num_pos > 0)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather_distributed={self.gather_distributed}"
