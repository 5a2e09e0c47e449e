"""torch.ao.quantization's eager-mode passes: prepare / convert (static quantization: observers
attached, calibrated, then layers swapped for quantized ones) and quantize_dynamic (Linear and
LSTM swapped for modules that quantize their input per call)."""

from __future__ import annotations

import copy
import warnings

from ... import _dtype, _torch_function
from ...nn.modules.activation import ELU, Hardswish, LeakyReLU, PReLU, ReLU6
from ...nn.modules.container import Sequential
from ...nn.modules.conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ...nn.modules.dropout import Dropout
from ...nn.modules.linear import Linear as _FloatLinear
from ...nn.modules.normalization import (
    BatchNorm2d,
    BatchNorm3d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
)
from ...nn.modules.rnn import GRU, LSTM, GRUCell, LSTMCell, RNNCell
from ..nn import intrinsic as _intrinsic
from ..nn import qat as _qat
from ..nn import quantized as _static
from ..nn.intrinsic import qat as _intrinsic_qat
from ..nn.intrinsic import quantized as _intrinsic_quantized
from ..nn.quantized import dynamic as _dynamic
from .fake_quantize import FakeQuantizeBase
from .observer import ObserverBase
from .qconfig import default_dynamic_qconfig
from .stubs import DeQuantStub, QuantStub

__all__ = ["convert", "default_eval_fn", "prepare", "prepare_qat", "propagate_qconfig_", "quantize",
           "quantize_dynamic"]


# the float modules torch's default dynamic mapping swaps, and their dynamic quantized counterparts
_DYNAMIC_MAPPING = {_FloatLinear: _dynamic.Linear, LSTM: _dynamic.LSTM, GRU: _dynamic.GRU,
                    LSTMCell: _dynamic.LSTMCell, RNNCell: _dynamic.RNNCell, GRUCell: _dynamic.GRUCell}


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
        if qconfig is not None and target:
            module._modules[name] = target.from_float(child)
        else:
            _swap_children(child, full_name + ".", qconfig, qconfig_spec, mapping)


# the float modules convert() swaps, and what it swaps in (torch's default static mapping, as far
# as chainrule has the quantized modules)
_STATIC_MAPPING = {QuantStub: _static.Quantize, DeQuantStub: _static.DeQuantize, _FloatLinear: _static.Linear,
                   Conv2d: _static.Conv2d, ReLU6: _static.ReLU6, Dropout: _static.Dropout,
                   BatchNorm2d: _static.BatchNorm2d,
                   _intrinsic.ConvReLU2d: _intrinsic_quantized.ConvReLU2d,
                   _intrinsic.LinearReLU: _intrinsic_quantized.LinearReLU,
                   _static.FloatFunctional: _static.QFunctional,
                   _qat.Linear: _static.Linear, _qat.Conv2d: _static.Conv2d,
                   _intrinsic_qat.ConvBn2d: _static.Conv2d,
                   _intrinsic_qat.ConvBnReLU2d: _intrinsic_quantized.ConvReLU2d,
                   _intrinsic_qat.ConvReLU2d: _intrinsic_quantized.ConvReLU2d,
                   _intrinsic_qat.LinearReLU: _intrinsic_quantized.LinearReLU}
# what prepare_qat swaps in: layers that fake-quantize their weight (torch's default QAT mapping,
# as far as chainrule has the QAT modules)
_QAT_MAPPING = {_FloatLinear: _qat.Linear, Conv2d: _qat.Conv2d,
                _intrinsic.ConvBn2d: _intrinsic_qat.ConvBn2d, _intrinsic.ConvBnReLU2d: _intrinsic_qat.ConvBnReLU2d,
                _intrinsic.ConvReLU2d: _intrinsic_qat.ConvReLU2d, _intrinsic.LinearReLU: _intrinsic_qat.LinearReLU}
# layers torch's prepare observes and convert swaps but chainrule has no quantized module for yet
_NOT_YET_STATIC = (BatchNorm3d, Conv1d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
                   ELU, GroupNorm, Hardswish, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm,
                   LeakyReLU, PReLU)


def propagate_qconfig_(module, qconfig_dict=None, prepare_custom_config_dict=None) -> None:
    """torch.ao.quantization.propagate_qconfig_: give every submodule a ``qconfig`` attribute: its
    own if it has one, else its entry in ``qconfig_dict`` (by type, then by dotted name), else its
    parent's (possibly None)."""
    _propagate_qconfig(module, qconfig_dict or {}, None, "")


def _propagate_qconfig(module, qconfig_dict: dict, parent_qconfig, prefix: str) -> None:
    qconfig = qconfig_dict.get(type(module), parent_qconfig)
    qconfig = qconfig_dict.get(prefix, qconfig)
    qconfig = getattr(module, "qconfig", qconfig)
    module.qconfig = qconfig
    for name, child in module.named_children():
        _propagate_qconfig(child, qconfig_dict, qconfig, f"{prefix}.{name}" if prefix else name)


def _observer_forward_hook(module, input, output):
    """Records a prepared layer's output in its activation observer."""
    return module.activation_post_process(output)


def _needs_observation(module) -> bool:
    return getattr(module, "qconfig", None) is not None


def _attach_output_observer(module) -> None:
    if _needs_observation(module) and not isinstance(module, DeQuantStub):
        module.add_module("activation_post_process", module.qconfig.activation())
        module.register_forward_hook(_observer_forward_hook, prepend=True)


def _add_observers(module) -> None:
    for child in module.children():
        if type(child) in (_static.FloatFunctional, _static.QFunctional):
            if _needs_observation(child):  # its methods call the observer themselves
                child.activation_post_process = child.qconfig.activation()
        elif isinstance(child, (_intrinsic._FusedModule, *_intrinsic_qat.QAT_MODULES)):
            # a fused layer is observed once, after its ReLU; a QAT layer's own child is its
            # weight's fake quantizer, not a layer to observe
            _attach_output_observer(child)
        else:
            _add_observers(child)
    is_leaf = not module._modules and not isinstance(module, Sequential)
    if is_leaf and _needs_observation(module) and isinstance(module, _NOT_YET_STATIC):
        raise NotImplementedError(f"chainrule has no static quantized {type(module).__name__} yet (quantized "
                                  f"are {', '.join(sorted(t.__name__ for t in _STATIC_MAPPING))}); set its qconfig "
                                  "to None or fuse it")
    if is_leaf and type(module) in _STATIC_MAPPING:
        _attach_output_observer(module)


def prepare(model, inplace: bool = False, allow_list=None, observer_non_leaf_module_list=None,
            prepare_custom_config_dict=None):
    """torch.ao.quantization.prepare: ``model`` (a copy unless ``inplace``) with qconfigs propagated
    and an observer (``activation_post_process``, run by a forward hook) on the output of each
    layer convert() will quantize. Run calibration data through it, then call convert()."""
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    if not any(getattr(module, "qconfig", None) for module in model.modules()):
        warnings.warn("None of the submodule got qconfig applied. Make sure you passed correct configuration "
                      "through `qconfig_dict` or by assigning the `.qconfig` attribute directly on submodules",
                      UserWarning, stacklevel=_torch_function.user_stacklevel())
    _add_observers(model)
    return model


def convert(module, mapping=None, inplace: bool = False, remove_qconfig: bool = True, is_reference: bool = False,
            convert_custom_config_dict=None, use_precomputed_fake_quant: bool = False):
    """torch.ao.quantization.convert: ``module`` (a copy unless ``inplace``) with every calibrated
    layer swapped for its quantized module (``from_float`` reads the observers), then qconfigs and
    observers removed."""
    warnings.warn(_DEPRECATION, DeprecationWarning, stacklevel=_torch_function.user_stacklevel())
    if is_reference:
        raise NotImplementedError("chainrule has no reference quantized modules (is_reference=True) yet")
    if not inplace:
        module = copy.deepcopy(module)
    _convert(module, _STATIC_MAPPING if mapping is None else mapping)
    if remove_qconfig:
        _remove_qconfig(module)
    return module


def _convert(module, mapping: dict) -> None:
    swapped = {}
    for name, child in module.named_children():
        # fused layers (a QAT ConvBn2d's BatchNorm included) are swapped whole
        if not isinstance(child, (_intrinsic._FusedModule, _intrinsic_qat.ConvBn2d)):
            _convert(child, mapping)
        swapped[name] = _swap_module(child, mapping)
    module._modules.update(swapped)


def _swap_module(module, mapping: dict):
    if getattr(module, "qconfig", None) is None or type(module) not in mapping:
        return module
    quantized = mapping[type(module)].from_float(module)
    # the user's hooks stay, run on quantized values; the observer's hook goes with the observer
    for hook in module._forward_pre_hooks.values():
        quantized.register_forward_pre_hook(hook)
    for hook in module._forward_hooks.values():
        if hook is not _observer_forward_hook:
            quantized.register_forward_hook(hook)
    return quantized


def _remove_qconfig(module) -> None:
    for child in module.children():
        _remove_qconfig(child)
    if hasattr(module, "qconfig"):
        del module.qconfig
    if isinstance(getattr(module, "activation_post_process", None), (ObserverBase, FakeQuantizeBase)):
        del module.activation_post_process
        for key, hook in list(module._forward_hooks.items()):
            if hook is _observer_forward_hook:
                del module._forward_hooks[key]


def prepare_qat(model, mapping=None, inplace: bool = False):
    """torch.ao.quantization.prepare_qat: ``model`` (a copy unless ``inplace``; in train mode) with
    qconfigs propagated, each layer swapped for its QAT module (``weight_fake_quant`` on its
    weight) and a fake quantizer (the qconfig's activation one) on each output, as prepare
    attaches observers. Train it, then convert(model.eval())."""
    warnings.warn(_DEPRECATION, DeprecationWarning, stacklevel=_torch_function.user_stacklevel())
    if not model.training:
        raise AssertionError("prepare_qat only works on models in training mode")
    if not inplace:
        model = copy.deepcopy(model)
    propagate_qconfig_(model)
    _convert(model, _QAT_MAPPING if mapping is None else mapping)
    prepare(model, inplace=True)
    return model


def quantize(model, run_fn, run_args, mapping=None, inplace: bool = False):
    """torch.ao.quantization.quantize: post-training static quantization in one call: ``model`` (a
    copy unless ``inplace``) in eval mode, prepared, calibrated by ``run_fn(model, *run_args)``,
    converted."""
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    prepare(model, inplace=True)
    run_fn(model, *run_args)
    convert(model, mapping, inplace=True)
    return model


def default_eval_fn(model, calib_data) -> None:
    """torch.ao.quantization.default_eval_fn: runs ``model`` on the inputs of ``(data, target)``
    pairs (a calibration loop for ``quantize``)."""
    for data, _target in calib_data:
        model(data)
