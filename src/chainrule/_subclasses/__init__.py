"""torch._subclasses: torch's tensor subclasses for tracing (``FakeTensor``, ``FunctionalTensor``).

chainrule traces nothing with stand-in tensors, so only the question libraries ask of a tensor is
answered: ``fake_tensor.is_fake`` (kornia asks it before a data-dependent branch).
"""

from . import fake_tensor

__all__ = ["fake_tensor"]
