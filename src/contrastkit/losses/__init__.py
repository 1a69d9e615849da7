"""Contrastive and non-contrastive objectives, each a plain ``torch.nn.Module`` taking embeddings.

Importing this package does not import Lightning or any training code.
"""

from contrastkit.losses.barlow_twins import BarlowTwinsLoss
from contrastkit.losses.block_logsumexp import block_logsumexp
from contrastkit.losses.clip import CLIPLoss
from contrastkit.losses.cpc import CPCLoss
from contrastkit.losses.dino import DINOLoss
from contrastkit.losses.info_nce import InfoNCELoss
from contrastkit.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from contrastkit.losses.negative_cosine_similarity import NegativeCosineSimilarity
from contrastkit.losses.siglip import SigLIPLoss
from contrastkit.losses.sup_con import SupConLoss
from contrastkit.losses.vicreg import VICRegLoss

__all__ = [
    "BarlowTwinsLoss",
    "CLIPLoss",
    "CPCLoss",
    "DINOLoss",
    "InfoNCELoss",
    "MultipleNegativesRankingLoss",
    "NegativeCosineSimilarity",
    "SigLIPLoss",
    "SupConLoss",
    "VICRegLoss",
    "block_logsumexp",
]
