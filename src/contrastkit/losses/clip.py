"""CLIP's symmetric image-text contrastive loss."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from contrastkit.losses.block_logsumexp import block_logsumexp
from contrastkit.losses.distributed import gather_with_grad
from contrastkit.losses.similarity import normalize
from contrastkit.losses.validation import check_batch, check_pair


class CLIPLoss(nn.Module):
    """Symmetric InfoNCE over image-text pairs, Radford et al. 2021, "Learning Transferable Visual Models From
    Natural Language Supervision" (arXiv 2103.00020).

    With logits ``logit_scale * img @ txt.T`` (N x N, cosine similarities), the loss is the mean of the
    cross-entropy of each image against all texts and of each text against all images, the matching pair being
    the target. Computed with the exact row-blocked log-sum-exp (no N x N matrix held), in float32.

    The logit scale is either owned here (``learnable=True``: a parameter ``log_logit_scale`` initialised at
    ``log(1 / 0.07)`` as in CLIP; the scale used is ``exp`` of it clamped at ``max_logit_scale``) or passed to
    ``forward`` by the model that owns it (``logit_scale=model.logit_scale.exp()``, open_clip's convention).

    Args:
        init_logit_scale: initial scale (CLIP: 1 / 0.07).
        learnable: own the scale as a trainable parameter (else a fixed buffer).
        max_logit_scale: the scale is clamped at this value (CLIP: 100).
        normalize: L2-normalise the features (set False if they already are).
        gather_distributed: contrast local images/texts against those of all ``torch.distributed`` processes,
            with gradients flowing back; with DDP's averaging, gradients equal one process on the whole batch.
        block_size: rows per block; ``None`` chooses automatically.
        check_finite: refuse NaN/inf features.
    """

    def __init__(
        self,
        init_logit_scale: float = 1 / 0.07,
        learnable: bool = True,
        max_logit_scale: float = 100.0,
        normalize: bool = True,
        gather_distributed: bool = False,
        block_size: int | None = None,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        if not init_logit_scale > 0 or not max_logit_scale > 0:
            raise ValueError(
                f"init_logit_scale and max_logit_scale must be > 0, got {init_logit_scale} and {max_logit_scale}"
            )
        log_scale = torch.tensor(math.log(init_logit_scale))
        if learnable:
            self.log_logit_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_logit_scale", log_scale)
        self.max_logit_scale = float(max_logit_scale)
        self.normalize = normalize
        self.gather_distributed = gather_distributed
        self.block_size = block_size
        self.check_finite = check_finite

    @property
    def logit_scale(self) -> Tensor:
        """The scale in use: ``exp(log_logit_scale)`` clamped at ``max_logit_scale``."""
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale)

    def forward(
        self, image_features: Tensor, text_features: Tensor, logit_scale: Tensor | float | None = None
    ) -> Tensor:
        """Compute the loss.

        Args:
            image_features: ``(N, D)`` image embeddings.
            text_features: ``(N, D)`` text embeddings, row i the caption of image i.
            logit_scale: the (already exponentiated) scale, overriding the owned one.

        Returns:
            Scalar loss (float32).
        """
        check_pair("image_features", image_features, "text_features", text_features, finite=self.check_finite)
        scale = self.logit_scale if logit_scale is None else logit_scale
        if isinstance(scale, Tensor):
            scale = scale.float().reshape(())
        elif not scale > 0:
            raise ValueError(f"logit_scale must be > 0, got {scale}")
        img = normalize(image_features) if self.normalize else image_features.float()  # (N, D)
        txt = normalize(text_features) if self.normalize else text_features.float()  # (N, D)
        img_all, txt_all = img, txt
        if self.gather_distributed:
            img_all, _ = gather_with_grad(img)  # (N_total, D)
            txt_all, _ = gather_with_grad(txt)
        check_batch("image_features", img_all.shape[0])
        pos = (img * txt).sum(-1) * scale  # (N,)
        lse_i2t, _ = block_logsumexp(img, txt_all, scale, block_size=self.block_size)  # (N,)
        lse_t2i, _ = block_logsumexp(txt, img_all, scale, block_size=self.block_size)  # (N,)
        return ((lse_i2t - pos).mean() + (lse_t2i - pos).mean()) / 2

    def extra_repr(self) -> str:
        return f"max_logit_scale={self.max_logit_scale}, gather_distributed={self.gather_distributed}"
