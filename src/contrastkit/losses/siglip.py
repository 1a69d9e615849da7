"""SigLIP: the pairwise sigmoid loss of Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training".

arXiv 2303.15343. Every image-text pair ``(i, j)`` of the batch is an independent binary classification, with
logit ``l_ij = t * x_i · y_j + b`` (``t = exp(t')`` a learnable scale, ``b`` a learnable bias) and label
``z_ij = +1`` on the diagonal, ``-1`` elsewhere::

    L = -1/N * sum_ij log sigmoid(z_ij * l_ij)

There is no softmax, so no normalisation over the batch. Since ``-log sigmoid(l) = -log sigmoid(-l) - l``, the
loss is written without an ``N x N`` label matrix as ``(sum_ij -log sigmoid(-l_ij) - sum_i l_ii) / N``.
When the batch is large the ``N x N`` logits are built one row block at a time under activation
checkpointing, so the memory held for backward is ``O(N * D)`` instead of several ``N x N`` float32 matrices.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .block_logsumexp import auto_block_size
from .distributed import gather_with_grad
from .similarity import normalize as l2_normalize
from .validation import check_embeddings, check_finite


def _all_pairs_sum(img: Tensor, txt: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    """``sum_ij -log sigmoid(-(scale * img_i · txt_j + bias))``, every pair taken as a negative."""
    logits = (img @ txt.T) * scale + bias  # (R, K)
    return -F.logsigmoid(-logits).sum()


class SigLIPLoss(nn.Module):
    """Sigmoid image-text loss of SigLIP (Zhai et al. 2023, arXiv 2303.15343).

    Numerically equal to ``open_clip.loss.SigLipLoss`` (single process) on the same normalised features.

    Args:
        init_logit_scale: initial (exponentiated) logit scale ``t``; stored as ``log_logit_scale = log t``.
        init_logit_bias: initial logit bias ``b`` (the paper's ``-10`` keeps early training stable).
        learnable: if True the scale and bias are ``nn.Parameter``s, otherwise buffers.
        normalize: L2-normalise the features (in float32) before the dot products.
        gather_distributed: inside a ``torch.distributed`` process group, score the local images against the
            texts of all processes (gathered with gradient). Each process sums over its ``n`` local images
            times all texts, positives at column ``offset + i``, and divides by its local ``n``; DDP's
            averaging of parameter gradients over the ``W`` processes then gives exactly the gradients of one
            process running this loss on the concatenated batch (when every process holds the same ``n``).
        check_finite: refuse NaN/inf features (one extra pass over the inputs).
        block_size: image rows per block of logits; ``None`` picks one so a block holds about 4M values. When
            the batch needs more than one block (and grad is enabled) each block is checkpointed.
    """

    def __init__(
        self,
        init_logit_scale: float = 10.0,
        init_logit_bias: float = -10.0,
        learnable: bool = True,
        normalize: bool = True,
        gather_distributed: bool = False,
        check_finite: bool = True,
        block_size: int | None = None,
    ) -> None:
        super().__init__()
        scale, bias = float(init_logit_scale), float(init_logit_bias)
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"init_logit_scale must be a finite number > 0, got {init_logit_scale!r}")
        if not math.isfinite(bias):
            raise ValueError(f"init_logit_bias must be a finite number, got {init_logit_bias!r}")
        if block_size is not None and block_size < 1:
            raise ValueError(f"block_size must be >= 1 or None, got {block_size!r}")
        log_scale = torch.tensor(math.log(scale))
        bias_t = torch.tensor(bias)
        if learnable:
            self.log_logit_scale = nn.Parameter(log_scale)
            self.logit_bias = nn.Parameter(bias_t)
        else:
            self.register_buffer("log_logit_scale", log_scale)
            self.register_buffer("logit_bias", bias_t)
        self.normalize = normalize
        self.gather_distributed = gather_distributed
        self.check_finite = check_finite
        self.block_size = block_size

    def forward(
        self,
        image_features: Tensor,
        text_features: Tensor,
        logit_scale: Tensor | float | None = None,
        logit_bias: Tensor | float | None = None,
    ) -> Tensor:
        """Mean (over images) SigLIP loss.

        Args:
            image_features: ``(N, D)`` image embeddings.
            text_features: ``(N, D)`` text embeddings; row ``i`` pairs with image ``i``.
            logit_scale: optional already-exponentiated scale (as open_clip passes
                ``model.logit_scale.exp()``); overrides the module's own.
            logit_bias: optional bias; overrides the module's own.

        Returns:
            0-d float32 loss.
        """
        check_embeddings("image_features", image_features)
        check_embeddings("text_features", text_features)
        if image_features.shape != text_features.shape:  # dtypes may differ: both are computed in float32
            raise ValueError(
                "image_features and text_features must have matching shapes, got "
                f"{tuple(image_features.shape)} and {tuple(text_features.shape)}"
            )
        n = image_features.shape[0]
        if n == 0:
            raise ValueError("image_features must hold at least one pair, got shape (0, D)")
        if self.check_finite:
            check_finite("image_features", image_features)
            check_finite("text_features", text_features)
        device = image_features.device
        with torch.autocast(device_type=device.type, enabled=False):
            scale = self.log_logit_scale.float().exp() if logit_scale is None else logit_scale
            bias = self.logit_bias if logit_bias is None else logit_bias
            scale = torch.as_tensor(scale, device=device).float()  # ()
            bias = torch.as_tensor(bias, device=device).float()  # ()
            if self.normalize:
                img, txt = l2_normalize(image_features), l2_normalize(text_features)  # (N, D)
            else:
                img, txt = image_features.float(), text_features.float()  # (N, D)
            txt_all, offset = gather_with_grad(txt) if self.gather_distributed else (txt, 0)  # (K, D)
            positive = (img * txt_all[offset : offset + n]).sum(-1) * scale + bias  # (N,)
            block = self.block_size or auto_block_size(n, txt_all.shape[0])
            if block >= n:
                every_pair = _all_pairs_sum(img, txt_all, scale, bias)  # ()
            else:
                use_ckpt = torch.is_grad_enabled()
                every_pair = img.new_zeros(())
                for r0 in range(0, n, block):
                    args = (img[r0 : r0 + block], txt_all, scale, bias)
                    if use_ckpt:
                        part = checkpoint(_all_pairs_sum, *args, use_reentrant=False)
                    else:
                        part = _all_pairs_sum(*args)
                    every_pair = every_pair + part
            return (every_pair - positive.sum()) / n
