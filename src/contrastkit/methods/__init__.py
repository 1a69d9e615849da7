"""Self-supervised methods, each a plain ``nn.Module`` composing a backbone, heads and a loss.

``method(views, labels=None)`` returns a :class:`MethodOutput` (loss and metrics); ``method.embed(x)`` gives the
backbone features. Methods are registered by name for the config layer: :func:`create_method`, :func:`list_methods`.
"""

from contrastkit.methods.barlowtwins import BarlowTwins
from contrastkit.methods.byol import BYOL
from contrastkit.methods.clip import CLIP
from contrastkit.methods.cpc import CPC
from contrastkit.methods.dino import DINO
from contrastkit.methods.method import Method, MethodOutput, Progress
from contrastkit.methods.moco import MoCo
from contrastkit.methods.registry import create_method, get_method, list_methods, method_params, register_method
from contrastkit.methods.simclr import SimCLR
from contrastkit.methods.simsiam import SimSiam
from contrastkit.methods.supcon import SupCon
from contrastkit.methods.text_pairs import TextPairs
from contrastkit.methods.vicreg import VICReg

__all__ = [
    "BYOL",
    "CLIP",
    "CPC",
    "DINO",
    "BarlowTwins",
    "Method",
    "MethodOutput",
    "MoCo",
    "Progress",
    "SimCLR",
    "SimSiam",
    "SupCon",
    "TextPairs",
    "VICReg",
    "create_method",
    "get_method",
    "list_methods",
    "method_params",
    "register_method",
]
