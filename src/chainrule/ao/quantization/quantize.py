"""torch.ao.quantization.quantize_dynamic: swap a float model's Linear and LSTM layers for their
dynamic quantized counterparts (int8 weights, activations quantized per call)."""

from __future__ import annotations

import copy
import warnings

from ... import _dtype, _torch_function
from ...nn.modules.linear import Linear as _FloatLinear
from ...nn.modules.rnn import GRU, LSTM, GRUCell, LSTMCell, RNNCell
from ..nn.quantized import dynamic as _dynamic
from .qconfig import default_dynamic_qconfig

__all__ = ["quantize_dynamic"]


# the float modules torch's default dynamic mapping swaps, and chainrule's counterparts (None: not here yet)
_DYNAMIC_MAPPING = {_FloatLinear: _dynamic.Linear, LSTM: _dynamic.LSTM, GRU: None, LSTMCell: None,
                    RNNCell: None, GRUCell: None}


_DEPRECATION = (
    "torch.ao.quantization is deprecated and will be removed in 2.10. \nFor migrations of users: \n1. Eager mode "
    "quantization (torch.ao.quantization.quantize, torch.ao.quantization.quantize_dynamic), please migrate to use "
    "torchao eager mode quantize_ API instead \n2. FX graph mode quantization (torch.ao.quantization.quantize_fx."
    "prepare_fx,torch.ao.quantization.quantize_fx.convert_fx, please migrate to use torchao pt2e quantization API "
    "instead (prepare_pt2e, convert_pt2e) \n3. pt2e quantization has been migrated to torchao "
    "(https://github.com/pytorch/ao/tree/main/torchao/quantization/pt2e) \nsee https://github.com/pytorch/ao/issues/2259 "
    "for more details")


def quantize_dynamic(model, qconfig_spec=None, dtype=_dtype.qint8, mapping=None, inplace: bool = False):
    """torch.ao.quantization.quantize_dynamic: ``model`` (a copy unless ``inplace``) in eval mode with
    each submodule of a type (or name) in ``qconfig_spec`` replaced by its dynamic quantized module.

    ``qconfig_spec`` is a set of module types/names (default: every type torch swaps) or a dict from
    types/names to a qconfig; a named module's entry covers its children. The model itself is never
    swapped, only modules inside it, as in torch."""
    warnings.warn(_DEPRECATION, DeprecationWarning, stacklevel=_torch_function.user_stacklevel())
    if dtype is not _dtype.qint8:
        raise NotImplementedError(f"chainrule's quantize_dynamic supports dtype=torch.qint8, got {dtype}")
    if qconfig_spec is None:
        qconfig_spec = dict.fromkeys(_DYNAMIC_MAPPING, default_dynamic_qconfig)
    elif isinstance(qconfig_spec, (set, frozenset, list, tuple)):
        qconfig_spec = dict.fromkeys(qconfig_spec, default_dynamic_qconfig)
    mapping = dict(_DYNAMIC_MAPPING if mapping is None else mapping)
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    _swap_children(model, "", None, qconfig_spec, mapping)
    return model


def _swap_children(module, prefix: str, inherited, qconfig_spec: dict, mapping: dict) -> None:
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        full_name = prefix + name
        qconfig = qconfig_spec.get(full_name, qconfig_spec.get(type(child), inherited))
        target = mapping.get(type(child), False)
        if qconfig is not None and target is None:
            raise NotImplementedError(f"chainrule has no dynamic quantized {type(child).__name__} yet "
                                      "(Linear and LSTM are quantized); leave it out of qconfig_spec")
        if qconfig is not None and target:
            module._modules[name] = target.from_float(child)
        else:
            _swap_children(child, full_name + ".", qconfig, qconfig_spec, mapping)
