"""Views: the augmentation pipelines contrastive methods train on, described once as :class:`ViewSpec` data.

A :class:`MultiViews` holds one spec per view and runs them per sample (``torchvision.transforms.v2``, for a
``Dataset``) or on a whole uint8 batch (``MultiViews.batch``, the batched engine). The recipes build the views
of SimCLR, MoCo v2, BYOL, DINO, CLIP and supervised training.
"""

from contrastkit.views.batched import apply_view
from contrastkit.views.byol_views import BYOLViews
from contrastkit.views.clip_views import CLIPViews
from contrastkit.views.dino_views import DINOViews
from contrastkit.views.moco_v2_views import MoCoV2Views
from contrastkit.views.multi_views import MultiViews
from contrastkit.views.registry import create_views, get_views, list_views
from contrastkit.views.sample_pipeline import build_transform
from contrastkit.views.simclr_views import SimCLRViews
from contrastkit.views.supervised_views import SupervisedViews
from contrastkit.views.view_spec import ViewSpec

__all__ = [
    "BYOLViews",
    "CLIPViews",
    "DINOViews",
    "MoCoV2Views",
    "MultiViews",
    "SimCLRViews",
    "SupervisedViews",
    "ViewSpec",
    "apply_view",
    "build_transform",
    "create_views",
    "get_views",
    "list_views",
]
