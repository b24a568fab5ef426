"""Per-process caches, so trials in one process read and prepare each dataset once.

Two levels: the raw arrays as read from their source (keyed by what identifies the source), and
the prepared CPU splits (keyed by every setting that changes them). A sweep that varies
``data.n_train`` or ``data.label_noise`` re-prepares from cached raw arrays without re-reading
files. Both are small LRU caches, so a long sweep over many data settings does not grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from ._types import RawData, Splits

__all__ = ["LRUCache", "clear_cache", "prepared_cache", "raw_cache"]

V = TypeVar("V")


class LRUCache(Generic[V]):
    """A small least-recently-used mapping.

    Args:
        maxsize: Entries kept; the least recently used one is dropped beyond it.

    Example:
        >>> c: LRUCache[int] = LRUCache(maxsize=1)
        >>> c.get_or_make("a", lambda: 1), c.get_or_make("a", lambda: 2)
        (1, 1)
    """

    def __init__(self, *, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize={maxsize!r}: allowed an integer >= 1")
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, V] = OrderedDict()

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """Return the value cached under ``key``, calling ``make()`` to create it on a miss."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self._items[key] = value
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Drop every entry."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


raw_cache: LRUCache[RawData] = LRUCache(maxsize=2)
prepared_cache: LRUCache[Splits] = LRUCache(maxsize=16)  # a population's seeds


def clear_cache() -> None:
    """Forget every dataset loaded in this process (the next load reads its files again)."""
    raw_cache.clear()
    prepared_cache.clear()
