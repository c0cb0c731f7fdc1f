"""The one cache policy of the library: a small bounded map, least recently used first out.

Operators cache φ-coefficients per ``(h, c[, t])`` and the steppers cache whole steps'
coefficient sets per ``(h[, nodes, t])``.  A fixed-step run hits one entry every step;
a variable grid hits a few; the bound keeps a long adaptive-looking grid from holding
every coefficient set it ever used (dense operators hold ``n × n`` matrices).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LRUCache:
    """At most ``size`` entries; `get` refreshes an entry, `put` evicts the stalest."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, usable: Callable[[Any], bool] | None = None) -> Any:
        """The entry for ``key``, or ``None`` if absent or ``usable(entry)`` is false."""
        hit = self._data.get(key)
        if hit is None or (usable is not None and not usable(hit)):
            return None
        self._data.move_to_end(key)
        return hit

    def put(self, key: Hashable, value: Any) -> Any:
        """Store ``value`` (replacing any entry for ``key``) and return it."""
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.size:
            self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
