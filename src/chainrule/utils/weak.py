"""torch.utils.weak: dictionaries keyed by tensors by identity, that do not keep their keys alive.

A tensor's ``==`` is elementwise, so a plain ``WeakKeyDictionary`` cannot hold tensors; these
compare keys by ``id`` and drop an entry when its key is collected (torch's LoggingTensor numbers
the tensors it logs with one).
"""

from __future__ import annotations

import weakref
from collections.abc import MutableMapping

__all__ = ["WeakIdKeyDictionary", "WeakTensorKeyDictionary"]


class WeakIdKeyDictionary(MutableMapping):
    """A mapping whose keys are held weakly and compared by identity."""

    def __init__(self, mapping=None) -> None:
        self._entries: dict[int, tuple[weakref.ref, object]] = {}
        if mapping is not None:
            self.update(mapping)

    def _forget(self, key_id: int, reference: weakref.ref) -> None:
        # the id may already name a newer key stored after this one was collected
        entry = self._entries.get(key_id)
        if entry is not None and entry[0] is reference:
            del self._entries[key_id]

    def __setitem__(self, key, value) -> None:
        entries = weakref.ref(self)

        def forget(reference, key_id=id(key)):
            owner = entries()
            if owner is not None:
                owner._forget(key_id, reference)

        self._entries[id(key)] = (weakref.ref(key, forget), value)

    def __getitem__(self, key):
        entry = self._entries.get(id(key))
        if entry is None or entry[0]() is not key:
            raise KeyError(key)
        return entry[1]

    def __delitem__(self, key) -> None:
        self[key]  # KeyError when absent
        del self._entries[id(key)]

    def __contains__(self, key) -> bool:
        entry = self._entries.get(id(key))
        return entry is not None and entry[0]() is key

    def __iter__(self):
        for reference, _ in list(self._entries.values()):
            key = reference()
            if key is not None:
                yield key

    def __len__(self) -> int:
        return sum(1 for reference, _ in self._entries.values() if reference() is not None)


WeakTensorKeyDictionary = WeakIdKeyDictionary
