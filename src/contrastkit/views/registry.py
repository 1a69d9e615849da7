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
