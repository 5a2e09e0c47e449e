"""Print the same tensors and objects on torch and on chainrule, and compare what users see.

Every case is one Python expression that yields a string (``repr(...)``, ``str(...)``, an f-string,
``format(...)``), written against the name ``torch``. A worker process per library evaluates every
case with ``torch`` bound to that library (``torch`` itself, or ``chainrule``), seeded alike
(``manual_seed(0)`` before each case), each case under a time limit; the strings are compared
character for character after two normalisations only:

* the module name where it is a prefix: torch's ``torch.float64`` / ``torch.return_types.max(`` /
  ``<torch._C.Generator ...`` are read as ``chainrule.float64`` and so on (chainrule names its own
  dtypes and types with its own module name, as ``tests/compat/test_printoptions.py`` expects);
* object addresses (``0x7f...``), which differ from process to process.

A case may set print options (``torch.set_printoptions(**options)``, reset to the default profile
and ``sci_mode=None`` after it) or a default dtype (reset to float32 after it).

Groups of cases: tensors of every dtype (float16/bfloat16/float32/float64, complex64/128, int8..int64,
uint8, bool) over shapes (0-d, empty, 1-d..4-d, large summarised ones) and values (integer-valued,
mixed magnitudes, tiny and huge exponents, nan/inf, -0.0, zeros, negatives, complex with nan parts);
suffixes (requires_grad, grad_fn, dtype, device='meta', names); print options; other objects
(Parameter, Size, dtype, device, return_types, finfo/iinfo, Generator, containers, f-strings,
``format``); ``print(model)`` for common layers and models; ``print(optimizer)``.

Kinds per case:

    same                    the two strings are equal (or both raised the same exception class)
    differs                 both printed, and the strings differ (the record has a short diff), or
                            both raised different classes
    torch_only_raised       torch raised, chainrule printed something
    chainrule_only_raised   chainrule raised, torch printed

    python tools/torch_repr_trial.py run --out /tmp/repr
    python tools/torch_repr_trial.py run --out /tmp/repr --filter 'model|optim'
    python tools/torch_repr_trial.py show --out /tmp/repr --kind differs --filter float16

``run`` writes ``cases.json`` and prints a count per group and kind.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_oracle import time_limit  # noqa: E402

SECONDS_PER_CASE = 10
KINDS = ("same", "differs", "torch_only_raised", "chainrule_only_raised")


class Case:
    """``code``: an expression giving the printed string; ``setup``: statements run before it (in the
    same namespace); ``options``: print options set for it; ``default_dtype``: one set for it."""

    def __init__(self, name, group, code, setup="", options=None, default_dtype=None):
        self.name, self.group, self.code, self.setup = name, group, code, setup
        self.options, self.default_dtype = options, default_dtype


# ----------------------------------------------------------------------------------------------
# the cases
# ----------------------------------------------------------------------------------------------

FLOATS = ("float16", "bfloat16", "float32", "float64")
COMPLEXES = ("complex64", "complex128")
INTEGERS = ("int8", "int16", "int32", "int64", "uint8")

FLOAT_VALUES = {
    "zero_d": "3.14159",
    "zero_d_negative_zero": "-0.0",
    "zero_d_nan": "float('nan')",
    "zero_d_int_valued": "7.0",
    "zero_d_huge": "1e20",
    "empty": "[]",
    "integer_valued": "[1.0, -2.0, 3.0, 100.0]",
    "fractions": "[0.5, -1.25, 3.125]",
    "mixed_magnitudes": "[0.001, 1000.5, 2.5]",
    "ratio_just_over_1000": "[1.0, 1001.0]",
    "ratio_1000": "[1.0, 1000.0]",
    "small_below_1e-4": "[0.00005, 1.0]",
    "small_at_1e-4": "[0.0001, 0.5]",
    "tiny_exponents": "[1e-10, 2.5e-12, -3e-15]",
    "huge_exponents": "[1e20, -3e30, 5e35]",
    "over_1e8": "[123456789.0, 1.0]",
    "integer_valued_huge": "[1e10, 2.0]",
    "nan_inf": "[float('nan'), float('inf'), -float('inf'), 1.5]",
    "only_nan_inf": "[float('nan'), float('inf'), -float('inf')]",
    "nan_and_integers": "[float('nan'), 2.0, -3.0]",
    "negative_zero": "[-0.0, 0.0, 1.0]",
    "all_zero": "[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]",
    "negative_alignment": "[[-1.5, 2.25], [30.125, -400.0]]",
    "rounding_edge": "[0.99995, 9.99995, 0.00015]",
    "max_float16": "[65504.0, -65504.0, 6.1e-05]",
    "two_d": "[[i * 0.37 - 2 for i in range(5)] for _ in range(3)]",
    "three_d": "[[[i + 10 * j + 100 * k + 0.5 for i in range(4)] for j in range(3)] for k in range(2)]",
    "four_d": "[[[[0.25 * (i - j) + k - l for i in range(2)] for j in range(3)] for k in range(2)] for l in range(2)]",
    "long_row_wraps": "[i * 1.5 for i in range(40)]",
    "long_row_sci_wraps": "[i * 1e5 + 0.5 for i in range(30)]",
}
FLOAT_SHAPED = {
    "empty_2_0_3": "torch.zeros(2, 0, 3, dtype={dtype})",
    "summarised_1d": "torch.arange(1001, dtype={dtype}) / 7",
    "summarised_2d": "(torch.arange(2000, dtype=torch.float64).reshape(40, 50) / 7).to({dtype})",
    "summarised_3d": "(torch.arange(2400, dtype=torch.float64).reshape(12, 10, 20) - 1200).to({dtype})",
    "summarised_4d": "(torch.arange(2000, dtype=torch.float64).reshape(10, 10, 10, 2) * 0.01).to({dtype})",
    "summarised_mixed": "(torch.arange(1200, dtype=torch.float64) ** 3 / 1e6).to({dtype})",
    "non_contiguous": "torch.arange(12, dtype=torch.float64).reshape(3, 4).t().to({dtype}) * 0.5",
}
COMPLEX_VALUES = {
    "zero_d": "1 + 2j",
    "zero_d_negative": "-1.5 - 0.25j",
    "empty": "[]",
    "integer_valued": "[1 + 2j, -3 - 4j, 0 + 1j]",
    "fractions": "[1.5 + 2.25j, -3.125 - 0.5j]",
    "mixed_magnitudes": "[0.001 + 1000j, 2.5 - 0.5j]",
    "tiny": "[1e-10 + 1j, 1 - 1e-12j]",
    "huge": "[1e20 + 1j, 1 - 3e30j]",
    "nan_parts": "[complex(float('nan'), 1.0), complex(1.0, float('nan')), 2 + 3j]",
    "inf_parts": "[complex(float('inf'), -1.0), complex(0.0, -float('inf')), 1 + 1j]",
    "negative_zero_parts": "[complex(-0.0, 0.0), complex(0.0, -0.0)]",
    "all_zero": "[[0j, 0j], [0j, 0j]]",
    "two_d": "[[complex(i * 0.37, -j) for i in range(4)] for j in range(3)]",
    "long_row_wraps": "[complex(i, -i * 0.5) for i in range(25)]",
}
COMPLEX_SHAPED = {
    "empty_2_0_3": "torch.zeros(2, 0, 3, dtype={dtype})",
    "summarised_1d": "torch.complex(torch.arange(1001.0), -torch.arange(1001.0) / 3).to({dtype})",
    "summarised_2d": "(torch.arange(2000.0).reshape(40, 50) * (1 + 0.5j)).to({dtype})",
}
INTEGER_VALUES = {
    "zero_d": "7",
    "zero_d_negative": "-7",
    "empty": "[]",
    "small": "[1, 2, 3]",
    "negative_alignment": "[[1, -22], [333, -4]]",
    "zeros": "[0, 0, 0]",
    "two_d": "[[i * j - 5 for i in range(6)] for j in range(4)]",
    "three_d": "[[[i + 3 * j + 12 * k for i in range(3)] for j in range(4)] for k in range(2)]",
    "long_row_wraps": "list(range(0, 120, 3))",
}
INTEGER_SHAPED = {
    "extremes": "torch.tensor([torch.iinfo({dtype}).min, 0, torch.iinfo({dtype}).max], dtype={dtype})",
    "empty_2_0_3": "torch.zeros(2, 0, 3, dtype={dtype})",
    "summarised_1d": "torch.arange(1200).remainder(100).to({dtype})",
    "summarised_2d": "torch.arange(2000).reshape(40, 50).remainder(120).to({dtype})",
}
BOOL_VALUES = {
    "zero_d": "True",
    "empty": "[]",
    "one_d": "[True, False, True]",
    "two_d": "[[True, False], [False, False]]",
}
BOOL_SHAPED = {
    "empty_2_0_3": "torch.zeros(2, 0, 3, dtype=torch.bool)",
    "summarised": "torch.arange(1500).remainder(3) == 0",
}


def _tensor_cases():
    cases = []

    def add(group, name, expression):
        cases.append(Case(f"{name}:repr", group, f"repr({expression})"))

    for dtype in FLOATS:
        for name, values in FLOAT_VALUES.items():
            add(f"tensor_{dtype}", f"{dtype}:{name}", f"torch.tensor({values}, dtype=torch.{dtype})")
        for name, template in FLOAT_SHAPED.items():
            add(f"tensor_{dtype}", f"{dtype}:{name}", template.format(dtype=f"torch.{dtype}"))
    for dtype in COMPLEXES:
        for name, values in COMPLEX_VALUES.items():
            add(f"tensor_{dtype}", f"{dtype}:{name}", f"torch.tensor({values}, dtype=torch.{dtype})")
        for name, template in COMPLEX_SHAPED.items():
            add(f"tensor_{dtype}", f"{dtype}:{name}", template.format(dtype=f"torch.{dtype}"))
    for dtype in INTEGERS:
        for name, values in INTEGER_VALUES.items():
            if dtype == "uint8" and "negative" in name:
                values = values.replace("-", "")
            add(f"tensor_{dtype}", f"{dtype}:{name}", f"torch.tensor({values}, dtype=torch.{dtype})")
        for name, template in INTEGER_SHAPED.items():
            add(f"tensor_{dtype}", f"{dtype}:{name}", template.format(dtype=f"torch.{dtype}"))
    for name, values in BOOL_VALUES.items():
        add("tensor_bool", f"bool:{name}", f"torch.tensor({values}, dtype=torch.bool)")
    for name, expression in BOOL_SHAPED.items():
        add("tensor_bool", f"bool:{name}", expression)
    # str() is repr() for tensors: a sample of each family checks it
    for expression in ("torch.tensor([1.5, -2.0])", "torch.tensor([[1, 2], [3, 4]], dtype=torch.int8)",
                       "torch.tensor([1 + 1j])", "torch.tensor(True)"):
        cases.append(Case(f"str:{expression}", "tensor_str", f"str({expression})"))
    return cases


SUFFIXES = {
    "requires_grad": "torch.tensor([1.0, 2.0], requires_grad=True)",
    "requires_grad_0d": "torch.tensor(2.5, requires_grad=True)",
    "requires_grad_float64": "torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)",
    "requires_grad_empty": "torch.zeros(0, requires_grad=True)",
    "requires_grad_empty_2d": "torch.zeros(2, 0, requires_grad=True)",
    "grad_fn_mul": "torch.tensor([1.0, 2.0], requires_grad=True) * 2",
    "grad_fn_add": "torch.tensor([1.0, 2.0], requires_grad=True) + 1",
    "grad_fn_sum": "torch.tensor([1.0, 2.0], requires_grad=True).sum()",
    "grad_fn_mean": "torch.tensor([1.0, 2.0], requires_grad=True).mean()",
    "grad_fn_pow": "torch.tensor([1.0, 2.0], requires_grad=True) ** 2",
    "grad_fn_select": "torch.tensor([[1.0, 2.0]], requires_grad=True)[0]",
    "grad_fn_slice": "torch.tensor([1.0, 2.0, 3.0], requires_grad=True)[1:]",
    "grad_fn_t": "torch.tensor([[1.0, 2.0]], requires_grad=True).t()",
    "grad_fn_view": "torch.tensor([[1.0, 2.0]], requires_grad=True).view(2)",
    "grad_fn_relu": "torch.relu(torch.tensor([1.0, -2.0], requires_grad=True))",
    "grad_fn_matmul": "torch.ones(2, 3, requires_grad=True) @ torch.ones(3, 2)",
    "grad_fn_float64": "torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True) * 3",
    "grad_fn_to_float64": "torch.tensor([1.0, 2.0], requires_grad=True).double()",
    "grad_fn_clone": "torch.tensor([1.0, 2.0], requires_grad=True).clone()",
    "grad_fn_exp_long": "torch.exp(torch.arange(30.0, requires_grad=True) / 10)",
    "grad_fn_complex": "torch.tensor([1 + 1j], requires_grad=True) * 2",
    "grad_fn_cat": "torch.cat([torch.ones(2, requires_grad=True), torch.zeros(1)])",
    "grad_fn_linear": "torch.nn.functional.linear(torch.ones(1, 2), torch.ones(3, 2, requires_grad=True))",
    "grad_fn_sigmoid": "torch.sigmoid(torch.zeros(2, requires_grad=True))",
    "grad_fn_softmax": "torch.softmax(torch.zeros(2, requires_grad=True), 0)",
    "grad_fn_expand": "torch.ones(1, requires_grad=True).expand(3)",
    "grad_fn_unsqueeze": "torch.ones(2, requires_grad=True).unsqueeze(0)",
    "grad_fn_reshape": "torch.ones(2, 2, requires_grad=True).reshape(4)",
    "grad_fn_index": "torch.ones(3, requires_grad=True)[torch.tensor([0, 2])]",
    "grad_fn_wraps_line": "torch.arange(13.0, requires_grad=True) * 1.2345",
    "dtype_float64": "torch.tensor([1.0, 2.0], dtype=torch.float64)",
    "dtype_int32": "torch.tensor([1, 2], dtype=torch.int32)",
    "dtype_wraps_line": "torch.arange(14, dtype=torch.int16) * 1000",
    "dtype_float16_long": "torch.arange(11, dtype=torch.float16) * 1.5",
    "dtype_and_grad_wraps": "torch.arange(10.0, dtype=torch.float64, requires_grad=True) * 1.2345",
    "meta": "torch.empty(2, 3, device='meta')",
    "meta_float64": "torch.empty(2, 3, device='meta', dtype=torch.float64)",
    "meta_int64": "torch.empty(4, device='meta', dtype=torch.int64)",
    "meta_0d": "torch.empty((), device='meta')",
    "meta_empty": "torch.empty(0, device='meta')",
    "meta_requires_grad": "torch.empty(2, device='meta', requires_grad=True)",
    "names": "torch.zeros(2, 3).refine_names('N', 'C')",
    "names_partial": "torch.zeros(2, 3).refine_names('N', None)",
    "detached": "(torch.ones(2, requires_grad=True) * 2).detach()",
    "grad": "_with_grad(torch)",
    "data": "torch.ones(2, requires_grad=True).data",
    "no_grad_result": "_no_grad_result(torch)",
    "inference_mode": "_inference_result(torch)",
    "leaf_after_inplace": "_inplace_result(torch)",
}
SUFFIX_HELPERS = """
def _with_grad(torch):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    return x.grad

def _no_grad_result(torch):
    x = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        return x * 2

def _inference_result(torch):
    with torch.inference_mode():
        return torch.ones(2) * 2

def _inplace_result(torch):
    x = torch.ones(3, requires_grad=True).clone()
    x.mul_(2)
    return x
"""


def _suffix_cases():
    return [Case(f"suffix:{name}", "suffixes", f"repr({expression})", setup=SUFFIX_HELPERS)
            for name, expression in SUFFIXES.items()]


OPTION_SETS = {
    "precision_2": {"precision": 2},
    "precision_0": {"precision": 0},
    "precision_10": {"precision": 10},
    "threshold_5": {"threshold": 5},
    "threshold_5_edgeitems_1": {"threshold": 5, "edgeitems": 1},
    "edgeitems_0": {"threshold": 3, "edgeitems": 0},
    "linewidth_30": {"linewidth": 30},
    "linewidth_200": {"linewidth": 200},
    "profile_short": {"profile": "short"},
    "profile_full": {"profile": "full"},
    "sci_true": {"sci_mode": True},
    "sci_false": {"sci_mode": False},
}
OPTION_VALUES = {
    "float": "torch.tensor([1.12345, -2.5, 300.0])",
    "mixed": "torch.tensor([[0.000012345, 1.5], [1e6, 2.0]])",
    "integer_valued": "torch.tensor([1.0, 2.0, 3.0])",
    "int64": "torch.arange(10)",
    "long": "torch.arange(30.0) * 0.37",
    "complex": "torch.tensor([1.5 + 2j, -0.001 + 1000j])",
    "float16": "torch.tensor([1.5, -2.25, 1000.0], dtype=torch.float16)",
    "bool": "torch.tensor([True, False, True, True, False, True])",
    "three_d": "torch.arange(60.0).reshape(3, 4, 5)",
    "big": "torch.arange(2000.0)",
    "grad": "torch.arange(8.0, requires_grad=True) * 1.5",
}


def _option_cases():
    cases = []
    for option_name, options in OPTION_SETS.items():
        for value_name, expression in OPTION_VALUES.items():
            cases.append(Case(f"options:{option_name}:{value_name}", "printoptions", f"repr({expression})",
                              options=options))
    cases.append(Case("options:get_printoptions", "printoptions", "repr(torch._tensor_str.get_printoptions())",
                      options={"precision": 3, "linewidth": 100}))
    cases.append(Case("options:unknown_profile", "printoptions",
                      "repr(torch.set_printoptions(profile='tiny'))"))
    cases.append(Case("options:reset_after_precision", "printoptions",
                      "(torch.set_printoptions(precision=2), torch.set_printoptions(profile='default'),"
                      " repr(torch.tensor([1.12345])))[2]"))
    for name, expression in (("float32", "torch.tensor([1.5, 2.0], dtype=torch.float32)"),
                             ("float64", "torch.tensor([1.5, 2.0])"),
                             ("complex64", "torch.tensor([1 + 1j], dtype=torch.complex64)"),
                             ("complex128", "torch.tensor([1 + 1j])"),
                             ("float32_meta", "torch.empty(2, device='meta', dtype=torch.float32)"),
                             ("float32_empty", "torch.zeros(0, dtype=torch.float32)")):
        cases.append(Case(f"default_dtype_float64:{name}", "default_dtype", f"repr({expression})",
                          default_dtype="float64"))
    return cases


OBJECTS = {
    "parameter": "repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))",
    "parameter_str": "str(torch.nn.Parameter(torch.tensor([[1.0], [2.0]])))",
    "parameter_no_grad": "repr(torch.nn.Parameter(torch.tensor([1.0, 2.0]), requires_grad=False))",
    "parameter_float64": "repr(torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64)))",
    "parameter_empty": "repr(torch.nn.Parameter(torch.zeros(0)))",
    "buffer_in_state_dict": "repr(torch.nn.BatchNorm1d(2).state_dict())",
    "linear_state_dict": "repr(_seeded_linear(torch).state_dict())",
    "linear_weight": "repr(_seeded_linear(torch).weight)",
    "size": "repr(torch.Size([2, 3]))",
    "size_str": "str(torch.Size([2, 3]))",
    "size_empty": "repr(torch.Size([]))",
    "size_one": "repr(torch.Size([4]))",
    "tensor_shape": "repr(torch.zeros(2, 0, 3).shape)",
    "tensor_size_dim": "repr(torch.zeros(2, 3).size(1))",
    "dtype_float32": "repr(torch.float32)",
    "dtype_str": "str(torch.float64)",
    "dtype_alias": "repr(torch.float)",
    "dtype_alias_long": "repr(torch.long)",
    "dtype_half": "repr(torch.half)",
    "dtype_bfloat16": "repr(torch.bfloat16)",
    "dtype_cfloat": "repr(torch.cfloat)",
    "dtype_bool": "repr(torch.bool)",
    "dtype_uint8": "repr(torch.uint8)",
    "dtype_of_tensor": "repr(torch.zeros(1, dtype=torch.int16).dtype)",
    "dtype_in_fstring": "f'{torch.float32}'",
    "device_cpu": "repr(torch.device('cpu'))",
    "device_str": "str(torch.device('cpu'))",
    "device_cuda1": "repr(torch.device('cuda', 1))",
    "device_cuda_str": "str(torch.device('cuda:0'))",
    "device_meta": "repr(torch.device('meta'))",
    "device_of_tensor": "repr(torch.zeros(1).device)",
    "layout": "repr(torch.strided)",
    "memory_format": "repr(torch.channels_last)",
    "finfo_float32": "repr(torch.finfo(torch.float32))",
    "finfo_float64": "repr(torch.finfo(torch.float64))",
    "finfo_float16": "repr(torch.finfo(torch.float16))",
    "finfo_bfloat16": "repr(torch.finfo(torch.bfloat16))",
    "finfo_default": "repr(torch.finfo())",
    "finfo_str": "str(torch.finfo(torch.float32))",
    "finfo_eps": "repr(torch.finfo(torch.float32).eps)",
    "iinfo_int8": "repr(torch.iinfo(torch.int8))",
    "iinfo_int64": "repr(torch.iinfo(torch.int64))",
    "iinfo_uint8": "repr(torch.iinfo(torch.uint8))",
    "iinfo_str": "str(torch.iinfo(torch.int32))",
    "generator": "re_address(repr(torch.Generator()))",
    "generator_seed": "repr(torch.Generator().manual_seed(3).initial_seed())",
    "return_max": "repr(torch.max(torch.tensor([[1.0, 5.0], [3.0, 2.0]]), 1))",
    "return_min_keepdim": "repr(torch.min(torch.tensor([[1.0, 5.0], [3.0, 2.0]]), 0, keepdim=True))",
    "return_sort": "repr(torch.sort(torch.tensor([3.0, 1.0, 2.0])))",
    "return_topk": "repr(torch.topk(torch.tensor([3.0, 1.0, 2.0]), 2))",
    "return_kthvalue": "repr(torch.kthvalue(torch.tensor([3.0, 1.0, 2.0]), 2))",
    "return_median": "repr(torch.median(torch.tensor([[3.0, 1.0, 2.0]]), 1))",
    "return_mode": "repr(torch.mode(torch.tensor([1, 1, 2])))",
    "return_cummax": "repr(torch.cummax(torch.tensor([1.0, 3.0, 2.0]), 0))",
    "return_aminmax": "repr(torch.aminmax(torch.tensor([1.0, 3.0, 2.0])))",
    "return_svd": "repr(torch.svd(torch.tensor([[2.0, 0.0], [0.0, 1.0]])))",
    "return_linalg_svd": "repr(torch.linalg.svd(torch.tensor([[2.0, 0.0], [0.0, 1.0]])))",
    "return_linalg_eigh": "repr(torch.linalg.eigh(torch.tensor([[2.0, 0.0], [0.0, 1.0]])))",
    "return_linalg_qr": "repr(torch.linalg.qr(torch.tensor([[2.0, 0.0], [0.0, 1.0]])))",
    "return_slogdet": "repr(torch.linalg.slogdet(torch.tensor([[2.0, 0.0], [0.0, 1.0]])))",
    "return_frexp": "repr(torch.frexp(torch.tensor([8.0, 0.5])))",
    "return_max_grad": "repr(torch.max(torch.tensor([[1.0, 5.0]], requires_grad=True), 1))",
    "return_str": "str(torch.sort(torch.tensor([3.0, 1.0])))",
    "return_values_field": "repr(torch.max(torch.tensor([[1.0, 5.0]]), 1).values)",
    "return_tuple": "repr(tuple(torch.max(torch.tensor([[1.0, 5.0]]), 1)))",
    "std_mean": "repr(torch.std_mean(torch.tensor([1.0, 2.0, 4.0])))",
    "list_of_tensors": "repr([torch.tensor([1.0, 2.0]), torch.tensor(3)])",
    "str_list_of_tensors": "str([torch.tensor([1.5]), torch.tensor([[1, 2]])])",
    "dict_of_tensors": "repr({'a': torch.tensor([1.0]), 'b': torch.zeros(2, dtype=torch.int32)})",
    "tuple_of_tensors": "repr((torch.tensor(1.0), torch.tensor([True])))",
    "nested_list": "repr([[torch.tensor([[1.0, 2.0], [3.0, 4.0]])]])",
    "fstring": "f'value: {torch.tensor([1.5, 2.0])}'",
    "fstring_0d": "f'{torch.tensor(2.5)}'",
    "fstring_repr": "f'{torch.tensor([1.5])!r}'",
    "format_empty_spec": "format(torch.tensor([1.5, 2.0]), '')",
    "format_0d_3f": "format(torch.tensor(2.71828), '.3f')",
    "format_0d_e": "format(torch.tensor(12345.678), '.2e')",
    "format_0d_int": "format(torch.tensor(42), 'd')",
    "format_0d_int_width": "format(torch.tensor(42), '>6')",
    "format_0d_float64": "format(torch.tensor(2.5, dtype=torch.float64), '.1f')",
    "format_0d_bool": "format(torch.tensor(True), '')",
    "format_0d_grad": "format(torch.tensor(2.5, requires_grad=True), '.2f')",
    "format_1d_spec": "format(torch.tensor([1.5, 2.0]), '.2f')",
    "format_item": "format(torch.tensor(2.71828).item(), '.3f')",
    "item_repr": "repr(torch.tensor(0.1).item())",
    "item_float16": "repr(torch.tensor(0.1, dtype=torch.float16).item())",
    "item_int": "repr(torch.tensor(3, dtype=torch.int8).item())",
    "item_bool": "repr(torch.tensor(True).item())",
    "item_complex": "repr(torch.tensor(1 + 2j).item())",
    "tolist": "repr(torch.tensor([[0.1, 0.2]]).tolist())",
    "percent_format": "'%.2f' % torch.tensor(1.2345)",
    "str_format_method": "'{:.1f}'.format(torch.tensor(3.14159))",
    "grad_fn_repr": "re_address(repr((torch.ones(1, requires_grad=True) * 2).grad_fn))",
    "grad_fn_name": "(torch.ones(1, requires_grad=True) * 2).grad_fn.name()",
    "accumulate_grad": "re_address(repr((torch.ones(1, requires_grad=True) * 2).grad_fn.next_functions))",
    "no_grad_repr": "re_address(repr(torch.no_grad()))",
    "tensor_type": "torch.zeros(1).type()",
    "tensor_type_int": "torch.zeros(1, dtype=torch.int32).type()",
    "tensor_class": "repr(type(torch.zeros(1)))",
    "nn_module_class": "repr(torch.nn.Linear)",
    "tensor_dir_none": "repr(torch.zeros(1).grad)",
    "return_nanmedian": "repr(torch.nanmedian(torch.tensor([[1.0, float('nan'), 3.0]]), 1))",
    "return_cummin": "repr(torch.cummin(torch.tensor([3.0, 1.0, 2.0]), 0))",
    "return_lu_factor": "repr(torch.linalg.lu_factor(torch.tensor([[2.0, 1.0], [1.0, 3.0]])))",
    "return_lu_unpack": "repr(torch.lu_unpack(*torch.linalg.lu_factor(torch.tensor([[2.0, 1.0], [1.0, 3.0]]))))",
    "return_inv_ex": "repr(torch.linalg.inv_ex(torch.tensor([[2.0, 0.0], [0.0, 4.0]])))",
    "return_cholesky_ex": "repr(torch.linalg.cholesky_ex(torch.tensor([[4.0, 0.0], [0.0, 9.0]])))",
    "return_eig": "repr(torch.linalg.eig(torch.tensor([[2.0, 0.0], [0.0, 1.0]])))",
    "return_lstsq": "repr(torch.linalg.lstsq(torch.eye(2), torch.ones(2, 1)))",
    "return_triangular_solve": "repr(torch.triangular_solve(torch.ones(2, 1), torch.eye(2)))",
    "return_geqrf": "repr(torch.geqrf(torch.tensor([[2.0, 0.0], [0.0, 1.0]])))",
    "return_histogram": "repr(torch.histogram(torch.tensor([1.0, 2.0, 1.0]), bins=2))",
    "return_var_mean": "repr(torch.var_mean(torch.tensor([1.0, 2.0, 4.0])))",
    "return_unique": "repr(torch.unique(torch.tensor([2, 1, 2]), return_counts=True))",
    "return_max_all": "repr(torch.max(torch.tensor([1.0, 5.0])))",
    "return_types_class": "repr(type(torch.max(torch.tensor([[1.0]]), 1)))",
    "return_max_fields": "repr(torch.max(torch.tensor([[1.0]]), 1)._fields)",
    "storage": "repr(torch.tensor([1.0, 2.0]).storage())",
    "untyped_storage": "repr(torch.tensor([1, 2], dtype=torch.uint8).untyped_storage())",
    "generator_state": "repr(torch.Generator().manual_seed(1).get_state())",
    "device_cuda_bare": "repr(torch.device('cuda'))",
    "device_cpu_index": "repr(torch.device('cpu', 0))",
    "device_str_index": "str(torch.device('cuda', 2))",
    "dtype_float8": "repr(torch.float8_e4m3fn)",
    "dtype_uint16": "repr(torch.uint16)",
    "dtype_chalf": "repr(torch.chalf)",
    "dtype_to_complex": "repr(torch.float32.to_complex())",
    "dtype_to_real": "repr(torch.complex128.to_real())",
    "default_dtype": "repr(torch.get_default_dtype())",
    "layout_csr": "repr(torch.sparse_csr)",
    "memory_format_contiguous": "repr(torch.contiguous_format)",
    "memory_format_preserve": "str(torch.preserve_format)",
    "size_slice": "repr(torch.Size([2, 3, 4])[1:])",
    "size_add": "repr(torch.Size([2]) + (3,))",
    "size_radd": "repr((3,) + torch.Size([2]))",
    "size_mul": "repr(torch.Size([2]) * 2)",
    "size_0d_shape": "repr(torch.tensor(1.0).shape)",
    "size_numel": "repr(torch.Size([2, 3]).numel())",
    "finfo_complex64": "repr(torch.finfo(torch.complex64))",
    "finfo_float8": "repr(torch.finfo(torch.float8_e4m3fn))",
    "iinfo_bool": "repr(torch.iinfo(torch.bool))",
    "iinfo_of_float": "repr(torch.iinfo(torch.float32))",
    "iinfo_bits": "repr(torch.iinfo(torch.int32).bits)",
    "finfo_fields": "repr((torch.finfo(torch.float16).max, torch.finfo(torch.float16).tiny, torch.finfo(torch.float16).resolution))",
    "percent_d": "'%d' % torch.tensor(3)",
    "percent_s": "'%s' % torch.tensor([1.0])",
    "format_width_0d": "f'{torch.tensor(7):>5}'",
    "format_spec_1d": "f'{torch.tensor([7]):>5}'",
    "format_meta_0d": "format(torch.empty((), device='meta'), '')",
    "format_0d_nan": "format(torch.tensor(float('nan')), '.2f')",
    "format_0d_complex": "format(torch.tensor(1 + 2j), '.1f')",
    "round_digits": "repr(round(torch.tensor(2.567), 2))",
    "round_plain": "repr(round(torch.tensor(2.567)))",
    "parameters_list": "repr(list(_seeded_linear(torch).parameters()))",
    "parameter_list_meta": "str(torch.nn.ParameterList([torch.nn.Parameter(torch.empty(2, device='meta')), "
                           "torch.zeros(3, dtype=torch.float64), torch.nn.Parameter(torch.zeros(1), requires_grad=False)]))",
    "parameter_dict_plain": "str(torch.nn.ParameterDict({'x': torch.zeros(2, 2, dtype=torch.int64)}))",
    "hook_handle": "re_address(repr(torch.ones(1, requires_grad=True).register_hook(lambda g: g)))",
    "packed_sequence": "repr(torch.nn.utils.rnn.pack_sequence([torch.tensor([1.0, 2.0]), torch.tensor([3.0])]))",
    "grad_mode_enabled": "repr(torch.is_grad_enabled())",
    "class_of_size": "repr(type(torch.Size([1])))",
    "class_of_dtype": "repr(type(torch.float32))",
    "class_of_device": "repr(type(torch.device('cpu')))",
    "class_of_layout": "repr(type(torch.strided))",
    "class_of_generator": "repr(type(torch.Generator()))",
    "class_of_parameter": "repr(torch.nn.Parameter)",
    "class_of_grad_fn": "repr(type(torch.ones(1, requires_grad=True).sum().grad_fn))",
    "class_of_return_type": "repr(type(torch.sort(torch.ones(2))))",
    "isinstance_names": "type(torch.ones(1)).__name__ + type(torch.Size([1])).__name__",
}
OBJECT_HELPERS = """
def _seeded_linear(torch):
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -1.0], [2.0, 0.25]]))
        layer.bias.copy_(torch.tensor([0.1, -0.2]))
    return layer
"""


def _object_cases():
    return [Case(f"object:{name}", "objects", code, setup=OBJECT_HELPERS) for name, code in OBJECTS.items()]


# tensors that are not plain strided float/int/bool CPU tensors, and tensors seen from inside transforms
SPECIAL = {
    "float8_e4m3fn": "repr(torch.tensor([1.5, -2.0, 448.0]).to(torch.float8_e4m3fn))",
    "float8_e5m2": "repr(torch.tensor([1.5, -2.0, 0.001]).to(torch.float8_e5m2))",
    "uint16": "repr(torch.tensor([1, 2, 65535]).to(torch.uint16))",
    "uint32": "repr(torch.tensor([1, 2, 4000000000]).to(torch.uint32))",
    "uint64": "repr(torch.tensor([1, 2]).to(torch.uint64))",
    "complex32": "repr(torch.tensor([1 + 2j]).to(torch.complex32))",
    "conj": "repr(torch.tensor([1 + 2j, 3 - 1j]).conj())",
    "conj_physical": "repr(torch.tensor([1 + 2j]).conj_physical())",
    "neg_view": "repr(torch._neg_view(torch.tensor([1.0, -2.0])))",
    "imag_view": "repr(torch.tensor([1 + 2j, 3 - 1j]).imag)",
    "view_as_real": "repr(torch.view_as_real(torch.tensor([1 + 2j])))",
    "subclass": "repr(torch.ones(2).as_subclass(_MyTensor(torch)))",
    "subclass_grad": "repr((torch.ones(2, requires_grad=True) * 2).as_subclass(_MyTensor(torch)))",
    "subclass_str": "str(torch.zeros(2, 2).as_subclass(_MyTensor(torch)))",
    "parameter_subclass": "repr(_MyParameter(torch)(torch.ones(2)))",
    "buffer": "repr(torch.nn.Buffer(torch.ones(2)))",
    "uninitialized_parameter": "repr(torch.nn.LazyLinear(3).weight)",
    "lazy_linear": "repr(torch.nn.LazyLinear(3))",
    "lazy_conv": "repr(torch.nn.LazyConv2d(4, 3))",
    "nested": "repr(torch.nested.nested_tensor([torch.ones(2), torch.zeros(3)]))",
    "nested_jagged": "repr(torch.nested.nested_tensor([torch.ones(2), torch.zeros(3)], layout=torch.jagged))",
    "sparse_coo": "repr(torch.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2)))",
    "sparse_coo_empty": "repr(torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (2, 2)))",
    "sparse_csr": "repr(torch.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse_csr())",
    "sparse_layout": "repr(torch.sparse_coo)",
    "dual_tangent": "_dual_repr(torch)",
    "vmap_inside": "_vmap_repr(torch)",
    "grad_inside": "_grad_repr(torch)",
    "custom_function": "repr(_custom_function_output(torch))",
    "custom_function_node": "re_address(repr(_custom_function_output(torch).grad_fn))",
    "checkpoint_output": "repr(_checkpointed(torch))",
    "inplace_view": "repr(_inplace_on_view(torch))",
    "rebased_view_grad_fn": "repr(_rebased_view(torch))",
    "expanded": "repr(torch.tensor([1.0, 2.0]).expand(3, 2))",
    "strided_view": "repr(torch.arange(10.0)[::3])",
    "channels_last": "repr(torch.arange(8.0).reshape(1, 2, 2, 2).to(memory_format=torch.channels_last))",
    "as_strided_zero_stride": "repr(torch.zeros(1).as_strided((2, 2), (0, 0)))",
    "zeros_like_requires_grad": "repr(torch.zeros_like(torch.ones(2), requires_grad=True))",
    "default_device_meta": "repr(_on_default_device(torch, 'meta'))",
    "scalar_tensor": "repr(torch.scalar_tensor(3))",
    "int_0d_float64_default": "repr(torch.tensor(3.0, dtype=torch.float64))",
}
SPECIAL_HELPERS = """
def _MyTensor(torch):
    class MyTensor(torch.Tensor):
        pass
    return MyTensor

def _MyParameter(torch):
    class MyParameter(torch.nn.Parameter):
        pass
    return MyParameter

def _dual_repr(torch):
    import importlib
    forward_ad = importlib.import_module(torch.__name__ + '.autograd.forward_ad')
    with forward_ad.dual_level():
        return repr(forward_ad.make_dual(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.25])))

def _vmap_repr(torch):
    seen = []
    def f(x):
        seen.append(repr(x))
        return x * 2
    torch.vmap(f)(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    return seen[0]

def _grad_repr(torch):
    seen = []
    def f(x):
        seen.append(repr(x))
        return (x * x).sum()
    torch.func.grad(f)(torch.tensor([1.0, 2.0]))
    return seen[0]

def _custom_function_output(torch):
    class Double(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2
        @staticmethod
        def backward(ctx, grad):
            return grad * 2
    return Double.apply(torch.ones(2, requires_grad=True))

def _checkpointed(torch):
    import importlib
    checkpoint = importlib.import_module(torch.__name__ + '.utils.checkpoint').checkpoint
    return checkpoint(lambda x: x.sin(), torch.ones(2, requires_grad=True), use_reentrant=False)

def _inplace_on_view(torch):
    x = torch.ones(2, 2, requires_grad=True).clone()
    x[0].mul_(2)
    return x

def _rebased_view(torch):
    x = torch.ones(2, 2, requires_grad=True).clone()
    view = x[0]
    x.mul_(2)
    return view

def _on_default_device(torch, device):
    torch.set_default_device(device)
    try:
        return torch.ones(2)
    finally:
        torch.set_default_device(None)
"""


def _special_cases():
    return [Case(f"special:{name}", "special_tensors", code, setup=SPECIAL_HELPERS) for name, code in SPECIAL.items()]


def _random_value_cases(count=600, seed=2026):
    """Seeded random tensors: dtype, shape (empty dims included), magnitudes over 24 decades, some
    integer-valued, some nan/inf/-0.0, under random print options; the values are written out as
    literals, so both libraries build them from the same Python floats."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cases = []
    for number in range(count):
        dtype = str(rng.choice(FLOATS + COMPLEXES + INTEGERS + ("bool",)))
        ndim = int(rng.integers(0, 4))
        shape = tuple(int(size) for size in rng.integers(0, 7, ndim))
        if rng.random() < 0.15:
            shape = (int(rng.integers(300, 1300)),)
        size = int(np.prod(shape))
        low, high = sorted(rng.uniform(-12, 12, 2))
        magnitudes = 10.0 ** rng.uniform(low, high, size) * rng.choice([-1.0, 1.0], size)
        if rng.random() < 0.3:
            magnitudes = np.round(magnitudes)
        special = rng.random(size) < (0.1 if rng.random() < 0.3 else 0.0)
        magnitudes[special] = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], int(special.sum()))
        if dtype.startswith("complex"):
            imaginary = 10.0 ** rng.uniform(low, high, size) * rng.choice([-1.0, 1.0], size)
            values = [complex(re, im) for re, im in zip(magnitudes.tolist(), imaginary.tolist())]
        elif dtype == "bool":
            values = (magnitudes > 0).tolist()
        elif dtype in INTEGERS:
            info = np.iinfo(dtype)
            # within +-2**62: the float bound of int64's range would overflow the cast back
            low_end, high_end = max(info.min, -2 ** 62), min(info.max, 2 ** 62)
            values = np.clip(np.nan_to_num(magnitudes, posinf=high_end, neginf=low_end), low_end, high_end)
            values = values.astype(np.int64).tolist()
        else:
            values = magnitudes.tolist()
        literal = repr(np.array(values, dtype=object).reshape(shape).tolist()).replace("nan", "float('nan')")
        literal = literal.replace("inf", "float('inf')")
        options = {}
        if rng.random() < 0.5:
            options["precision"] = int(rng.integers(0, 9))
        if rng.random() < 0.3:
            options["linewidth"] = int(rng.integers(20, 140))
        if rng.random() < 0.2:
            options["sci_mode"] = bool(rng.integers(0, 2))
        if rng.random() < 0.2:
            options["threshold"] = int(rng.integers(3, 50))
            options["edgeitems"] = int(rng.integers(0, 4))
        suffix = ", requires_grad=True" if dtype in FLOATS + COMPLEXES and rng.random() < 0.2 else ""
        family = ("floating" if dtype in FLOATS else "complex" if dtype in COMPLEXES
                  else "integer" if dtype in INTEGERS else "bool")
        cases.append(Case(f"random:{number}:{dtype}:{shape}", f"random_{family}",
                          f"repr(torch.tensor({literal}, dtype=torch.{dtype}{suffix}))", options=options or None))
    return cases


MODELS = {
    "linear": "nn.Linear(4, 3)",
    "linear_no_bias": "nn.Linear(4, 3, bias=False)",
    "bilinear": "nn.Bilinear(2, 3, 4)",
    "identity": "nn.Identity()",
    "conv1d": "nn.Conv1d(3, 8, 5, stride=2, padding=1)",
    "conv2d": "nn.Conv2d(3, 16, 3)",
    "conv2d_no_bias": "nn.Conv2d(3, 16, 3, bias=False)",
    "conv2d_padding_mode": "nn.Conv2d(3, 16, (3, 5), padding=2, padding_mode='reflect')",
    "conv2d_same": "nn.Conv2d(3, 16, 3, padding='same', dilation=2)",
    "conv2d_groups": "nn.Conv2d(4, 8, 3, groups=2, stride=(2, 1))",
    "conv2d_circular": "nn.Conv2d(1, 1, 3, padding=1, padding_mode='circular', bias=False)",
    "conv3d": "nn.Conv3d(2, 4, 3, padding=(1, 0, 1))",
    "conv_transpose2d": "nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, output_padding=1)",
    "conv_transpose1d_dilation": "nn.ConvTranspose1d(2, 2, 3, dilation=2, bias=False)",
    "batchnorm1d": "nn.BatchNorm1d(10)",
    "batchnorm2d_no_affine": "nn.BatchNorm2d(16, affine=False)",
    "batchnorm2d_momentum": "nn.BatchNorm2d(16, eps=1e-3, momentum=0.01, track_running_stats=False)",
    "batchnorm_momentum_none": "nn.BatchNorm1d(4, momentum=None)",
    "layernorm": "nn.LayerNorm(10)",
    "layernorm_tuple": "nn.LayerNorm((4, 5), eps=1e-6, elementwise_affine=False)",
    "layernorm_no_bias": "nn.LayerNorm(8, bias=False)",
    "groupnorm": "nn.GroupNorm(2, 8)",
    "instancenorm2d": "nn.InstanceNorm2d(3)",
    "instancenorm_affine": "nn.InstanceNorm1d(3, affine=True)",
    "rmsnorm": "nn.RMSNorm(6)",
    "localresponsenorm": "nn.LocalResponseNorm(2)",
    "dropout": "nn.Dropout()",
    "dropout_inplace": "nn.Dropout(p=0.3, inplace=True)",
    "dropout2d": "nn.Dropout2d(0.1)",
    "alpha_dropout": "nn.AlphaDropout(0.2)",
    "relu": "nn.ReLU()",
    "relu_inplace": "nn.ReLU(inplace=True)",
    "leaky_relu": "nn.LeakyReLU(0.2, inplace=True)",
    "leaky_relu_default": "nn.LeakyReLU()",
    "gelu": "nn.GELU()",
    "gelu_tanh": "nn.GELU(approximate='tanh')",
    "elu": "nn.ELU(alpha=0.5)",
    "celu": "nn.CELU()",
    "selu": "nn.SELU()",
    "silu": "nn.SiLU()",
    "mish": "nn.Mish()",
    "sigmoid": "nn.Sigmoid()",
    "tanh": "nn.Tanh()",
    "hardtanh": "nn.Hardtanh(-2.0, 2.0)",
    "relu6": "nn.ReLU6()",
    "hardswish": "nn.Hardswish()",
    "softplus": "nn.Softplus(beta=2, threshold=10)",
    "softmax": "nn.Softmax(dim=1)",
    "softmax_none": "nn.Softmax()",
    "log_softmax": "nn.LogSoftmax(dim=-1)",
    "threshold": "nn.Threshold(0.1, 20.0)",
    "prelu": "nn.PReLU()",
    "prelu_params": "nn.PReLU(3, init=0.1)",
    "glu": "nn.GLU()",
    "softsign": "nn.Softsign()",
    "tanhshrink": "nn.Tanhshrink()",
    "hardshrink": "nn.Hardshrink(0.3)",
    "maxpool2d": "nn.MaxPool2d(2)",
    "maxpool2d_args": "nn.MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True)",
    "maxpool1d": "nn.MaxPool1d(2, return_indices=True)",
    "avgpool2d": "nn.AvgPool2d(2, stride=1, count_include_pad=False)",
    "avgpool1d": "nn.AvgPool1d(3)",
    "adaptive_avgpool2d": "nn.AdaptiveAvgPool2d((1, 1))",
    "adaptive_avgpool2d_none": "nn.AdaptiveAvgPool2d((None, 7))",
    "adaptive_maxpool1d": "nn.AdaptiveMaxPool1d(4)",
    "lppool2d": "nn.LPPool2d(2, 3)",
    "flatten": "nn.Flatten()",
    "flatten_dims": "nn.Flatten(0, -1)",
    "unflatten": "nn.Unflatten(1, (2, 5))",
    "upsample": "nn.Upsample(scale_factor=2, mode='nearest')",
    "upsample_bilinear": "nn.Upsample(size=(4, 4), mode='bilinear', align_corners=True)",
    "pixel_shuffle": "nn.PixelShuffle(2)",
    "zero_pad": "nn.ZeroPad2d((1, 1, 2, 0))",
    "constant_pad": "nn.ConstantPad1d(2, 3.5)",
    "reflection_pad": "nn.ReflectionPad2d(1)",
    "embedding": "nn.Embedding(10, 3)",
    "embedding_padding": "nn.Embedding(10, 3, padding_idx=0)",
    "embedding_max_norm": "nn.Embedding(10, 3, max_norm=1.0, scale_grad_by_freq=True, sparse=True)",
    "embedding_bag": "nn.EmbeddingBag(10, 3, mode='max')",
    "rnn": "nn.RNN(4, 8)",
    "rnn_relu": "nn.RNN(4, 8, nonlinearity='relu', num_layers=2)",
    "lstm": "nn.LSTM(10, 20)",
    "lstm_args": "nn.LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1)",
    "lstm_proj": "nn.LSTM(4, 8, proj_size=3, bias=False)",
    "gru": "nn.GRU(5, 6, batch_first=True)",
    "lstm_cell": "nn.LSTMCell(3, 4)",
    "gru_cell": "nn.GRUCell(3, 4, bias=False)",
    "rnn_cell": "nn.RNNCell(3, 4, nonlinearity='relu')",
    "multihead_attention": "nn.MultiheadAttention(16, 4)",
    "multihead_attention_kdim": "nn.MultiheadAttention(16, 4, kdim=8, vdim=8, batch_first=True)",
    "transformer_encoder_layer": "nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32)",
    "transformer_encoder_layer_gelu": "nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation='gelu', "
                                      "norm_first=True, batch_first=True)",
    "transformer_decoder_layer": "nn.TransformerDecoderLayer(d_model=16, nhead=4, dim_feedforward=32)",
    "transformer_encoder": "nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32), num_layers=2, "
                           "enable_nested_tensor=False)",
    "transformer": "nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1, "
                   "dim_feedforward=32)",
    "mse_loss": "nn.MSELoss()",
    "cross_entropy": "nn.CrossEntropyLoss(label_smoothing=0.1)",
    "nll_loss": "nn.NLLLoss(reduction='sum')",
    "bce_with_logits": "nn.BCEWithLogitsLoss()",
    "smooth_l1": "nn.SmoothL1Loss(beta=0.5)",
    "huber": "nn.HuberLoss(delta=2.0)",
    "kl_div": "nn.KLDivLoss(reduction='batchmean', log_target=True)",
    "cosine_similarity": "nn.CosineSimilarity(dim=0)",
    "pairwise_distance": "nn.PairwiseDistance()",
    "sequential_mlp": "nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))",
    "sequential_cnn": "nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), "
                      "nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 14 * 14, 10))",
    "sequential_ordered_dict": "nn.Sequential(collections.OrderedDict([('fc1', nn.Linear(2, 3)), "
                               "('act', nn.Tanh()), ('fc2', nn.Linear(3, 1))]))",
    "sequential_nested": "nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Linear(2, 1))",
    "sequential_empty": "nn.Sequential()",
    "sequential_repeated": "nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))",
    "module_list": "nn.ModuleList([nn.Linear(2, 3), nn.ReLU()])",
    "module_dict": "nn.ModuleDict({'encoder': nn.Linear(2, 3), 'act': nn.GELU()})",
    "parameter_list": "nn.ParameterList([nn.Parameter(torch.zeros(2, 3)), nn.Parameter(torch.zeros(4))])",
    "parameter_dict": "nn.ParameterDict({'a': nn.Parameter(torch.zeros(2)), "
                      "'b': nn.Parameter(torch.zeros(3, dtype=torch.float64))})",
    "custom_module": "_Custom(nn)",
    "custom_extra_repr": "_WithExtra(nn)",
    "custom_multiline_extra": "_MultilineExtra(nn)",
    "custom_empty_child": "_EmptyChild(nn)",
    "unet_like": "_Block(nn)",
    "weight_norm": "nn.utils.parametrizations.weight_norm(nn.Linear(2, 3))",
    "spectral_norm_old": "nn.utils.spectral_norm(nn.Linear(2, 3))",
    "embedding_from_pretrained": "nn.Embedding.from_pretrained(torch.ones(3, 2), freeze=False, padding_idx=1)",
    "upsample_float_scale": "nn.Upsample(scale_factor=2.0)",
    "upsample_tuple_scale": "nn.Upsample(scale_factor=(2, 3), mode='bicubic')",
    "upsampling_bilinear": "nn.UpsamplingBilinear2d(scale_factor=2)",
    "pixel_unshuffle": "nn.PixelUnshuffle(2)",
    "channel_shuffle": "nn.ChannelShuffle(2)",
    "fold": "nn.Fold(output_size=(4, 5), kernel_size=(2, 2))",
    "unfold": "nn.Unfold(kernel_size=3, padding=1, stride=2)",
    "softmax2d": "nn.Softmax2d()",
    "softmin": "nn.Softmin(dim=0)",
    "log_sigmoid": "nn.LogSigmoid()",
    "hardsigmoid": "nn.Hardsigmoid(inplace=True)",
    "rrelu": "nn.RReLU(0.1, 0.3)",
    "softshrink": "nn.Softshrink()",
    "dropout1d": "nn.Dropout1d(0.2)",
    "feature_alpha_dropout": "nn.FeatureAlphaDropout(0.1)",
    "batchnorm3d": "nn.BatchNorm3d(3)",
    "lazy_batchnorm": "nn.LazyBatchNorm1d()",
    "instancenorm3d_stats": "nn.InstanceNorm3d(2, track_running_stats=True)",
    "conv_transpose3d_groups": "nn.ConvTranspose3d(4, 4, 3, groups=2, padding=(1, 0, 0))",
    "conv1d_valid": "nn.Conv1d(2, 2, 3, padding='valid')",
    "conv2d_padding_tuple": "nn.Conv2d(2, 2, 3, padding=(1, 2), padding_mode='replicate')",
    "mha_bias_kv": "nn.MultiheadAttention(8, 2, bias=False, add_bias_kv=True, add_zero_attn=True, dropout=0.1)",
    "fractional_max_pool": "nn.FractionalMaxPool2d(3, output_size=5)",
    "max_unpool": "nn.MaxUnpool2d(2, stride=2)",
    "avgpool2d_divisor": "nn.AvgPool2d(3, divisor_override=2, ceil_mode=True)",
    "replication_pad3d": "nn.ReplicationPad3d(1)",
    "circular_pad2d": "nn.CircularPad2d((1, 0, 1, 0))",
    "cross_entropy_weight": "nn.CrossEntropyLoss(weight=torch.ones(3), ignore_index=2)",
    "ctc_loss": "nn.CTCLoss(blank=1, zero_infinity=True)",
    "triplet_margin": "nn.TripletMarginLoss(margin=0.5, p=1)",
    "margin_ranking": "nn.MarginRankingLoss(margin=0.2)",
    "poisson_nll": "nn.PoissonNLLLoss(log_input=False, full=True)",
    "gaussian_nll": "nn.GaussianNLLLoss()",
    "cosine_embedding": "nn.CosineEmbeddingLoss()",
    "adaptive_log_softmax": "nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8])",
    "transformer_decoder": "nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), num_layers=1, "
                           "norm=nn.LayerNorm(8))",
    "sequential_with_dict": "nn.Sequential(nn.ModuleDict({'a': nn.ReLU()}), nn.ModuleList([nn.Tanh()]))",
    "identity_args": "nn.Identity(54, unused_argument1=0.1)",
    "flatten_unflatten_names": "nn.Sequential(nn.Flatten(1, 2), nn.Unflatten(1, torch.Size([2, 3])))",
    "compiled": "torch.compile(nn.Linear(2, 2))",
}
MODEL_HELPERS = """
import collections

def _Custom(nn):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2))
            self.classifier = nn.ModuleDict({'fc': nn.Linear(6, 10), 'drop': nn.Dropout(0.2)})
            self.norm = nn.LayerNorm(10)
            self.register_buffer('scale', torch.ones(1))
            self.weight = nn.Parameter(torch.zeros(3))
    return Net()

def _WithExtra(nn):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(2, 2)
        def extra_repr(self):
            return 'factor=2.0'
    return Scaled()

def _MultilineExtra(nn):
    class Lines(nn.Module):
        def extra_repr(self):
            return 'first=1,\\nsecond=2'
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.lines = Lines()
            self.other = Lines()
    return Holder()

def _EmptyChild(nn):
    class Empty(nn.Module):
        pass
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.empty = Empty()
            self.none = None
    return Holder()

def _Block(nn):
    class Down(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                                      nn.ReLU(inplace=True))
            self.pool = nn.MaxPool2d(2)
    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.ModuleList([Down(1, 4), Down(4, 8)])
            self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
            self.head = nn.Conv2d(4, 2, 1)
    return UNet()
"""


def _model_cases():
    cases = [Case(f"model:{name}", "models", f"str({expression})", setup=MODEL_HELPERS)
             for name, expression in MODELS.items()]
    cases.append(Case("model:repr_linear", "models", "repr(nn.Linear(2, 3))"))
    return cases


OPTIMIZERS = {
    "sgd": "optim.SGD(_params(torch), lr=0.1)",
    "sgd_momentum": "optim.SGD(_params(torch), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)",
    "adam": "optim.Adam(_params(torch))",
    "adam_args": "optim.Adam(_params(torch), lr=1e-3, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)",
    "adamw": "optim.AdamW(_params(torch), lr=3e-4, weight_decay=0.05)",
    "adamw_groups": "optim.AdamW([{'params': _params(torch)[:1]}, {'params': _params(torch)[1:], 'lr': 1e-2, "
                    "'weight_decay': 0.0}], lr=1e-3)",
    "sgd_groups": "optim.SGD([{'params': _params(torch)[:1], 'momentum': 0.5}, {'params': _params(torch)[1:]}], "
                  "lr=0.1)",
    "rmsprop": "optim.RMSprop(_params(torch), lr=0.01, alpha=0.9)",
    "adagrad": "optim.Adagrad(_params(torch))",
    "adam_after_step": "_stepped(torch)",
    "adam_tensor_lr": "optim.Adam(_params(torch), lr=torch.tensor(0.01))",
    "adamax": "optim.Adamax(_params(torch))",
    "nadam": "optim.NAdam(_params(torch))",
    "radam": "optim.RAdam(_params(torch), decoupled_weight_decay=True)",
    "asgd": "optim.ASGD(_params(torch))",
    "rprop": "optim.Rprop(_params(torch))",
    "adadelta": "optim.Adadelta(_params(torch))",
    "lbfgs": "optim.LBFGS(_params(torch))",
    "sparse_adam": "optim.SparseAdam(_params(torch))",
    "sgd_named_group": "optim.SGD([{'params': _params(torch), 'name': 'backbone'}], lr=0.1)",
    "adam_weight_decay_group_added": "_with_added_group(torch)",
    "state_dict_param_groups": "repr(optim.SGD(_params(torch), lr=0.1).state_dict()['param_groups'])",
}
OPTIMIZER_HELPERS = """
def _params(torch):
    return list(torch.nn.Linear(2, 2).parameters())

def _stepped(torch):
    params = _params(torch)
    opt = torch.optim.Adam(params, lr=0.1)
    sum(p.sum() for p in params).backward()
    opt.step()
    return opt

def _with_added_group(torch):
    opt = torch.optim.Adam(_params(torch)[:1], lr=0.1)
    opt.add_param_group({'params': _params(torch)[1:], 'lr': 0.01})
    return opt
"""


def _optimizer_cases():
    cases = []
    for name, expression in OPTIMIZERS.items():
        code = expression if expression.startswith("repr(") else f"str({expression})"
        cases.append(Case(f"optimizer:{name}", "optimizers", code, setup=OPTIMIZER_HELPERS))
    return cases


def all_cases():
    return _tensor_cases() + _suffix_cases() + _option_cases() + _object_cases() + _special_cases() \
        + _model_cases() + _optimizer_cases() + _random_value_cases()


# ----------------------------------------------------------------------------------------------
# running: one worker process per library
# ----------------------------------------------------------------------------------------------

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def re_address(text: str) -> str:
    """``text`` with object addresses replaced: they differ between processes, not between libraries."""
    return _ADDRESS.sub("0x...", text)


def _reset(lib) -> None:
    lib.set_printoptions(profile="default")
    lib.set_printoptions(sci_mode=None)
    lib.set_default_dtype(lib.float32)


def _evaluate(lib, case):
    """The string the case prints on ``lib``, or the exception it raised (``Class: message``)."""
    import warnings

    namespace = {"torch": lib, "nn": lib.nn, "optim": lib.optim, "re_address": re_address}
    try:
        with time_limit(SECONDS_PER_CASE), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lib.manual_seed(0)
            if case.options:
                lib.set_printoptions(**case.options)
            if case.default_dtype:
                lib.set_default_dtype(getattr(lib, case.default_dtype))
            exec(case.setup, namespace)
            text = eval(case.code, namespace)
        return {"printed": re_address(str(text))}
    except Exception as exc:
        return {"raised": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]}
    finally:
        _reset(lib)


def _work(library: str, out: str, pattern: str | None) -> None:
    import importlib

    lib = importlib.import_module(library)
    results = {}
    for case in all_cases():
        if pattern and not re.search(pattern, case.name):
            continue
        results[case.name] = _evaluate(lib, case)
    with open(os.path.join(out, f"{library}.json"), "w") as handle:
        json.dump(results, handle)


_MODULE_PREFIX = re.compile(r"\btorch\.")


def as_chainrule_names(text: str) -> str:
    """torch's output with its module name, where it is a prefix, read as chainrule's."""
    return _MODULE_PREFIX.sub("chainrule.", text)


def _short_diff(expected: str, got: str, lines: int = 8) -> str:
    diff = difflib.unified_diff(expected.splitlines(), got.splitlines(), "torch", "chainrule", n=0, lineterm="")
    return "\n".join(list(diff)[2:2 + lines])


def classify(torch_result: dict, chainrule_result: dict) -> dict:
    if "raised" in torch_result and "raised" in chainrule_result:
        same_class = torch_result["raised"].split(":")[0] == chainrule_result["raised"].split(":")[0]
        return {"kind": "same" if same_class else "differs", "torch": torch_result["raised"],
                "chainrule": chainrule_result["raised"]}
    if "raised" in torch_result:
        return {"kind": "torch_only_raised", "torch": torch_result["raised"], "chainrule": chainrule_result["printed"]}
    if "raised" in chainrule_result:
        return {"kind": "chainrule_only_raised", "torch": torch_result["printed"],
                "chainrule": chainrule_result["raised"]}
    expected = as_chainrule_names(torch_result["printed"])
    if expected == chainrule_result["printed"]:
        return {"kind": "same"}
    return {"kind": "differs", "torch": expected, "chainrule": chainrule_result["printed"],
            "diff": _short_diff(expected, chainrule_result["printed"])}


def run(out: str, pattern: str | None = None):
    os.makedirs(out, exist_ok=True)
    for library in ("torch", "chainrule"):
        command = [sys.executable, os.path.abspath(__file__), "work", "--library", library, "--out", out]
        subprocess.run(command + (["--filter", pattern] if pattern else []), check=True)
    with open(os.path.join(out, "torch.json")) as handle:
        torch_results = json.load(handle)
    with open(os.path.join(out, "chainrule.json")) as handle:
        chainrule_results = json.load(handle)
    groups = {case.name: case.group for case in all_cases()}
    records = [{"case": name, "group": groups[name], **classify(torch_results[name], chainrule_results[name])}
               for name in torch_results]
    with open(os.path.join(out, "cases.json"), "w") as handle:
        json.dump(records, handle, indent=1)
    print(count_table(records))
    return records


def count_table(records) -> str:
    by_group = collections.defaultdict(collections.Counter)
    for record in records:
        by_group[record["group"]][record["kind"]] += 1
    lines = ["| group | " + " | ".join(KINDS) + " | all |", "|---" * (len(KINDS) + 2) + "|"]
    total = collections.Counter()
    for group, counts in by_group.items():
        total.update(counts)
        lines.append(f"| {group} | " + " | ".join(str(counts[kind]) for kind in KINDS)
                     + f" | {sum(counts.values())} |")
    lines.append("| **all** | " + " | ".join(str(total[kind]) for kind in KINDS) + f" | {sum(total.values())} |")
    return "\n".join(lines)


def show(out: str, kind: str, pattern: str | None = None) -> None:
    with open(os.path.join(out, "cases.json")) as handle:
        records = json.load(handle)
    for record in records:
        if record["kind"] == kind and (not pattern or re.search(pattern, record["case"])):
            print(f"== {record['case']}")
            if "diff" in record:
                print(record["diff"])
            else:
                print(f"   torch:     {record.get('torch', '')[:300]!r}")
                print(f"   chainrule: {record.get('chainrule', '')[:300]!r}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--filter", help="regular expression searched in the case's name")
    work_parser = commands.add_parser("work", help="(run's worker process)")
    work_parser.add_argument("--library", required=True, choices=("torch", "chainrule"))
    work_parser.add_argument("--out", required=True)
    work_parser.add_argument("--filter")
    show_parser = commands.add_parser("show")
    show_parser.add_argument("--out", required=True)
    show_parser.add_argument("--kind", required=True, choices=KINDS)
    show_parser.add_argument("--filter", help="regular expression searched in the case's name")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.out, args.filter)
    elif args.command == "work":
        _work(args.library, args.out, args.filter)
    else:
        show(args.out, args.kind, args.filter)


if __name__ == "__main__":
    main()
