"""The one cache policy of the library: a small bounded map, least recently used first out.

Operators cache φ-coefficients per ``(h, c[, t])`` and the steppers cache whole steps'
coefficient sets per ``(h[, nodes, t])``.  A fixed-step run hits one entry every step;
a variable grid hits a few; the bound keeps a long adaptive-looking grid from holding
every coefficient set it ever used (dense operators hold ``n × n`` matrices).

Solves on several Python threads may share an operator (one problem, many initial
conditions or step sizes), so another thread may evict the entry a lookup just found,
or the one a store just made, before it is marked fresh: each `OrderedDict` operation is
atomic, and the cache tolerates that interleaving instead of taking a lock (a lock
made a lookup 2.4–4× as costly, about 0.2 → 0.4–0.8 µs, which a small problem pays
several times a step).  A value is computed outside the cache; two threads that miss the same key both
compute it, and the second store wins.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LRUCache:
    """At most ``size`` entries; `get` refreshes an entry, `put` evicts the stalest.
    Safe to share between threads (module docstring)."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, usable: Callable[[Any], bool] | None = None) -> Any:
        """The entry for ``key``, or ``None`` if absent or ``usable(entry)`` is false."""
        hit = self._data.get(key)
        if hit is None or (usable is not None and not usable(hit)):
            return None
        try:
            self._data.move_to_end(key)
        except KeyError:  # evicted by another thread since the lookup: still a valid value
            pass
        return hit

    def put(self, key: Hashable, value: Any) -> Any:
        """Store ``value`` (replacing any entry for ``key``) and return it."""
        data = self._data
        data[key] = value
        try:
            data.move_to_end(key)
            while len(data) > self.size:
                data.popitem(last=False)
        except KeyError:  # another thread evicted it (or emptied the cache) meanwhile
            pass
        return value

    def clear(self) -> None:
        """Forget every entry."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
