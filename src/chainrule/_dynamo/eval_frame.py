"""chainrule._dynamo.eval_frame: where torch keeps the class of a compiled module.

Libraries ask ``isinstance(model, torch._dynamo.eval_frame.OptimizedModule)`` to see whether a
model came from ``torch.compile`` (accelerate's unwrap_model, peft, transformers); chainrule's
``compile`` wraps a Module in the same class.
"""

from ..compiler import OptimizedModule

__all__ = ["OptimizedModule"]
