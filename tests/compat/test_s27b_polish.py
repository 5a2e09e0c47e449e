"""Small user-visible differences from torch 2.13: namespace contents, retain_grad through views,
clamp's argument errors, index errors' dimension numbers. Each compared with torch."""

import importlib
import itertools

import pytest

import chainrule

torch = pytest.importorskip("torch")

# public names dir(chainrule.X) shows and dir(torch.X) does not, each with its reason
EXTRA_PUBLIC_NAMES = {
    "optim": set(),
    "nn": set(),
    # names chainrule's own code and tests reach by these paths (torch has anomaly_mode,
    # gradcheck.GradcheckError, function.once_differentiable, graph.Node); explain is chainrule's
    # backward-pass explainer
    "autograd": {"GradcheckError", "Node", "anomaly", "explain", "is_grad_enabled", "once_differentiable"},
    "nn.functional": set(),
    "fft": set(),
    "random": set(),
    "special": set(),
    "nn.init": set(),
    "optim.lr_scheduler": set(),
    "utils.data": set(),
}


def _public(module):
    return {name for name in dir(module) if not name.startswith("_")}


@pytest.mark.parametrize("namespace", sorted(EXTRA_PUBLIC_NAMES))
def test_dir_of_namespace_has_only_torchs_public_names(namespace):
    ours = importlib.import_module("chainrule." + namespace)
    theirs = importlib.import_module("torch." + namespace)
    assert _public(ours) - _public(theirs) == EXTRA_PUBLIC_NAMES[namespace]


def test_helper_names_left_namespaces_without_breaking_them():
    assert not hasattr(chainrule.optim, "adam") and not hasattr(torch.optim, "adam")
    assert importlib.import_module("chainrule.optim.adam").Adam is chainrule.optim.Adam
    assert chainrule.nn.modules.conv.Conv2d is chainrule.nn.Conv2d
    w = chainrule.empty(3, 4)
    chainrule.nn.init.constant_(w, 0.5)
    assert w.tolist() == [[0.5] * 4] * 3
    assert chainrule.special.expit(chainrule.tensor([0.0])).item() == 0.5
    assert chainrule.special.gammaln(chainrule.tensor([1.0])).item() == 0.0


def test_nn_init_all_and_star_import_match_torch():
    assert sorted(chainrule.nn.init.__all__) == sorted(torch.nn.init.__all__)
    ours, theirs = {}, {}
    exec("from chainrule.nn.init import *", ours)
    exec("from torch.nn.init import *", theirs)
    assert set(ours) - {"__builtins__"} == set(theirs) - {"__builtins__"}


def _retained_through_view(lib):
    x = lib.ones(5, requires_grad=True)
    y = x * 1
    y.retain_grad()
    z = y.view(1, 5)
    z.retain_grad()
    (z * 2).sum().backward()
    return y.grad, z.grad


def test_retained_grad_of_a_tensor_used_through_a_view_is_its_own_contiguous_tensor():
    (ours, ours_view), (theirs, theirs_view) = _retained_through_view(chainrule), _retained_through_view(torch)
    assert ours._is_view() == theirs._is_view() is False
    assert ours.tolist() == theirs.tolist() == [2.0] * 5
    assert (ours.data_ptr() == ours_view.data_ptr()) == (theirs.data_ptr() == theirs_view.data_ptr()) is False


@pytest.mark.parametrize("lib", ["chainrule", "torch"])
def test_retained_grad_of_a_transposed_use_is_contiguous(lib):
    t = chainrule if lib == "chainrule" else torch
    x = t.ones(3, 4, requires_grad=True)
    y = x * 1
    y.retain_grad()
    (y.t() * t.arange(12.0).view(4, 3)).sum().backward()
    assert y.grad.stride() == (4, 1)
    assert y.grad.tolist() == [[0.0, 3.0, 6.0, 9.0], [1.0, 4.0, 7.0, 10.0], [2.0, 5.0, 8.0, 11.0]]


CLAMP_BOUNDS = ["a", [1], None, 1 + 2j, 1 + 0j, (1,), 1.5, True, b"x", 2 ** 70]
CLAMP_CALLS = {
    "Tensor.clamp_min": lambda t, x, b: x.clamp_min(b),
    "Tensor.clamp_max": lambda t, x, b: x.clamp_max(b),
    "Tensor.clamp(min)": lambda t, x, b: x.clamp(b),
    "Tensor.clamp(max=)": lambda t, x, b: x.clamp(max=b),
    "Tensor.clamp(both)": lambda t, x, b: x.clamp(b, b),
    "Tensor.clip": lambda t, x, b: x.clip(b),
    "clamp_min": lambda t, x, b: t.clamp_min(x, b),
    "clamp_max": lambda t, x, b: t.clamp_max(x, b),
    "clamp": lambda t, x, b: t.clamp(x, b),
    "clip(max=)": lambda t, x, b: t.clip(x, max=b),
    "Tensor.clamp_min_": lambda t, x, b: x.clamp_min_(b),
    "Tensor.clamp_max_": lambda t, x, b: x.clamp_max_(b),
    "Tensor.clamp_": lambda t, x, b: x.clamp_(b),
    "Tensor.clamp_(max=)": lambda t, x, b: x.clamp_(max=b),
    "Tensor.clip_": lambda t, x, b: x.clip_(b),
    "clamp_": lambda t, x, b: t.clamp_(x, b),
}


def _clamp_outcome(lib, call, bound):
    try:
        return "value", call(lib, lib.arange(4.0), bound).tolist()
    except Exception as error:  # the class and the whole message are compared
        return type(error).__name__, str(error)


@pytest.mark.filterwarnings("error")  # no NumPy ComplexWarning for a bound of zero imaginary part
@pytest.mark.parametrize("bound", CLAMP_BOUNDS, ids=repr)
@pytest.mark.parametrize("call", sorted(CLAMP_CALLS))
def test_clamp_bound_of_a_wrong_type_is_refused_as_torch(call, bound):
    assert _clamp_outcome(chainrule, CLAMP_CALLS[call], bound) == _clamp_outcome(torch, CLAMP_CALLS[call], bound)


def test_clamp_min_of_a_string_is_torchs_type_error():
    with pytest.raises(TypeError, match=r"^clamp_min\(\) received an invalid combination of arguments - got \(str\)"):
        chainrule.arange(4.0).clamp_min("a")


INDEX_ITEMS = [None, slice(None), 0, 4, -6, "T9", "T1", "T-7", Ellipsis]


def _index_outcomes(lib, write: bool) -> list:
    outcomes = []
    for key in itertools.chain.from_iterable(itertools.product(INDEX_ITEMS, repeat=n) for n in (1, 2, 3)):
        if sum(item is Ellipsis for item in key) > 1:
            continue
        x = lib.arange(60).reshape(3, 4, 5)
        key = tuple(lib.tensor([int(item[1:])]) if isinstance(item, str) else item for item in key)
        try:
            if write:
                x[key] = 0
            else:
                x[key]
            outcomes.append("ok")
        except Exception as error:  # the class and the whole message are compared
            outcomes.append(f"{type(error).__name__}: {error}")
    return outcomes


@pytest.mark.parametrize("write", [False, True], ids=["getitem", "setitem"])
def test_out_of_range_index_names_torchs_dimension(write):
    # an index tensor's "dimension" is its place among the key's index tensors (torch moves the
    # indexed dims to the front): x[:, tensor([9])] is "dimension 0 with size 4"
    assert _index_outcomes(chainrule, write) == _index_outcomes(torch, write)


def test_out_of_range_index_tensor_after_a_slice_is_dimension_0():
    with pytest.raises(IndexError, match=r"^index 9 is out of bounds for dimension 0 with size 4$"):
        chainrule.arange(60).reshape(3, 4, 5)[:, chainrule.tensor([9])]


DOCUMENTED = ["zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like", "linspace",
              "logspace", "eye", "abs", "allclose", "atan2", "bitwise_and", "bitwise_or", "bitwise_xor",
              "bitwise_not", "clamp_min", "clamp_max", "eq", "ne", "lt", "le", "gt", "ge", "logical_and",
              "logical_or", "logical_xor", "logical_not", "floor_divide", "fmod", "remainder", "fmin", "maximum",
              "minimum", "hypot", "isclose", "isfinite", "isinf", "isnan", "signbit", "lerp", "logaddexp", "mul",
              "sub", "neg", "nan_to_num", "view_as", "reshape_as", "ravel", "flatten", "unflatten", "expand_as",
              "permute", "transpose", "unsqueeze", "rand_like", "randn_like", "randint_like", "is_floating_point",
              "numel"]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_common_function_has_a_torch_style_docstring(name):
    # as torch's: the signature first, then what the function does
    doc = " ".join(getattr(chainrule, name).__doc__.split())
    assert doc.startswith(f"{name}(input" if name not in ("zeros", "ones", "empty", "full", "linspace", "logspace",
                                                          "eye") else f"{name}(")
    assert f"(torch.{name})" in doc or f"(torch.Tensor.{name})" in doc


@pytest.mark.parametrize("name", ["new_tensor", "new_zeros", "new_ones", "new_empty", "new_full"])
def test_new_factory_method_has_a_torch_style_docstring(name):
    doc = getattr(chainrule.Tensor, name).__doc__
    assert doc.startswith(f"{name}(") and f"(Tensor.{name})" in " ".join(doc.split())
