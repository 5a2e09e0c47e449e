"""torch.ao.quantization.fuse_modules: replace runs of modules (conv, bn, relu / linear, relu) by
one fused module, folding an eval-mode BatchNorm into the layer before it; the other places in the
run become Identity, so the model's forward is unchanged."""

from __future__ import annotations

import copy

from ...nn.modules.activation import ReLU
from ...nn.modules.conv import Conv2d
from ...nn.modules.linear import Identity, Linear
from ...nn.modules.normalization import BatchNorm1d, BatchNorm2d
from ...nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
from ..nn import intrinsic

__all__ = ["fuse_known_modules", "fuse_modules", "fuse_modules_qat"]


def _same_mode(conv, bn) -> None:
    if conv.training != bn.training:
        raise AssertionError("Conv and BN both must be in the same mode (train or eval).")


def _fuse_conv_bn(conv, bn):
    _same_mode(conv, bn)
    return fuse_conv_bn_eval(conv, bn)


def _fuse_conv_bn_relu(conv, bn, relu):
    _same_mode(conv, bn)
    return intrinsic.ConvReLU2d(fuse_conv_bn_eval(conv, bn), relu)


def _fuse_linear_bn(linear, bn):
    _same_mode(linear, bn)
    return fuse_linear_bn_eval(linear, bn)


def _check_qat_bn(conv, bn) -> None:
    _same_mode(conv, bn)
    if bn.num_features != conv.out_channels:
        raise AssertionError("Output channel of Conv2d must match num_features of BatchNorm2d.")
    if not bn.affine:
        raise AssertionError("Only support fusing BatchNorm2d with affine set to True")
    if not bn.track_running_stats:
        raise AssertionError("Only support fusing BatchNorm2d with tracking_running_stats set to True")


def _qat_conv_bn(conv, bn):
    _check_qat_bn(conv, bn)
    return intrinsic.ConvBn2d(conv, bn)


def _qat_conv_bn_relu(conv, bn, relu):
    _check_qat_bn(conv, bn)
    return intrinsic.ConvBnReLU2d(conv, bn, relu)


# quantization-aware training keeps the BatchNorm: the QAT layer folds it in its forward
_QAT_FUSER_METHODS = {
    (Conv2d, BatchNorm2d): _qat_conv_bn,
    (Conv2d, BatchNorm2d, ReLU): _qat_conv_bn_relu,
    (Conv2d, ReLU): intrinsic.ConvReLU2d,
    (Linear, ReLU): intrinsic.LinearReLU,
}


# the eval-mode (post-training) fusions torch knows for these layer types
_FUSER_METHODS = {
    (Conv2d, BatchNorm2d): _fuse_conv_bn,
    (Conv2d, BatchNorm2d, ReLU): _fuse_conv_bn_relu,
    (Conv2d, ReLU): intrinsic.ConvReLU2d,
    (Linear, ReLU): intrinsic.LinearReLU,
    (Linear, BatchNorm1d): _fuse_linear_bn,
}


def _torch_spelling(types: tuple) -> str:
    return repr(types).replace("chainrule.", "torch.")


def fuse_known_modules(mod_list, is_qat: bool = False, additional_fuser_method_mapping=None):
    """The fused module for ``mod_list`` followed by Identities for the rest, as torch's
    fuse_known_modules: the first module's forward pre-hooks and the last one's forward hooks
    move to the fused module."""
    types = tuple(type(module) for module in mod_list)
    if is_qat and types == (Linear, BatchNorm1d):
        raise NotImplementedError("chainrule has no quantization-aware LinearBn1d yet")
    known = _QAT_FUSER_METHODS if is_qat else _FUSER_METHODS
    fuser = {**known, **(additional_fuser_method_mapping or {})}.get(types)
    if fuser is None:
        raise AssertionError(f"did not find fuser method for: {_torch_spelling(types)} ")
    fused = fuser(*mod_list)
    for hook in mod_list[0]._forward_pre_hooks.values():
        fused.register_forward_pre_hook(hook)
    for hook in mod_list[-1]._forward_hooks.values():
        fused.register_forward_hook(hook)
    replacements = [fused]
    for _ in mod_list[1:]:
        identity = Identity()
        identity.training = mod_list[0].training
        replacements.append(identity)
    return replacements


def _get_module(model, name: str):
    for part in name.split("."):
        model = getattr(model, part)
    return model


def _set_module(model, name: str, module) -> None:
    *parents, last = name.split(".")
    for part in parents:
        model = getattr(model, part)
    setattr(model, last, module)


def fuse_modules(model, modules_to_fuse, inplace: bool = False, fuser_func=fuse_known_modules,
                 fuse_custom_config_dict=None):
    """torch.ao.quantization.fuse_modules: ``model`` (a copy unless ``inplace``) with each list of
    dotted module names in ``modules_to_fuse`` (or the one list given) fused by ``fuser_func``."""
    return _fuse_modules(model, modules_to_fuse, False, inplace, fuser_func, fuse_custom_config_dict)


def fuse_modules_qat(model, modules_to_fuse, inplace: bool = False, fuser_func=fuse_known_modules,
                     fuse_custom_config_dict=None):
    """torch.ao.quantization.fuse_modules_qat: fuse_modules for quantization-aware training: a
    conv's BatchNorm is kept (ConvBn2d / ConvBnReLU2d), not folded, so it keeps training."""
    return _fuse_modules(model, modules_to_fuse, True, inplace, fuser_func, fuse_custom_config_dict)


def _fuse_modules(model, modules_to_fuse, is_qat: bool, inplace: bool, fuser_func, fuse_custom_config_dict):
    if not inplace:
        model = copy.deepcopy(model)
    groups = [modules_to_fuse] if all(isinstance(name, str) for name in modules_to_fuse) else modules_to_fuse
    additional = (fuse_custom_config_dict or {}).get("additional_fuser_method_mapping", {})
    for names in groups:
        modules = [_get_module(model, name) for name in names]
        fused = fuser_func(modules, is_qat, additional)
        for name, module in zip(names, fused):
            _set_module(model, name, module)
    return model
