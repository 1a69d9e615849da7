"""A registry of built-in data sets: ``@register_dataset`` on a builder function names the data set after it.

The function name is the data set name with ``_`` written ``-``::

    @register_dataset(splits=("train", "test"))
    def fashion_mnist(split="train", root=None, download=False) -> Dataset:  # registers "fashion-mnist"
        ...

:func:`~contrastkit.data.load_dataset.load_dataset` looks names up here. The built-in builders
register when their modules are imported, which ``contrastkit/data/__init__.py`` does (as the backbones package does
for backbones): importing anything of ``contrastkit.data`` imports the package first, so every look-up sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from contrastkit.registry import Registry

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RegisteredDataset:
    """One registry entry.

    Attributes:
        name: the data set name (``"fashion-mnist"``).
        builder: ``builder(split=..., root=..., download=..., **options) -> Dataset``.
        splits: the valid splits, or None when the builder does not declare them.
    """

    name: str
    builder: Callable[..., Any]
    splits: tuple[str, ...] | None


_REGISTRY: Registry[RegisteredDataset] = Registry("data set")


def register_dataset(
    fn: F | None = None, *, name: str | None = None, splits: Sequence[str] | None = None
) -> F | Callable[[F], F]:
    """Register a data set builder, as ``@register_dataset`` or ``@register_dataset(splits=(...))``.

    Args:
        fn: the builder; its name with ``_`` -> ``-`` is the data set name.
        name: a name to use instead of the function's.
        splits: the valid ``split`` values; :func:`check_split` and ``load_dataset`` reject others.

    Returns:
        The builder, unchanged.

    Raises:
        ValueError: the name is already taken by another function. Re-registering the same function (same module
            and qualified name, e.g. after ``importlib.reload``) replaces the entry.
    """

    def decorate(builder: F) -> F:
        key = name if name is not None else builder.__name__.replace("_", "-")
        entry = RegisteredDataset(key, builder, tuple(splits) if splits is not None else None)
        _REGISTRY.add(key, entry, source=builder)
        return builder

    if fn is not None:
        return decorate(fn)
    return decorate


def list_datasets() -> list[str]:
    """The registered data set names, sorted."""
    return _REGISTRY.names()


def get_dataset(name: str) -> RegisteredDataset:
    """The registry entry for ``name``.

    Raises:
        KeyError: ``name`` is not registered (``load_dataset`` turns this into a ValueError with suggestions).
    """
    return _REGISTRY.entry(name)


def is_registered(name: str) -> bool:
    """Whether ``name`` is a registered data set name."""
    return name in _REGISTRY


def check_split(name: str, split: str, splits: Sequence[str]) -> None:
    """Raise a ValueError naming ``split`` and the valid ones when ``split`` is not one of ``splits``."""
    if split not in splits:
        valid = ", ".join(repr(s) for s in splits)
        raise ValueError(f"data set {name!r} has no split {split!r}; valid splits: {valid}")
