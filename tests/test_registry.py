"""The shared registry: duplicates refused by origin, a re-registration of the same thing replaces it, unknown names
get the closest one and the list."""

from __future__ import annotations

import pytest

from contrastkit.registry import Registry


def first():
    return 1


def second():
    return 2


def test_duplicates_unknown_names_and_reloads():
    registry: Registry = Registry("widget")
    registry.add("first", first)
    with pytest.raises(ValueError, match=r"widget 'first' is already registered by .*first; cannot register .*second"):
        registry.add("first", second)
    assert registry.get("first") is first  # the refused entry changed nothing
    registry.add("first", first)  # the same function again (a module reload) replaces its entry
    with pytest.raises(ValueError, match=r"unknown widget 'frist'\. Did you mean 'first'\? Available widgets: first"):
        registry.get("frist")
    with pytest.raises(KeyError):
        registry.entry("zzz")
    copy = registry.copy()
    copy.add("second", second)
    assert registry.names() == ["first"] and copy.names() == ["first", "second"] and "second" in copy
