"""What the trial of torch's foreach op databases (tools/torch_foreach_trial.py) found, each case
compared with torch 2.13: ``_foreach_addcmul``/``_addcdiv``'s ``scalars=`` keyword, the new
``_foreach_mm`` and ``_foreach_powsum``, the in-place clamps' refusal to narrow a tensor, and the
per-tensor ops underneath (bool and integer kernels torch lacks, bool and complex exponents, complex
clamp bounds). Results are compared by dtype, shape and value, errors by type and message."""

import numpy as np
import pytest

import chainrule
from tests.ops.test_foreach_corners import assert_same_outcome

torch = pytest.importorskip("torch")


def _floats(lib, *rows, dtype=None):
    return [lib.tensor(np.array(row, dtype=np.float64), dtype=dtype or lib.float32) for row in rows]


def _bools(lib):
    return [lib.tensor([True, False]), lib.tensor([[False], [True]])]


def _ints(lib):
    return [lib.tensor([2, 3]), lib.tensor([[1], [-4]])]


def _in_place(op, make_self, *args):
    """The in-place op's return and the tensors it changed."""
    def call(lib):
        tensors = make_self(lib)
        returned = getattr(lib, op)(tensors, *(a(lib) if callable(a) else a for a in args))
        return list(returned) + tensors
    return call


CASES = {
    # the ScalarList and Tensor overloads of the pointwise ops name their operand ``scalars``
    "addcmul scalars= list": lambda lib: lib._foreach_addcmul(
        _floats(lib, [1, 2], [3]), _floats(lib, [0.5, 1], [2]), _floats(lib, [2, 2], [-1]), scalars=[0.5, -2.0]),
    "addcdiv scalars= tensor": lambda lib: lib._foreach_addcdiv(
        _floats(lib, [1, 2], [3]), _floats(lib, [0.5, 1], [2]), _floats(lib, [2, 4], [-1]),
        scalars=lib.tensor([0.5, -2.0])),
    "addcmul_ scalars= list": lambda lib: lib._foreach_addcmul_(
        _floats(lib, [1, 2], [3]), _floats(lib, [1, 1], [2]), _floats(lib, [2, 2], [3]), scalars=[2.0, 0.5]),
    # torch has no integer division in addcdiv, and no bool kernel for addcmul, lerp, mm, pow
    "addcdiv of integer lists": lambda lib: lib._foreach_addcdiv(_ints(lib), _ints(lib), _ints(lib)),
    "addcdiv of a float list by integer lists": lambda lib: lib.addcdiv(lib.ones(2), lib.tensor([1, 2]),
                                                                          lib.tensor([1, 2])),
    "addcmul of bool lists": lambda lib: lib._foreach_addcmul(_bools(lib), _bools(lib), _bools(lib)),
    "addcmul of a float tensor by bools": lambda lib: [lib.addcmul(lib.ones(2), lib.tensor([True, False]),
                                                                   lib.tensor([True, True]))],
    "lerp of bool lists": lambda lib: lib._foreach_lerp(_bools(lib), _bools(lib), _bools(lib)),
    "lerp of int tensors": lambda lib: [lib.lerp(lib.tensor([1, 2]), lib.tensor([3, 4]), lib.tensor([0, 1]))],
    # lerp takes no promotion: end, and a weight with dimensions, must have the input's dtype
    "lerp of a float list to double ends": lambda lib: lib._foreach_lerp(
        _floats(lib, [1, 2], [3]), _floats(lib, [0, 1], [2], dtype=lib.float64), 0.5),
    "lerp by a half weight tensor": lambda lib: [lib.lerp(lib.ones(2), lib.zeros(2), lib.full((2,), 0.5,
                                                                                            dtype=lib.float16))],
    "lerp of a double to a float 0-d end": lambda lib: [lib.lerp(lib.ones(2, dtype=lib.float64), lib.tensor(0.0),
                                                                 0.5)],
    "lerp by a double 0-d weight": lambda lib: [lib.lerp(lib.ones(2), lib.zeros(2), lib.tensor(0.25,
                                                                                         dtype=lib.float64))],
    "pow of bool lists": lambda lib: lib._foreach_pow(_bools(lib), _bools(lib)),
    "mm of bool matrices": lambda lib: [lib.mm(lib.ones(2, 2, dtype=lib.bool), lib.ones(2, 2, dtype=lib.bool))],
    # a number exponent promotes as torch.result_type says: bool ** 2 is Long, bool ** True stays bool
    "pow bool by int": lambda lib: lib._foreach_pow(_bools(lib), 2),
    "pow bool by bool": lambda lib: lib._foreach_pow(_bools(lib), [True, False]),
    "pow_ bool by int": _in_place("_foreach_pow_", _bools, 3),
    "pow float by complex": lambda lib: lib._foreach_pow(_floats(lib, [1.5, 2], [0.5]), 1 + 2j),
    "pow double by complex": lambda lib: [lib.pow(lib.tensor([1.5, 2.0], dtype=lib.float64), 0.5j)],
    "pow int by complex": lambda lib: lib._foreach_pow(_ints(lib), [1j, 2 - 1j]),
    # clamps: a complex bound is refused as complex clamping; a bool tensor has no clamp kernel
    "clamp_min by a complex number": lambda lib: lib._foreach_clamp_min(_floats(lib, [1.5], [2]), 1 + 2j),
    "maximum by complex numbers": lambda lib: lib._foreach_maximum(_ints(lib), [1j, 2j]),
    "clamp of an int tensor by a complex bound": lambda lib: [lib.clamp(lib.tensor([1, 2]), 1j)],
    "clamp_max of bools by a bool": lambda lib: lib._foreach_clamp_max(_bools(lib), False),
    "clamp of bools by two bools": lambda lib: [lib.clamp(lib.tensor([True]), False, True)],
    "clamp_min of bools by an int": lambda lib: lib._foreach_clamp_min(_bools(lib), 2),
    # in-place clamps refuse, before writing anything, a number that would narrow the tensor
    "clamp_min_ int by a float": _in_place("_foreach_clamp_min_", _ints, 2.5),
    "maximum_ bool by ints": _in_place("_foreach_maximum_", _bools, [2, 3]),
    "minimum_ int by float tensors": _in_place("_foreach_minimum_", _ints,
                                               lambda lib: _floats(lib, [0.5, 0.5], [[1], [2]])),
    "minimum_ float by ints": _in_place("_foreach_minimum_", lambda lib: _floats(lib, [0.5, 4], [3]), [1, 2]),
    # alpha goes only with tensors: torch's parser errors
    "add with a number and alpha": lambda lib: lib._foreach_add(_floats(lib, [1], [2]), 1.0, alpha=2.0),
    "sub with a number and alpha": lambda lib: lib._foreach_sub(_floats(lib, [1], [2]), 1, alpha=2),
    "add_ with numbers and alpha": lambda lib: lib._foreach_add_(_floats(lib, [1], [2]), [1.0, 2.0], alpha=2),
    "add with numbers and alpha": lambda lib: lib._foreach_add(_floats(lib, [1], [2]), [1.0, 2.0], alpha=3),
    # _foreach_mm: one matrix product per pair
    "mm": lambda lib: lib._foreach_mm(_floats(lib, [[1, 2], [3, 4]], [[0.5, 1, 2]]),
                                      _floats(lib, [[1], [-1]], [[1, 0], [0, 1], [2, 2]])),
    "mm of lists of different lengths": lambda lib: lib._foreach_mm(_floats(lib, [[1.0]], [[2.0]]),
                                                                    _floats(lib, [[1.0]])),
    "mm of empty lists": lambda lib: lib._foreach_mm([], []),
    "mm of unmatched shapes": lambda lib: lib._foreach_mm([lib.ones(2, 3)], [lib.ones(2, 3)]),
    # _foreach_powsum: sum(|x| ** ord) per tensor, 0 ** 0 counted as 1
    "powsum": lambda lib: lib._foreach_powsum(_floats(lib, [0, -2, 3.5], [[0.5]]) + [lib.tensor([1 + 2j, 0j])]),
    "powsum ord 0, inf, -1, 2.5": lambda lib: [r for ord in (0, float("inf"), -1, 2.5)
                                               for r in lib._foreach_powsum(_floats(lib, [0, -2, 3.5]), ord)],
    "powsum in float64": lambda lib: lib._foreach_powsum(_floats(lib, [1, 2], [3]), 3, dtype=lib.float64),
    "powsum of an int tensor": lambda lib: lib._foreach_powsum([lib.tensor([1, 2])]),
    "powsum of a bool tensor": lambda lib: lib._foreach_powsum([lib.tensor([True])]),
    "powsum in an int dtype": lambda lib: lib._foreach_powsum(_floats(lib, [1.0]), 2, dtype=lib.int64),
}


def _outcome(lib, case):
    try:
        results = CASES[case](lib)
    except Exception as error:  # the error is the outcome compared
        return type(error).__name__, str(error)
    return "ok", [(str(t.dtype).split(".")[-1], tuple(t.shape), np.asarray(t.tolist())) for t in results]


@pytest.mark.parametrize("case", CASES)
def test_foreach_finding_as_torch(case):
    assert_same_outcome(_outcome(chainrule, case), _outcome(torch, case))


def test_foreach_mm_gradients_match_torch_and_finite_differences():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape) for shape in ((2, 3), (3, 4), (1, 2), (2, 2))]
    grads = []
    for lib in (chainrule, torch):
        a, b, c, d = (lib.tensor(x, dtype=lib.float64, requires_grad=True) for x in arrays)
        first, second = lib._foreach_mm([a, c], [b, d])
        (first.sum() * 2 + (second * second).sum()).backward()
        grads.append([t.grad.numpy() for t in (a, b, c, d)])
    for mine, theirs in zip(*grads):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)
    a, b = (chainrule.tensor(x, dtype=chainrule.float64, requires_grad=True) for x in arrays[:2])
    assert chainrule.autograd.gradcheck(lambda x, y: chainrule._foreach_mm([x], [y])[0], (a, b))


def test_foreach_powsum_is_differentiable_where_torch_raises():
    # a deliberate difference: torch's backward raises "derivative for aten::_foreach_powsum is not
    # implemented"; chainrule's powsum is a composition, so its gradient is that of sum(|x| ** ord)
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="not implemented"):
        torch._foreach_powsum([x], 3)[0].backward()
    ours = chainrule.tensor([1.0, -2.0, 3.0], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: chainrule._foreach_powsum([t], 3)[0], (ours,))
    chainrule._foreach_powsum([ours], 3)[0].backward()
    np.testing.assert_allclose(ours.grad.numpy(), [3.0, -12.0, 27.0])


def test_in_place_clamp_refusal_writes_nothing():
    tensors = [chainrule.tensor([1, 2]), chainrule.tensor([5])]
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type long int"):
        chainrule._foreach_clamp_min_(tensors, [0, 2.5])
    assert [t.tolist() for t in tensors] == [[1, 2], [5]]
