"""Methods by name: ``@register_method`` on the class, ``create_method("simclr", backbone, temperature=0.2)``.

The registered name is the class's name in lower case (``BarlowTwins`` -> ``barlowtwins``); registering a name
twice is an error. :func:`method_params` lists a method's constructor parameters with their types and defaults:
the config layer validates a recipe's ``method:`` section against it.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from torch import nn

from contrastkit.methods.method import Method
from contrastkit.registry import Registry, did_you_mean

M = TypeVar("M", bound=type[Method])
_METHODS: Registry[type[Method]] = Registry("method")


def register_method(cls: M) -> M:
    """Class decorator adding a :class:`Method` subclass to the registry under ``cls.__name__.lower()``."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"register_method decorates Method subclasses, got {cls!r}")
    return _METHODS.add(cls.__name__.lower(), cls)


def list_methods() -> list[str]:
    """Names of the registered methods, sorted."""
    return _METHODS.names()


def get_method(name: str) -> type[Method]:
    """The class registered as ``name``; an unknown name is refused with the closest registered one."""
    return _METHODS.get(name)


def method_params(name: str) -> dict[str, inspect.Parameter]:
    """The constructor parameters of method ``name`` other than ``backbone`` (name -> Parameter)."""
    signature = inspect.signature(get_method(name).__init__)
    return {
        p.name: p
        for p in signature.parameters.values()
        if p.name not in ("self", "backbone") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def create_method(name: str, backbone: nn.Module, **params: Any) -> Method:
    """Build method ``name`` around ``backbone``; an unknown parameter is refused with the closest valid one."""
    valid = method_params(name)
    for key in params:
        if key not in valid:
            hint = did_you_mean(key, list(valid))
            raise ValueError(f"method {name!r} has no parameter {key!r}.{hint} Valid: {', '.join(valid)}")
    return get_method(name)(backbone, **params)
