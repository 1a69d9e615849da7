"""Any torchvision classification model as an encoder: its classifier replaced by the identity.

For encoders brought in with ``contrastkit import-encoder torchvision:ARCH --weights FILE`` (ResNets, ViTs,
ConvNeXts, EfficientNets, ...): the architecture is rebuilt by name with ``torchvision.models.get_model`` (no
weights downloaded) and the file's weights are loaded into it.
"""

from __future__ import annotations

from torch import nn

from contrastkit.backbones.registry import register_backbone

HEAD_ATTRIBUTES = ("fc", "heads", "classifier", "head")  # where torchvision models keep their classifier


def classifier_attribute(model: nn.Module) -> str:
    """The name of the model's classifier attribute (``fc`` for ResNets, ``heads`` for ViTs, ...)."""
    for name in HEAD_ATTRIBUTES:
        if isinstance(getattr(model, name, None), nn.Module):
            return name
    raise ValueError(f"{type(model).__name__}: no classifier among {HEAD_ATTRIBUTES}; not a classification model")


def _in_features(head: nn.Module) -> int:
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"classifier {type(head).__name__} has no Linear layer to read the feature size from")
    return int(linears[-1].in_features)


@register_backbone
def torchvision_model(in_chans: int = 3, small_input: bool = False, arch: str = "resnet50") -> nn.Module:
    """torchvision's ``arch`` (randomly initialised), returning the features its classifier reads ``(B, D)``.

    Args:
        in_chans: must be 3 (torchvision's models take RGB).
        small_input: not supported (the architecture is torchvision's as published).
        arch: a name from ``torchvision.models.list_models(module=torchvision.models)``.
    """
    import torchvision

    if in_chans != 3 or small_input:
        raise ValueError("torchvision models are imported as published: 3 input channels, no small-input stem")
    names = torchvision.models.list_models(module=torchvision.models)
    if arch not in names:
        raise ValueError(f"unknown torchvision classification model {arch!r}; e.g. {', '.join(names[:8])}, ...")
    model = torchvision.models.get_model(arch, weights=None)
    name = classifier_attribute(model)
    model.feature_dim = _in_features(getattr(model, name))
    setattr(model, name, nn.Identity())
    model.removed_head = name  # its weights in a checkpoint start with "<name>."
    return model
