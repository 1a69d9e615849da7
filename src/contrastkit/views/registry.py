"""Views recipes by name, for configs: ``@register_views`` on the class; the name is the class name without
``Views``, lower-cased (``MoCoV2Views`` -> ``mocov2``). Registering a name twice is an error."""

from __future__ import annotations

import difflib
from typing import TypeVar

from contrastkit.views.multi_views import MultiViews

V = TypeVar("V", bound=type[MultiViews])
_VIEWS: dict[str, type[MultiViews]] = {}


def register_views(cls: V) -> V:
    """Class decorator adding a :class:`MultiViews` recipe to the registry."""
    if not (isinstance(cls, type) and issubclass(cls, MultiViews)):
        raise TypeError(f"register_views decorates MultiViews subclasses, got {cls!r}")
    key = cls.__name__.removesuffix("Views").lower()
    if key in _VIEWS:
        raise ValueError(f"views recipe {key!r} is already registered (by {_VIEWS[key].__qualname__})")
    _VIEWS[key] = cls
    return cls


def list_views() -> list[str]:
    """Names of the registered views recipes, sorted."""
    return sorted(_VIEWS)


def get_views(name: str) -> type[MultiViews]:
    """The recipe class registered as ``name``; an unknown name is refused with the closest one."""
    if name not in _VIEWS:
        close = difflib.get_close_matches(name, list(_VIEWS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown views recipe {name!r}.{hint} Registered: {', '.join(list_views())}")
    return _VIEWS[name]
