"""Lazy modules: layers whose input size is inferred from the first batch (torch.nn.LazyLinear, ...).

A Lazy module is built without its input size (``in_features``, ``in_channels``, ``num_features``);
its parameters and buffers start as ``UninitializedParameter``/``UninitializedBuffer``. A forward
pre-hook reads the size off the first input, materialises them, runs the layer's own
``reset_parameters`` and turns the module into its ordinary class (``LazyLinear`` becomes
``Linear``), so the module costs nothing extra afterwards. A state dict saved before that step holds
the uninitialised tensors; loading a materialised checkpoint into a Lazy module takes its shapes.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

from ... import _dtype
from ..._naming import naming_the_class
from ...autograd.grad_mode import no_grad
from ...ops.creation import tensor
from ...tensor import Tensor
from ..parameter import UninitializedBuffer, UninitializedParameter, UninitializedTensorMixin
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
)

__all__ = [
    "LazyModuleMixin", "LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
    "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
    "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
]


def is_lazy(value) -> bool:
    return isinstance(value, UninitializedTensorMixin)


class LazyModuleMixin:
    """``nn.modules.lazy.LazyModuleMixin``: infers parameter shapes from the first forward's input.

    A subclass defines ``initialize_parameters(*args, **kwargs)`` (materialise every uninitialised
    tensor from the forward's arguments) and ``cls_to_become`` (the class the module turns into).
    """

    cls_to_become = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters, with_kwargs=True)

    def has_uninitialized_params(self) -> bool:
        """Whether any parameter or buffer of this module (not its children) is still uninitialised."""
        return any(is_lazy(t) for t in itertools.chain(self._parameters.values(), self._buffers.values()))

    def initialize_parameters(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"initialize_parameters is not implemented for {type(self).__name__}")

    def _infer_parameters(self, module, args, kwargs=None) -> None:
        with no_grad():
            module.initialize_parameters(*args, **(kwargs or {}))
        if module.has_uninitialized_params():
            raise RuntimeError(f"module {self._get_name()} has not been fully initialized")
        module._initialize_hook.remove()
        del module._initialize_hook
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become

    def _apply(self, fn, recurse: bool = True):
        lazy_buffers = {name: buffer for name, buffer in self._buffers.items() if is_lazy(buffer)}
        super()._apply(fn, recurse)
        # Module._apply stores fn's result for a buffer, a plain tensor (``.to(device)``'s): an uninitialised
        # buffer must stay one, on its new device and dtype, as torch's does
        for name, old in lazy_buffers.items():
            new = self._buffers[name]
            if not is_lazy(new):
                new.__class__ = type(old)
                new.persistent = old.persistent
        return self

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        if args:  # torch's deprecated positional order: (destination, prefix, keep_vars)
            destination = args[0]
            prefix = args[1] if len(args) > 1 else prefix
            keep_vars = args[2] if len(args) > 2 else keep_vars
        destination = super().state_dict(destination=destination if destination is not None else OrderedDict(),
                                          prefix=prefix, keep_vars=keep_vars)
        # torch saves an uninitialised tensor as itself (detaching it would give it a shape)
        for name, value in itertools.chain(self._parameters.items(), self._buffers.items()):
            if is_lazy(value) and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = value
        return destination

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # A materialised checkpoint gives each uninitialised tensor its shape before the copy (torch's
        # _lazy_load_hook); an uninitialised one in the checkpoint has nothing to copy, so it is left out.
        nothing_to_copy = []
        for name, value in itertools.chain(self._parameters.items(), self._buffers.items()):
            key = prefix + name
            if key in state_dict and is_lazy(value):
                if is_lazy(state_dict[key]):
                    nothing_to_copy.append(key)
                else:
                    with no_grad():
                        value.materialize(tuple(state_dict[key].shape))
        state_dict = {k: v for k, v in state_dict.items() if k not in nothing_to_copy}
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        missing_keys[:] = [k for k in missing_keys if k not in nothing_to_copy]


class LazyLinear(LazyModuleMixin, Linear):
    """``nn.LazyLinear(out_features)``: a Linear whose ``in_features`` is the first input's last dim."""

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        # built with no bias and zero sizes, so that nothing is allocated and then thrown away
        super().__init__(0, 0, False)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor) -> None:
        if self.has_uninitialized_params():
            self.in_features = input.shape[-1]
            self.weight.materialize((self.out_features, self.in_features))
            if self.bias is not None:
                self.bias.materialize((self.out_features,))
            self.reset_parameters()


class _LazyConvXdMixin(LazyModuleMixin):
    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
        if self.has_uninitialized_params():
            self.in_channels = self._get_in_channels(input)
            if self.in_channels % self.groups != 0:
                raise ValueError("in_channels must be divisible by groups")
            if self.transposed:
                shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
            else:
                shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
            self.weight.materialize(shape)
            if self.bias is not None:
                self.bias.materialize((self.out_channels,))
            self.reset_parameters()

    def _get_in_channels(self, input: Tensor) -> int:
        unbatched = self._dims + 1  # channels + spatial dims
        if input.dim() not in (unbatched, unbatched + 1):
            raise RuntimeError(
                f"Expected {unbatched}D (unbatched) or {unbatched + 1}D (batched) input to "
                f"{type(self).__name__}, but got input of size: {list(input.shape)}"
            )
        return input.shape[1] if input.dim() == unbatched + 1 else input.shape[0]

    def _lazy_parameters(self, out_channels: int, bias: bool, device, dtype) -> None:
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)


class _LazyConv(_LazyConvXdMixin):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode, device, dtype)
        self._lazy_parameters(out_channels, bias, device, dtype)


class _LazyConvTranspose(_LazyConvXdMixin):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0, groups: int = 1,
                 bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation,
                         padding_mode, device, dtype)
        self._lazy_parameters(out_channels, bias, device, dtype)


# these two are no Modules (LazyModuleMixin comes first), so Module.__init_subclass__ left their
# __init__ unwrapped: an error while building names LazyConv2d and its arguments, as for Conv2d
_LazyConv.__init__ = naming_the_class(_LazyConv.__init__)
_LazyConvTranspose.__init__ = naming_the_class(_LazyConvTranspose.__init__)


class LazyConv1d(_LazyConv, Conv1d):
    """``nn.LazyConv1d(out_channels, kernel_size, ...)``: ``in_channels`` from the first input."""

    cls_to_become = Conv1d


class LazyConv2d(_LazyConv, Conv2d):
    """``nn.LazyConv2d(out_channels, kernel_size, ...)``: ``in_channels`` from the first input."""

    cls_to_become = Conv2d


class LazyConv3d(_LazyConv, Conv3d):
    """``nn.LazyConv3d(out_channels, kernel_size, ...)``: ``in_channels`` from the first input."""

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTranspose, ConvTranspose1d):
    """``nn.LazyConvTranspose1d(out_channels, kernel_size, ...)``: ``in_channels`` from the first input."""

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTranspose, ConvTranspose2d):
    """``nn.LazyConvTranspose2d(out_channels, kernel_size, ...)``: ``in_channels`` from the first input."""

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTranspose, ConvTranspose3d):
    """``nn.LazyConvTranspose3d(out_channels, kernel_size, ...)``: ``in_channels`` from the first input."""

    cls_to_become = ConvTranspose3d


class _LazyNormBase(LazyModuleMixin):
    # the class whose __init__ torch's argument errors name (_naming._name_the_call)
    _torch_init_owner = "_LazyNormBase"

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True) -> None:
        # affine and running statistics off at first, so that nothing is allocated and then thrown away
        super().__init__(0, eps, momentum, False, False, device, dtype)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            self.num_batches_tracked = tensor(0, dtype=_dtype.int64, device=device)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor) -> None:
        if self.has_uninitialized_params():
            # torch reads the channels at dim 1 for every Lazy norm, unbatched instance-norm input included
            self.num_features = input.shape[1]
            if self.affine:
                self.weight.materialize((self.num_features,))
                if self.bias is not None:
                    self.bias.materialize((self.num_features,))
            if self.track_running_stats:
                self.running_mean.materialize((self.num_features,))
                self.running_var.materialize((self.num_features,))
            self.reset_parameters()


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    """``nn.LazyBatchNorm1d()``: ``num_features`` from the first input's dim 1."""

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    """``nn.LazyBatchNorm2d()``: ``num_features`` from the first input's dim 1."""

    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    """``nn.LazyBatchNorm3d()``: ``num_features`` from the first input's dim 1."""

    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyNormBase, InstanceNorm1d):
    """``nn.LazyInstanceNorm1d()``: ``num_features`` from the first input's dim 1 (affine, tracked stats)."""

    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyNormBase, InstanceNorm2d):
    """``nn.LazyInstanceNorm2d()``: ``num_features`` from the first input's dim 1 (affine, tracked stats)."""

    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyNormBase, InstanceNorm3d):
    """``nn.LazyInstanceNorm3d()``: ``num_features`` from the first input's dim 1 (affine, tracked stats)."""

    cls_to_become = InstanceNorm3d


# torch defines the lazy convolutions in conv.py and LazyLinear in linear.py; here they stay beside
# LazyModuleMixin (linear.py importing this module would close a circle through normalization.py),
# named after torch's modules (their class repr and pickle name), which hand them out on request
for _cls in (LazyConv1d, LazyConv2d, LazyConv3d, LazyConvTranspose1d, LazyConvTranspose2d, LazyConvTranspose3d):
    _cls.__module__ = "chainrule.nn.modules.conv"
LazyLinear.__module__ = "chainrule.nn.modules.linear"
del _cls
