"""s48 mendBI: torch.einsum of bool, integer and mixed-dtype operands as torch 2.13 folds them (at::native::einsum
with no opt_einsum path): a summed dim only one operand holds is summed first in sum's dtype (int64 for integers
and bools), a pair with something to contract is one bmm (no bool kernel, one dtype, but with an empty operand
zeros in its second operand's dtype, the pair swapped by sumproduct_pair's swap_lo_ro), a pair with nothing to
contract a promoting mul. Each case runs on torch and chainrule and compares dtype, shape, values or the error."""

import random

import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from tests.compat._dispatch_checks import assert_a_handler_edit_reaches, assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402


def _outcome(lib, equation, shapes, dtypes):
    operands = [lib.ones(shape).to(getattr(lib, dtype)) for shape, dtype in zip(shapes, dtypes)]
    try:
        result = lib.einsum(equation, *operands)
    except Exception as error:  # noqa: BLE001 - the error itself is what is compared
        return type(error).__name__, str(error).split("\n")[0]
    return str(result.dtype).split(".")[-1], tuple(result.shape), result.to(lib.float64).numpy().tolist()


CASES = [
    # an empty contraction: zeros, where chainrule refused bool pairs and mixed dtypes
    ("ij,ij->", [(0, 1), (0, 1)], ["bool", "bool"]),
    ("i,i->", [(0,), (0,)], ["int64", "float32"]),
    ("ij,jk->ik", [(2, 0), (0, 3)], ["float32", "int64"]),
    ("ij,jk->ki", [(2, 0), (0, 3)], ["float32", "int64"]),  # swapped: the first operand's dtype
    ("ij,kj->ki", [(2, 0), (3, 0)], ["int64", "float32"]),
    ("ij,ik->jk", [(0, 1), (0, 2)], ["float64", "float32"]),
    ("bij,bjk->bik", [(0, 2, 3), (0, 3, 4)], ["float32", "int64"]),
    ("ij,jk,kl->il", [(0, 1), (1, 2), (2, 2)], ["bool", "int64", "bool"]),
    ("ij,jk,kl->il", [(2, 0), (0, 3), (3, 2)], ["bool", "float32", "int64"]),  # the next bmm checks again
    ("ij,jk,kl->il", [(2, 3), (3, 0), (0, 2)], ["float32", "float64", "float32"]),
    # a dim summed first counts in int64, then bmm refuses the other operand's integer dtype
    ("ij,jk->", [(1, 2), (2, 3)], ["int32", "int32"]),
    ("ij,j->", [(3, 4), (4,)], ["uint8", "uint8"]),
    ("jil,kj->kl", [(2, 2, 3), (3, 2)], ["int32", "int32"]),
    ("ij,jk->", [(0, 3), (3, 4)], ["bool", "bool"]),
    ("...ijA,,...A->A", [(1, 2, 3, 2, 2), (), (1, 2, 2)], ["bool", "int32", "float32"]),
    # a swapped bmm checks its operands the other way round
    ("jik,i->jk", [(1, 2, 3), (2,)], ["float64", "bool"]),
    ("ikl,lji,i->lj", [(3, 2, 1), (1, 2, 3), (3,)], ["int64", "bool", "bool"]),
    # what already matched stays so
    ("ij,jk->ik", [(2, 3), (3, 4)], ["bool", "bool"]),
    ("i,j->ij", [(2,), (3,)], ["bool", "int32"]),
    ("ij,jk->ik", [(2, 3), (3, 4)], ["int32", "int32"]),
    ("ij->", [(2, 3)], ["bool"]),
]


@pytest.mark.parametrize("equation,shapes,dtypes", CASES, ids=[f"{c[0]}-{'-'.join(c[2])}" for c in CASES])
def test_einsum_dtype_or_error_as_torch(equation, shapes, dtypes):
    assert _outcome(chainrule, equation, shapes, dtypes) == _outcome(real_torch, equation, shapes, dtypes)


def test_einsum_random_forms_as_torch():
    """Random equations of two or three operands, sizes 0-3, mixed dtypes: every one as torch's."""
    rng = random.Random(48)
    names = ["bool", "int64", "int32", "uint8", "float32", "float64"]
    differ = []
    for _ in range(300):
        subs = ["".join(rng.sample("ijkl", rng.randint(1, 3))) for _ in range(rng.choice([2, 3]))]
        labels = sorted(set("".join(subs)))
        equation = ",".join(subs) + "->" + "".join(rng.sample(labels, rng.randint(0, len(labels))))
        size = {label: rng.choice([0, 1, 2, 3]) for label in labels}
        shapes = [tuple(size[c] for c in sub) for sub in subs]
        dtypes = [rng.choice(names) for _ in subs]
        if _outcome(chainrule, equation, shapes, dtypes) != _outcome(real_torch, equation, shapes, dtypes):
            differ.append((equation, shapes, dtypes))
    assert differ == []


def test_einsum_empty_mixed_float_keeps_a_gradient():
    """torch's empty bmm answers in the second operand's dtype; the result still has a graph, and the
    gradients are zeros of each operand's own dtype and shape, as torch's."""
    results = {}
    for lib in (real_torch, chainrule):
        a = lib.zeros(2, 0, dtype=lib.float64, requires_grad=True)
        b = lib.zeros(0, 3, dtype=lib.float32, requires_grad=True)
        out = lib.einsum("ij,jk->ik", a, b)
        out.sum().backward()
        results[lib.__name__] = (str(out.dtype).split(".")[-1], tuple(out.shape), out.requires_grad,
                                 str(a.grad.dtype).split(".")[-1], tuple(a.grad.shape),
                                 str(b.grad.dtype).split(".")[-1], tuple(b.grad.shape))
    assert results["chainrule"] == results["torch"]


# ---- in-place views count as writes (torch: the version counter self shares with its base and views goes 0 -> 1)
INPLACE_VIEWS = [
    ("t_", (2, 3), ()), ("transpose_", (2, 3), (0, 1)), ("squeeze_", (2, 1, 3), ()), ("squeeze_", (2, 1, 3), (1,)),
    ("unsqueeze_", (2, 3), (0,)), ("swapaxes_", (2, 3), (0, 1)), ("swapdims_", (2, 3), (1, 0)),
    ("as_strided_", (3, 2), ((2, 3), (3, 1))),
]


@pytest.mark.parametrize("name,shape,args", INPLACE_VIEWS, ids=[f"{c[0]}{c[2]}" for c in INPLACE_VIEWS])
def test_inplace_view_bumps_the_shared_version(name, shape, args):
    seen = {}
    for lib in (real_torch, chainrule):
        base = lib.ones(3, *shape)
        view, sibling = base[0], base[1]
        getattr(view, name)(*args)
        seen[lib.__name__] = (base._version, view._version, sibling._version, tuple(view.shape))
    assert seen["chainrule"] == seen["torch"]


def _backward_error(lib, program):
    try:
        program(lib).sum().backward()
    except RuntimeError as error:
        return str(error)
    return None


SAVED_THEN_VIEWED = {
    # sin saved its input, which t_ then rewrites in place
    "input_t_": lambda lib: (lambda a: (a.sin(), a.t_())[0])(lib.ones(2, 3, requires_grad=True).clone()),
    # exp saved its result, squeeze_ then rewrites it
    "output_squeeze_": lambda lib: (lambda b: (b, b.squeeze_(1))[0])((lib.ones(2, 1, 3, requires_grad=True) * 2).exp()),
    # a saved tensor whose node is SumBackward1: the message names it "Sum1", as torch's
    "sum1_no_grad_write": lambda lib: (lambda x: (lambda y: (y * y, _write_no_grad(lib, y))[0])(x.sum(0)))(
        lib.ones(2, 3, requires_grad=True)),
}


def _write_no_grad(lib, y):
    with lib.no_grad():
        y.add_(1)


@pytest.mark.parametrize("case", sorted(SAVED_THEN_VIEWED))
def test_saved_tensor_changed_by_an_inplace_view_is_refused_as_torch(case):
    expected = _backward_error(real_torch, SAVED_THEN_VIEWED[case])
    assert expected is not None
    assert _backward_error(chainrule, SAVED_THEN_VIEWED[case]) == expected


def test_inplace_view_on_an_inference_tensor_is_refused_as_torch():
    """torch's message, and torch's state: the tensor is transposed by the time it refuses (torch's kernel runs
    before the version bump)."""
    messages = {}
    for lib in (real_torch, chainrule):
        with lib.inference_mode():
            x = lib.ones(2, 3)
        with pytest.raises(RuntimeError) as caught:
            x.t_()
        messages[lib.__name__] = (str(caught.value), tuple(x.shape))
    assert messages["chainrule"] == messages["torch"]


# ---- a @= b: torch's Tensor has no __imatmul__, so Python rebinds a to a @ b and the old tensor is untouched
def test_imatmul_rebinds_as_torch():
    seen = {}
    for lib in (real_torch, chainrule):
        a = lib.ones(2, 2, requires_grad=True)
        before = a
        a @= lib.full((2, 2), 2.0)
        seen[lib.__name__] = (hasattr(lib.Tensor, "__imatmul__"), a is before, before._version,
                              before.tolist(), a.tolist(), a.grad_fn is not None)
    assert seen["chainrule"] == seen["torch"]


# ---- conj under a dispatch mode: torch's conj and conj_physical are composite; a complex tensor reaches the
# mode as their kernels aten._conj / aten._conj_physical (a real one as nothing at all)

CONJ_PROGRAMS = {
    "conj": lambda lib, a: a["x"].to(lib.complex64).conj(),
    "torch.conj": lambda lib, a: lib.conj(lib.complex(a["x"], a["y"])),
    "conj of real": lambda lib, a: a["x"].conj(),
    "conj_physical": lambda lib, a: a["x"].to(lib.complex64).conj_physical(),
    "torch.conj_physical": lambda lib, a: lib.conj_physical(lib.complex(a["x"], a["y"])),
    "conj_physical of real": lambda lib, a: a["x"].conj_physical(),
    "resolve_conj": lambda lib, a: a["x"].to(lib.complex64).conj().resolve_conj(),
}


@pytest.mark.parametrize("name", CONJ_PROGRAMS)
def test_conj_under_a_mode_logs_torchs_kernels(name):
    assert _logged(chainrule, CONJ_PROGRAMS[name]) == _logged(real_torch, CONJ_PROGRAMS[name])


@pytest.mark.parametrize("name", ["conj", "conj_physical"])
def test_conj_under_a_passing_mode_keeps_values_and_gradients(name):
    assert_a_passing_mode_keeps(
        lambda lib, x: (getattr(lib.complex(x, x * x), name)() * lib.complex(x, -x)).real.sum(), (3, 4), seed=5)


@pytest.mark.parametrize("op", ["aten._conj.default", "aten._conj_physical.default"])
def test_a_handler_edit_of_conj_reaches_the_kernel(op):
    method = "conj" if op == "aten._conj.default" else "conj_physical"
    assert_a_handler_edit_reaches(op, lambda args: (args[0] * 2,) + tuple(args[1:]),
                                  lambda lib, x: getattr(lib.complex(x, x + 1), method)().resolve_conj(), (2, 3))


@pytest.mark.parametrize("name", ["conj", "_conj", "conj_physical", "_conj_physical"])
def test_aten_namespace_has_the_conj_kernels(name):
    z = [1 + 2j, -3 - 0.5j]
    theirs = getattr(real_torch.ops.aten, name).default
    ours = getattr(chainrule.ops.aten, name).default
    expected, actual = theirs(real_torch.tensor(z)), ours(chainrule.tensor(z))
    assert (ours.is_view, actual.is_conj(), actual.tolist()) == (theirs.is_view, expected.is_conj(), expected.tolist())
