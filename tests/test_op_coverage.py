"""Every public op has an entry in the op registry (``chainrule.testing.opinfo.op_db``).

"Public" is every callable in the top-level ``chainrule`` namespace, ``chainrule.nn.functional``,
``chainrule.linalg``, ``chainrule.special`` and ``chainrule.fft``, and every public method, property
and operator of ``Tensor``. A function counts as covered when an entry's name or alias resolves to
the same object (``chainrule.conv2d`` is ``chainrule.nn.functional.conv2d``: one entry serves
both); a Tensor attribute when an entry lists it in ``methods``. What is not an op (sizes, devices,
conversions, random state, printing, ...) is named in ``NOT_OPS`` below, each group with its reason.
Adding a public op without an entry, or an entry for a name that no longer exists, fails here.
"""

from __future__ import annotations

import inspect

import chainrule
from chainrule.testing import opinfo

NAMESPACES = {
    "": chainrule,
    "nn.functional.": chainrule.nn.functional,
    "linalg.": chainrule.linalg,
    "special.": chainrule.special,
    "fft.": chainrule.fft,
}


def _group(reason: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, reason)


# Public names that are not ops: qualified as "name" (top level), "nn.functional.name", ...,
# or "Tensor.name" for Tensor attributes. One group per reason; no wildcards.
NOT_OPS: dict[str, str] = {
    **_group(
        "creation from data: copies or wraps given values, nothing to compute",
        "tensor", "as_tensor", "asarray", "from_numpy", "scalar_tensor", "new_tensor",
        "Tensor.new_tensor", "Tensor.new",
    ),
    **_group(
        "random sampling: chainrule's generator is not torch's, so no value can be compared with torch's; "
        "the draws need distribution-level tests (tests/test_creation.py has some), not registry samples",
        "rand", "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like", "normal",
        "bernoulli", "multinomial",
        "Tensor.bernoulli", "Tensor.bernoulli_", "Tensor.multinomial", "Tensor.normal_", "Tensor.uniform_",
        "Tensor.exponential_", "Tensor.random_", "Tensor.normal", "nn.functional.gumbel_softmax",
    ),
    **_group(
        "random-number state and global settings: no tensor computed",
        "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
        "set_default_dtype", "get_default_dtype", "set_default_device", "get_default_device",
        "set_printoptions", "get_printoptions", "set_num_threads", "get_num_threads",
        "set_num_interop_threads", "get_num_interop_threads", "set_float32_matmul_precision",
        "get_float32_matmul_precision", "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
        "is_deterministic_algorithms_warn_only_enabled", "set_anomaly_enabled", "is_anomaly_enabled", "is_anomaly_check_nan_enabled",
        "is_grad_enabled", "is_inference_mode_enabled", "compile", "set_default_tensor_type",
    ),
    **_group(
        "type and dtype queries: answer about a tensor or dtype, compute no tensor",
        "is_tensor", "is_storage", "is_floating_point", "is_complex", "get_default_complex_dtype", "promote_types", "result_type", "broadcast_shapes", "can_cast",
        "numel", "Tensor.is_floating_point", "Tensor.is_complex", "Tensor.is_contiguous", "Tensor.is_leaf",
        "Tensor.is_cuda", "Tensor.is_shared", "Tensor.numel", "Tensor.nelement", "Tensor.dim", "Tensor.ndim",
        "Tensor.ndimension", "Tensor.size", "Tensor.shape", "Tensor.stride", "Tensor.dtype", "Tensor.device",
        "Tensor.get_device", "Tensor.element_size", "Tensor.data_ptr", "Tensor.name", "Tensor.__len__",
        "Tensor.itemsize", "Tensor.nbytes", "Tensor.is_pinned",
        "Tensor.__hash__", "Tensor.__module__", "Tensor.__slots__", "Tensor.__weakref__",
        "Tensor.__array_priority__", "Tensor.__dlpack_device__",
    ),
    **_group(
        "size arithmetic on Python numbers (torch's SymInt-aware helpers): no tensor computed; "
        "tested against torch in tests/compat/test_s18_lead.py",
        "sym_float", "sym_int", "sym_ite", "sym_max", "sym_min", "sym_not", "sym_sqrt", "sym_sum",
    ),
    **_group(
        "serialization: files, not tensors", "save", "load",
    ),
    **_group(
        "reversed(t): flip(0), which the registry covers; tested in tests/compat/test_s21_pyprotocols.py",
        "Tensor.__reversed__",
    ),
    **_group(
        "sparse COO layout: format conversions and the sparse product, tested against torch in "
        "tests/test_sparse.py (the values are stored densely, so every registry op already covers them)",
        "sparse_coo_tensor", "spmm", "hspmm", "Tensor.sparse_mask", "Tensor.is_sparse", "Tensor.is_quantized", "Tensor.layout", "Tensor.to_dense", "Tensor.to_sparse",
        "Tensor.to_sparse_coo",
    ),
    **_group(
        "sparse COO products with a sparse result (torch defines no derivative for them) and the sparse "
        "tensor's in-place resize, tested against torch in tests/compat/test_s46_mendAU.py",
        "smm", "sspaddmm", "Tensor.smm", "Tensor.sspaddmm", "Tensor.sparse_resize_",
    ),
    **_group(
        "sparse CSR layout: construction, conversion and the product, tested against torch in "
        "tests/test_sparse_csr.py (stored densely too)",
        "sparse_csr_tensor", "Tensor.to_sparse_csr",
    ),
    **_group(
        "sparse CSC layout: conversion from a dense matrix, tested against torch in "
        "tests/compat/test_torch_docstring_examples.py (stored densely too)",
        "Tensor.to_sparse_csc",
    ),
    **_group(
        "sparse CSC and compressed construction from parts (torch's check_invariants words), tested against torch "
        "in tests/compat/test_s57_mendDK.py (stored densely too)",
        "sparse_csc_tensor", "sparse_compressed_tensor",
    ),
    **_group(
        "conversion to Python or NumPy values, or between devices/dtypes (casts are checked in tests/test_dtype.py; "
        "NumPy results wrapped back in tests/compat/test_s21_numpyinterop.py)",
        "Tensor.item", "Tensor.tolist", "Tensor.numpy", "Tensor.__array__", "Tensor.__array_wrap__", "Tensor.__bool__",
        "Tensor.__float__", "Tensor.__int__", "Tensor.__index__", "Tensor.__complex__", "Tensor.__dlpack__",
        "Tensor.__iter__", "Tensor.__contains__", "Tensor.__deepcopy__", "Tensor.to", "Tensor.type",
        "Tensor.type_as", "Tensor.cpu", "Tensor.cuda", "Tensor.pin_memory", "Tensor.share_memory_",
        "Tensor.float", "Tensor.double", "Tensor.half", "Tensor.bfloat16", "Tensor.int", "Tensor.long", "Tensor.short",
        "Tensor.bool", "Tensor.byte",
    ),
    **_group(
        "autograd bookkeeping: graph and gradient state, tested in tests/autograd",
        "Tensor.backward", "Tensor.grad", "Tensor.grad_dtype", "Tensor.grad_fn", "Tensor.requires_grad", "Tensor.requires_grad_",
        "Tensor.retain_grad", "Tensor.retains_grad", "Tensor.register_hook",
        "Tensor.register_post_accumulate_grad_hook", "Tensor.detach", "Tensor.detach_", "Tensor.data",
    ),
    **_group(
        "comparisons of whole tensors answering a Python bool: no tensor computed",
        "equal", "allclose", "Tensor.equal", "Tensor.allclose",
    ),
}


# --- opsB: special/aliases/in-place ---
NOT_OPS.update({
    **_group(
        "tensor queries (device, signedness, sizes, memory layout, graph position): no tensor computed",
        "Tensor.is_cpu", "Tensor.is_meta", "Tensor.is_signed", "Tensor.is_nonzero", "Tensor.is_same_size",
        "Tensor.output_nr", "Tensor.storage_offset", "Tensor.dim_order",
    ),
    **_group(
        "storage management and uninitialized creation: sizes, not values (tests/test_tensor_misc.py)",
        "Tensor.resize_", "Tensor.resize_as_", "Tensor.new_empty_strided",
    ),
    **_group(
        "storage sharing, subclass views and the deprecated reshaping resize: memory and classes, compared with "
        "torch in tests/test_tensor_storage_s8.py",
        "Tensor.set_", "Tensor.is_set_to", "Tensor.storage_type", "Tensor.as_subclass", "Tensor.resize",
        "Tensor.resize_as",
    ),
    **_group(
        "random fills: chainrule's generator is not torch's (distribution checks in tests/test_tensor_misc.py)",
        "Tensor.log_normal_", "Tensor.cauchy_", "Tensor.geometric_",
    ),
    **_group(
        "Python callables applied per element on the CPU, outside autograd (tests/test_tensor_misc.py)",
        "Tensor.apply_", "Tensor.map_",
    ),
})

# --- s14 overrides: the __torch_function__ protocol ---
NOT_OPS.update(_group(
    "the __torch_function__ protocol's default handler: runs another op, computes nothing itself "
    "(tests/compat/test_torch_function.py)",
    "Tensor.__torch_function__",
))

# --- s24 progB: nn.functional spellings of Tensor methods ---
NOT_OPS.update(_group(
    "torch writes them as input.sigmoid() / input.tanh(): they call the Tensor method, which has its entry "
    "(tests/compat/test_s24_progB.py)",
    "nn.functional.sigmoid", "nn.functional.tanh",
))

# --- s28 quant: quantized tensors ---
NOT_OPS.update(_group(
    "make or unpack a quantized tensor (integers plus scale/zero point): no float op and no gradient, as in "
    "torch; values compared with torch element by element (tests/compat/test_s28_quant.py)",
    "quantize_per_tensor", "quantize_per_channel", "dequantize", "Tensor.dequantize",
))

# --- s30 quant3: fake quantization ---
NOT_OPS.update(_group(
    "fake quantization: a step function whose straight-through gradient is not its derivative, so the "
    "registry's gradcheck cannot hold; forward, gradient, node names and errors compared with torch element "
    "by element on 100,000 values, gradcheck where it is smooth (tests/compat/test_s30_quant3.py)",
    "fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine",
))

# --- bf16: autocast state ---
NOT_OPS.update(_group(
    "autocast state (torch.set_autocast_enabled and friends): switch a mode, compute no tensor "
    "(tests/test_autocast_cpu.py)",
    "is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled", "set_autocast_dtype",
    "is_autocast_cpu_enabled", "set_autocast_cpu_enabled", "get_autocast_cpu_dtype", "set_autocast_cpu_dtype",
    "get_autocast_gpu_dtype", "set_autocast_gpu_dtype", "is_autocast_cache_enabled", "set_autocast_cache_enabled",
    "clear_autocast_cache", "autocast_increment_nesting", "autocast_decrement_nesting",
))


def _public_functions() -> dict[str, object]:
    found = {}
    for prefix, module in NAMESPACES.items():
        names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        for name in names:
            value = getattr(module, name)
            if inspect.ismodule(value) or inspect.isclass(value) or not callable(value):
                continue
            if getattr(value, "__module__", "chainrule").split(".")[0] != "chainrule":
                continue  # a third-party name imported into the module (e.g. numpy's), not ours
            found[prefix + name] = value
    return found


def _tensor_attributes() -> list[str]:
    own = set()
    for cls in chainrule.Tensor.__mro__[:-1]:
        own.update(vars(cls))
    return sorted(n for n in dir(chainrule.Tensor)
                  if not n.startswith("_") or (n.startswith("__") and n.endswith("__") and n in own
                                                and n not in _PYTHON_PLUMBING))


# object-model plumbing every class has; not part of the tensor API
_PYTHON_PLUMBING = {"__init__", "__new__", "__repr__", "__str__", "__format__", "__doc__", "__dict__",
                    "__reduce__", "__reduce_ex__", "__getstate__", "__setstate__", "__copy__",
                    "__init_subclass__", "__class_getitem__", "__annotations__", "__firstlineno__",
                    "__static_attributes__", "__getattr__", "__dir__", "__sizeof__"}


def _resolve(qualified: str):
    target = chainrule
    for part in qualified.split("."):
        target = getattr(target, part)
    return target


def _covered():
    # by the implementation under the public wrappers: torch.softmax (a built-in) and F.softmax (a Python
    # function) are two objects over one op, as in torch
    objects, methods = set(), set()
    for entry in opinfo.op_db:
        for name in (entry.name, *entry.aliases):
            objects.add(id(inspect.unwrap(_resolve(name))))
        methods.update(entry.methods)
    return objects, methods


def test_every_public_function_has_an_entry():
    objects, _ = _covered()
    missing = [name for name, value in _public_functions().items()
               if id(inspect.unwrap(value)) not in objects and name not in NOT_OPS]
    assert not missing, f"public functions with no OpInfo entry (add one, or a NOT_OPS line with its reason): {missing}"


def test_every_tensor_method_has_an_entry():
    _, methods = _covered()
    missing = [name for name in _tensor_attributes() if name not in methods and f"Tensor.{name}" not in NOT_OPS]
    assert not missing, f"Tensor methods with no OpInfo entry (list them in an entry's methods): {missing}"


def test_entries_name_real_things():
    for entry in opinfo.op_db:
        for name in (entry.name, *entry.aliases):
            assert callable(_resolve(name)) or name.startswith("Tensor."), f"{entry.name}: {name} is not callable"
        for method in entry.methods:
            assert hasattr(chainrule.Tensor, method), f"{entry.name}: Tensor has no {method}"


def test_not_ops_lists_only_names_that_exist_and_have_no_entry():
    functions = _public_functions()
    attributes = set(_tensor_attributes())
    objects, methods = _covered()
    for name in NOT_OPS:
        if name.startswith("Tensor."):
            assert name[len("Tensor."):] in attributes, f"NOT_OPS names {name}, which Tensor does not have"
            assert name[len("Tensor."):] not in methods, f"{name} has an entry and is listed in NOT_OPS"
        else:
            assert name in functions, f"NOT_OPS names {name}, which is not a public function"
            assert id(functions[name]) not in objects, f"{name} has an entry and is listed in NOT_OPS"


# --- s6 names ---
NOT_OPS.update({
    **_group(
        "queries and names: answer about a tensor or object, compute no tensor (tests/ops/test_names_s6.py)",
        "get_device", "is_nonzero", "is_same_size", "is_signed", "typename", "is_inference",
        "Tensor.is_inference", "Tensor.volatile",
    ),
    **_group(
        "storage access: the memory under a tensor, no tensor computed (tests/ops/test_names_s6.py)",
        "Tensor.storage", "Tensor.untyped_storage",
    ),
    **_group(
        "memory sharing and uninitialized creation: wrap another library's or a buffer's memory, or allocate "
        "unset values (tests/ops/test_names_s6.py checks the sharing and the strides)",
        "frombuffer", "from_dlpack", "to_dlpack", "empty_strided",
    ),
    **_group(
        "function transforms and control flow: call the user's functions, whose ops are the registry's "
        "(tests/ops/test_names_s6.py compares them with the same program on torch)",
        "vmap", "cond", "while_loop",
    ),
    **_group("autograd bookkeeping: torch.detach is Tensor.detach", "detach"),
    **_group("random sampling: chainrule's generator is not torch's; moments checked in tests/ops/test_names_s6.py",
             "poisson", "binomial"),
    **_group("removed in torch 1.9: raise torch's RuntimeError pointing to torch.linalg (tests/ops/test_names_s6.py)",
             "Tensor.solve", "Tensor.lstsq"),
})


# --- s7 names ---
NOT_OPS.update({
    **_group("removed in torch 1.9: raise torch's RuntimeError pointing to torch.linalg (tests/ops/test_linalg_eig.py)",
             "eig", "symeig", "lstsq", "solve", "matrix_rank", "Tensor.eig", "Tensor.symeig"),
})
NOT_OPS.update({
    **_group("warning and floating-point-mode switches: no tensor computed (tests/compat/test_names_s7.py)",
             "set_warn_always", "is_warn_always_enabled", "set_flush_denormal"),
    **_group("memory and autograd bookkeeping in place: resize, detach, restride self (tests/compat/test_names_s7.py)",
             "detach_", "resize_as_", "as_strided_", "Tensor.as_strided_"),
    **_group("uninitialised creation in a given memory order (tests/compat/test_names_s7.py checks shape and strides)",
             "empty_permuted"),
    **_group("conversions and memory bookkeeping: a dtype cast, a pointer, a stream mark (tests/compat/test_names_s7.py)",
             "Tensor.char", "Tensor.const_data_ptr", "Tensor.record_stream"),
    **_group("devices and layouts chainrule does not have: False, or torch's error (tests/compat/test_names_s7.py)",
             "Tensor.is_xpu", "Tensor.is_mps", "Tensor.is_ipu", "Tensor.is_xla", "Tensor.is_maia", "Tensor.is_mtia",
             "Tensor.is_nested", "Tensor.is_sparse_csr", "Tensor.xpu"),
})
NOT_OPS.update(_group("determinism switches and device-module lookup: no tensor computed (tests/compat/test_names_s7.py)",
                      "set_deterministic_debug_mode", "get_deterministic_debug_mode", "get_device_module"))
