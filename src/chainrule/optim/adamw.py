"""torch.optim.adamw: where torch defines AdamW (``from torch.optim.adamw import AdamW``, and its
``__module__``, which messages naming the class show, as higher's "Optimizer type <class
'torch.optim.adamw.AdamW'> not supported"). chainrule's AdamW is Adam with decoupled weight decay,
defined beside Adam; this module is its home name."""

from .adam import Adam, AdamW  # noqa: F401  (torch.optim.adamw has Adam too)

__all__ = ["AdamW"]

AdamW.__module__ = __name__
