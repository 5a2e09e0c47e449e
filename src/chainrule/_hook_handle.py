"""torch.utils.hooks.RemovableHandle: the one handle every ``register_*_hook`` returns (modules',
optimizers', tensors' and autograd nodes'). Plain Python so that autograd can use it; its public
home (and ``__module__``, which pickles name) is ``chainrule.utils.hooks``."""

import weakref
from collections import OrderedDict
from typing import Any

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """Removes the hook it was made for from ``hooks_dict`` (where the hook is kept under this
    handle's ``id``) and from each ``extra_dict`` (tables of per-hook flags keyed the same way).
    Both are held weakly, as torch's: a handle does not keep a dead module's hooks alive."""

    id: int
    next_id: int = 0

    def __init__(self, hooks_dict: Any, *, extra_dict: Any = None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        if extra_dict is None:  # (most hooks: nothing more to test)
            self.extra_dict_ref: tuple = ()
        elif isinstance(extra_dict, dict):
            self.extra_dict_ref = (weakref.ref(extra_dict),)
        elif isinstance(extra_dict, list):
            self.extra_dict_ref = tuple([weakref.ref(d) for d in extra_dict])
        else:
            self.extra_dict_ref = ()

    def remove(self) -> None:
        hooks_dict = self.hooks_dict_ref()
        if hooks_dict is not None:
            hooks_dict.pop(self.id, None)
        for ref in self.extra_dict_ref:
            extra_dict = ref()
            if extra_dict is not None:
                extra_dict.pop(self.id, None)

    def __getstate__(self):
        return (self.hooks_dict_ref(), self.id, tuple(ref() for ref in self.extra_dict_ref))

    def __setstate__(self, state) -> None:
        # a handle unpickled without its table holds a dead reference (remove() does nothing)
        self.hooks_dict_ref = weakref.ref(OrderedDict() if state[0] is None else state[0])
        self.id = state[1]
        RemovableHandle.next_id = max(RemovableHandle.next_id, self.id + 1)
        if len(state) < 3 or state[2] is None:
            self.extra_dict_ref = ()
        else:
            self.extra_dict_ref = tuple(weakref.ref(d) for d in state[2])

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, type: Any, value: Any, tb: Any) -> None:
        self.remove()


RemovableHandle.__module__ = "chainrule.utils.hooks"  # where torch defines it; that module exports it
