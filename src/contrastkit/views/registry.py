"""Views recipes by name, for configs: ``@register_views`` on the class; the name is the class name without
``Views``, lower-cased (``MoCoV2Views`` -> ``mocov2``). Registering a name twice is an error."""

from __future__ import annotations

from typing import TypeVar

from contrastkit.registry import Registry
from contrastkit.views.multi_views import MultiViews

V = TypeVar("V", bound=type[MultiViews])
_VIEWS: Registry[type[MultiViews]] = Registry("views recipe")


def register_views(cls: V) -> V:
    """Class decorator adding a :class:`MultiViews` recipe to the registry."""
    if not (isinstance(cls, type) and issubclass(cls, MultiViews)):
        raise TypeError(f"register_views decorates MultiViews subclasses, got {cls!r}")
    return _VIEWS.add(cls.__name__.removesuffix("Views").lower(), cls)


def list_views() -> list[str]:
    """Names of the registered views recipes, sorted."""
    return _VIEWS.names()


def get_views(name: str) -> type[MultiViews]:
    """The recipe class registered as ``name``; an unknown name is refused with the closest one."""
    return _VIEWS.get(name)


def create_views(name: str, channels: int, input_size: int, **params) -> MultiViews:
    """The views recipe ``name`` for ``channels``-channel images viewed at ``input_size`` pixels.

    Args:
        name: A name from :func:`list_views`.
        channels: Channels of the views (1 or 3).
        input_size: Side of the square views, in pixels.
        **params: The recipe's other parameters (its constructor's keywords, e.g. ``crop_scale``).
    """
    return get_views(name)(channels=channels, input_size=input_size, **params)
