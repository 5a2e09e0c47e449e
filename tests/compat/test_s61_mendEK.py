"""Session 61, lane mendEK: empty tensors' strides, torch.tensor of lists holding tensors,
NonDynamicallyQuantizableLinear, hook handles; each against torch 2.13."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_EMPTY_SHAPES = [(0,), (0, 3), (3, 0), (1, 0), (2, 0, 3), (0, 1, 2)]

_KEEPING_STRIDES = {  # the ops that keep an empty NumPy array's (zeroed) strides in torch, and their neighbours
    "detach": lambda lib, t: t.detach(),
    "empty_like": lambda lib, t: lib.empty_like(t),
    "empty_like_contiguous": lambda lib, t: lib.empty_like(t, memory_format=lib.contiguous_format),
    "zeros_like": lambda lib, t: lib.zeros_like(t),
    "to_float64": lambda lib, t: t.to(lib.float64),
    "to_copy": lambda lib, t: t.to(lib.float32, copy=True),
    "view_same": lambda lib, t: t.view(*t.shape),
    "view_flat": lambda lib, t: t.view(-1),
    "view_dtype": lambda lib, t: t.view(lib.int32),
    "reshape_same": lambda lib, t: t.reshape(t.shape),
    "reshape_reversed": lambda lib, t: t.reshape(tuple(reversed(t.shape))),
    "contiguous": lambda lib, t: t.contiguous(),
    "clone_preserve": lambda lib, t: t.clone(memory_format=lib.preserve_format),
    "clone_contiguous": lambda lib, t: t.clone(memory_format=lib.contiguous_format),
    "unsqueeze_front": lambda lib, t: t.unsqueeze(0),
    "unsqueeze_back": lambda lib, t: t.unsqueeze(-1),
    "transposed_view": lambda lib, t: t.permute(*reversed(range(t.dim()))).view(tuple(reversed(t.shape))),
    "add": lambda lib, t: t + 1,
}


@pytest.mark.parametrize("make", ["from_numpy", "tensor"])
@pytest.mark.parametrize("shape", _EMPTY_SHAPES)
def test_empty_numpy_strides_through_views_and_copies(shape, make):
    for order in "CF":
        array = np.zeros(shape, np.float32, order=order)
        for name, op in _KEEPING_STRIDES.items():
            ours = op(chainrule, getattr(chainrule, make)(array))
            theirs = op(torch, getattr(torch, make)(array))
            assert (name, tuple(ours.shape), ours.stride()) == (name, tuple(theirs.shape), theirs.stride())


def _outcome(lib, make):
    try:
        made = make(lib)
    except Exception as error:  # (the type and words compared: torch's are the API)
        return type(error).__name__, str(error)
    return made.tolist(), str(made.dtype).split(".")[-1]


@pytest.mark.parametrize("make", [
    lambda lib: lib.tensor([1, [[]]]),  # an empty sequence counts as the default dtype: a float's words
    lambda lib: lib.tensor([True, [[]]]),
    lambda lib: lib.tensor([1, ()]),
    lambda lib: lib.tensor([1, range(0)]),
    lambda lib: lib.tensor([[1, 2], [3, []]]),
    lambda lib: lib.tensor([np.int64(1), [[]]]),
    lambda lib: lib.tensor([lib.tensor(1), [[]]]),
    lambda lib: lib.tensor([1, [[]]], dtype=lib.int64),
    lambda lib: lib.tensor([1j, [[]]]),
    lambda lib: lib.tensor([[1], []]),
    lambda lib: lib.tensor([1, [2]]),
    lambda lib: lib.tensor([[], []], dtype=lib.int32),
    lambda lib: lib.tensor([lib.ones(2), lib.ones(2)]),  # a multi-element tensor where a number goes
    lambda lib: lib.tensor([1, lib.ones(2)]),
    lambda lib: lib.tensor([[lib.ones(3)]]),
    lambda lib: lib.tensor([lib.zeros(0)]),
    lambda lib: lib.tensor([[1, 2], lib.ones(2)]),
])
def test_tensor_of_ragged_and_mixed_lists(make):
    assert _outcome(chainrule, make) == _outcome(torch, make)


def _out_projection_facts(lib):
    projection_type = lib.nn.modules.linear.NonDynamicallyQuantizableLinear
    attention = lib.nn.MultiheadAttention(4, 2, kdim=3, vdim=5, bias=False)
    facts = (type(attention.out_proj) is projection_type, projection_type.__module__, projection_type.__doc__,
             lib.nn.modules.activation.NonDynamicallyQuantizableLinear is projection_type,
             "NonDynamicallyQuantizableLinear" in lib.nn.modules.linear.__all__,
             hasattr(lib.nn, "NonDynamicallyQuantizableLinear"), repr(attention), repr(projection_type(3, 2, False)))
    return [str(fact).replace("chainrule", "torch") for fact in facts]


def test_non_dynamically_quantizable_linear_is_torchs():
    assert _out_projection_facts(chainrule) == _out_projection_facts(torch)
