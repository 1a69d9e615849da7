"""Name-to-constructor registry of encoders (backbones), in the style of timm's model registry.

A backbone is an ``nn.Module`` whose ``forward`` maps images ``(B, C, H, W)`` to features ``(B, D)`` and which carries
an ``int`` attribute ``feature_dim`` equal to ``D``. Constructors are registered with :func:`register_backbone`,
whose function name becomes the backbone name, and built with :func:`create_backbone`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from contrastkit.registry import Registry

__all__ = ["Backbone", "BackboneFn", "create_backbone", "list_backbones", "register_backbone"]


@runtime_checkable
class Backbone(Protocol):
    """What every registered constructor returns: an ``nn.Module`` mapping ``(B, C, H, W)`` to ``(B, feature_dim)``."""

    feature_dim: int

    def __call__(self, x: Tensor) -> Tensor: ...


BackboneFn = Callable[..., nn.Module]

_BACKBONES: Registry[BackboneFn] = Registry("backbone")


def register_backbone(fn: BackboneFn) -> BackboneFn:
    """Register a backbone constructor under its function name.

    The constructor is called as ``fn(in_chans=..., small_input=..., **kwargs)`` and must return a module with an
    ``int`` attribute ``feature_dim``.

    Args:
        fn: The constructor; ``fn.__name__`` is the backbone name.

    Returns:
        ``fn`` unchanged, so this can be used as a decorator.

    Raises:
        ValueError: If a backbone of the same name is already registered.
    """
    return _BACKBONES.add(fn.__name__, fn)


def list_backbones() -> list[str]:
    """Names of all registered backbones, sorted."""
    return _BACKBONES.names()


def create_backbone(name: str, in_chans: int = 3, small_input: bool = False, **kwargs) -> Backbone:
    """Build a registered backbone.

    Args:
        name: A name from :func:`list_backbones`.
        in_chans: Number of input image channels ``C``.
        small_input: Use the variant for small images (e.g. 32x32 CIFAR): a stride-1 stem without max pooling for
            ResNets (Chen et al. 2020, SimCLR appendix B.9), 32x32 images in 4x4 patches for ViTs.
        **kwargs: Passed on to the constructor (e.g. ``image_size`` for ViTs).

    Returns:
        The backbone module, with ``feature_dim`` set.

    Raises:
        ValueError: If ``name`` is not registered (the message lists the names and the closest match), or if
            ``in_chans`` is not positive.
    """
    constructor = _BACKBONES.get(name)
    if in_chans < 1:
        raise ValueError(f"in_chans must be positive, got {in_chans}")
    model = constructor(in_chans=in_chans, small_input=small_input, **kwargs)
    if not isinstance(getattr(model, "feature_dim", None), int):
        raise TypeError(f"backbone {name!r} returned a module without an int attribute 'feature_dim'")
    return model
