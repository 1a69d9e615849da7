"""Contrastive and non-contrastive objectives, each a plain ``torch.nn.Module`` taking embeddings.

Importing this package does not import Lightning or any training code.
"""

from contrastkit.losses.block_logsumexp import block_logsumexp
from contrastkit.losses.clip import CLIPLoss
from contrastkit.losses.info_nce import InfoNCELoss
from contrastkit.losses.sup_con import SupConLoss

__all__ = [
    "CLIPLoss",
    "InfoNCELoss",
    "SupConLoss",
    "block_logsumexp",
]
