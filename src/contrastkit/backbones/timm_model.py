"""Any timm model as an encoder: ``timm.create_model(name, num_classes=0)``, pooled features ``(B, D)``.

Wightman, "PyTorch Image Models" (github.com/huggingface/pytorch-image-models). timm is an optional dependency
(``pip install contrastkit[import]``); it is imported only when such an encoder is built.
"""

from __future__ import annotations

from torch import nn

from contrastkit.backbones.registry import register_backbone


@register_backbone
def timm_model(in_chans: int = 3, small_input: bool = False, model_name: str = "resnet50") -> nn.Module:
    """timm's ``model_name`` (randomly initialised, no download) with its classifier removed.

    Args:
        in_chans: input channels (timm adapts the stem).
        small_input: not supported (the architecture is timm's as published).
        model_name: a name from ``timm.list_models()``.
    """
    try:
        import timm
    except ImportError:
        raise ImportError("this encoder needs timm: pip install 'contrastkit[import]' (or pip install timm)") from None
    if small_input:
        raise ValueError("timm models are imported as published: no small-input stem")
    if not timm.is_model(model_name):
        raise ValueError(f"unknown timm model {model_name!r} (timm.list_models() lists them)")
    model = timm.create_model(model_name, pretrained=False, num_classes=0, in_chans=in_chans)
    model.feature_dim = int(getattr(model, "head_hidden_size", None) or model.num_features)  # pooled output size
    return model
