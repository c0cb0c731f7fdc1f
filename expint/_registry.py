"""Name → object look-up with the errors users should see (schemes, sampling methods)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

T = TypeVar("T")


def lookup(value: Any, registry: Mapping[str, T], cls: type, what: str, example: str) -> T:
    """Return ``value`` if it is a ``cls`` instance, else ``registry[value]``.

    A class instead of an instance is a ``TypeError``; an unknown name is a
    ``ValueError`` listing the valid names.
    """
    if isinstance(value, cls):
        return cast(T, value)
    if isinstance(value, type):
        raise TypeError(
            f"{what} must be a name or an instance, not a class "
            f"(pass an instance, not the class {value.__name__})"
        )
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a name such as {example!r}, got {type(value).__name__}")
    try:
        return registry[value]
    except KeyError:
        raise ValueError(f"unknown {what} {value!r}; valid {what}s: {', '.join(registry)}") from None
