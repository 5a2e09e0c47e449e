"""Reverse-mode automatic differentiation: Function, backward/grad, grad modes, checks."""

from .._torch_function import handle_torch_function, has_torch_function  # noqa: F401  (torch.autograd has them too)
from . import forward_ad, functional, graph, profiler
from .anomaly import detect_anomaly, set_detect_anomaly
from .engine import backward, grad
from .engine import is_checkpoint_valid as _is_checkpoint_valid  # noqa: F401  (torch.autograd's private name)
from .engine_options import (
           enforce_grad_layout_policy,
           is_multithreading_enabled,
           is_view_replay_enabled,
           set_multithreading_enabled,
           variable,
)
from .function import Function, Node, once_differentiable
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["Function", "Node", "backward", "grad", "gradcheck", "gradgradcheck", "GradcheckError",
           "functional", "profiler", "forward_ad", "graph", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "detect_anomaly", "set_detect_anomaly", "once_differentiable",
           "set_multithreading_enabled", "is_multithreading_enabled", "is_view_replay_enabled", "variable",
           "enforce_grad_layout_policy"]
# chainrule.autograd.explain is attached by chainrule/__init__.py: viz sits above autograd
