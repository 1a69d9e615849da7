"""One registry for every kind of named component (backbones, methods, views recipes, data sets).

Names map to constructors or classes, as in timm's model registry: a decorator registers, the name comes from the
function or class, and a name taken by something else is an error (registering the same function again, after an
``importlib.reload``, replaces its entry). An unknown name is refused with the closest registered one and the list.
"""

from __future__ import annotations

import difflib
from typing import Generic, TypeVar

T = TypeVar("T")


def origin(obj: object) -> str:
    """``module.qualname`` of a function or class: where a registered entry came from."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def did_you_mean(name: str, names: list[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``names``, or an empty string."""
    close = difflib.get_close_matches(name, names, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


class Registry(Generic[T]):
    """Names to entries of one kind.

    Args:
        kind: what an entry is, for messages (``"backbone"``, ``"views recipe"``).
        plural: the plural for the list in messages (default ``kind + "s"``).
    """

    def __init__(self, kind: str, plural: str | None = None) -> None:
        self.kind, self.plural = kind, plural or f"{kind}s"
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def add(self, name: str, entry: T, source: object | None = None) -> T:
        """Register ``entry`` as ``name``; ``source`` (default ``entry``) says where it came from.

        Raises:
            ValueError: ``name`` is taken by an entry from elsewhere (both are named).
        """
        where = origin(entry if source is None else source)
        if name in self._entries and self._origins[name] != where:
            raise ValueError(
                f"{self.kind} {name!r} is already registered by {self._origins[name]}; cannot register {where} under "
                "the same name (rename it)"
            )
        self._entries[name], self._origins[name] = entry, where
        return entry

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            ValueError: an unknown name, with the closest registered one and all of them.
        """
        if name not in self._entries:
            raise ValueError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, self.names())} Available {self.plural}: "
                f"{', '.join(self.names())}"
            )
        return self._entries[name]

    def copy(self) -> Registry[T]:
        """A registry with the same entries (tests register into a copy and leave the real one untouched)."""
        other: Registry[T] = Registry(self.kind, self.plural)
        other._entries, other._origins = dict(self._entries), dict(self._origins)
        return other

    def entry(self, name: str) -> T:
        """The entry registered as ``name``; a KeyError when there is none (for callers with their own message)."""
        return self._entries[name]
