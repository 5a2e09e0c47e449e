"""torch.einsum of several operands as torch computes it (at::native::einsum, left to right: opt_einsum is
not installed beside torch here): each operand aligned by unsqueeze/diagonal/permute, each pair summed and
contracted by permute/reshape/bmm/view (or multiplied), so a TorchDispatchMode logs torch's aten calls,
float values are torch's bit for bit, and gradients, forward tangents and vmap come from those ops.
Everything is compared live against torch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

from chainrule.utils import _python_dispatch  # noqa: E402

# (equation, shapes): matmul-like, batched, attention, outer, dot, sums, broadcasting ellipsis, three and
# four operands, repeated labels, size-1 broadcasting, zero-size and 0-d operands
CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("bqhd,bkhd->bhqk", [(2, 3, 2, 4), (2, 5, 2, 4)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(5,), (5,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("ji,jk->ik", [(4, 3), (4, 5)]),
    ("ij,jk->", [(3, 4), (4, 5)]),
    ("ij,jk->ki", [(3, 4), (4, 5)]),
    ("...ij,...jk", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 4, 5), (3, 5, 6)]),
    ("...,...->...", [(2, 3), (3,)]),
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ij,jk,k->i", [(3, 4), (4, 5), (5,)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("nchw,kc->nkhw", [(2, 3, 4, 5), (6, 3)]),
    ("bid,bjd->bij", [(2, 3, 4), (2, 1, 4)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 5)]),
    ("ii,ij->j", [(4, 4), (4, 5)]),
    ("ab,cd->abcd", [(2, 3), (4, 5)]),
    ("i,->i", [(3,), ()]),
    (",->", [(), ()]),
    ("ij,jk->ik", [(0, 4), (4, 5)]),
    ("ij,jk->ik", [(3, 0), (0, 5)]),
    ("ii->", [(4, 4)]),
    ("ii->i", [(4, 4)]),
    ("ij->", [(3, 4)]),
    ("ijk->kj", [(2, 3, 4)]),
]
IDS = [f"{equation}-{shapes}" for equation, shapes in CASES]


def _arrays(shapes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def _logged(lib, equation, arrays, dtype):
    """The aten calls a dispatch mode sees in ``lib.einsum`` and its result."""
    mode_class = (torch.utils._python_dispatch.TorchDispatchMode if lib is torch
                  else _python_dispatch.TorchDispatchMode)
    seen = []

    class Log(mode_class):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    tensors = [lib.tensor(a, dtype=dtype) for a in arrays]
    with Log():
        out = lib.einsum(equation, *tensors)
    return seen, out


def _torch_bmm_goes_to_blas(equation, arrays, dtype):
    """Whether one of torch's bmm steps for this einsum has 400 or more multiply-adds, so runs
    MKL's gemm rather than its own in-order loop. chainrule replays that gemm's order as it runs
    on an AVX-512 CPU; on an AVX2 one (AMD EPYC here, no AVX-512) MKL takes other kernels, whose
    bits differed in 4 of the 150 random cases below (0.12-0.67 of their elements, up to 2.9e-6
    absolute in float32 and 3.6e-15 in float64) and in 74 of nchw,kc->nkhw's 240 elements."""
    big = []

    class Sizes(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.bmm.default:
                (_, n, m), p = args[0].shape, args[1].shape[-1]
                big.append(n * m * p >= 400)
            return func(*args, **(kwargs or {}))

    with Sizes():
        torch.einsum(equation, *[torch.tensor(a, dtype=dtype) for a in arrays])
    return any(big)


def _assert_torchs_values(ours, theirs, blas, tolerance, message=""):
    """Torch's bits, but on a CPU without AVX-512 where MKL's gemm ran (its AVX2 order not
    replayed): there within the tolerance, every other step's values still bit for bit."""
    if blas and not chainrule.ops.cpu_features.AVX512_CORE:
        np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance, err_msg=message)
    else:
        np.testing.assert_array_equal(ours, theirs, err_msg=message)


def test_torch_here_contracts_left_to_right():
    # what the decomposition follows: torch's path without opt_einsum
    assert not torch.backends.opt_einsum.is_available()


@pytest.mark.parametrize("equation,shapes", CASES, ids=IDS)
def test_a_mode_logs_torchs_calls_and_values_are_its_bits(equation, shapes):
    arrays = _arrays(shapes, seed=len(equation))
    ours, our_out = _logged(chainrule, equation, arrays, chainrule.float32)
    theirs, their_out = _logged(torch, equation, arrays, torch.float32)
    assert ours == theirs
    assert tuple(our_out.shape) == tuple(their_out.shape) and our_out.stride() == their_out.stride()
    _assert_torchs_values(our_out.numpy(), their_out.numpy(),
                          _torch_bmm_goes_to_blas(equation, arrays, torch.float32), 1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_are_torchs_bits_without_a_mode(dtype):
    """Random shapes (size-1 dims included) of common equations: the unrecorded path's values and
    strides are torch's, bit for bit, as the recorded one's are. (Not an equation that sums a label
    only one operand holds: chainrule's sum over a leading dim is not yet torch's bits in float64.)"""
    rng = np.random.default_rng(51)
    equations = ["ij,jk->ik", "bij,bjk->bik", "bhqd,bhkd->bhqk", "ij,j->i", "i,j->ij", "ij,kj->ik", "ijk,ikl->ijl",
                 "ij,jk->ki", "ij,jk,kl->il", "bn,anm,bm->ba", "bid,bjd->bij", "iij,jk->ik",
                 "bqhd,bkhd->bhqk", "bhqk,bkhd->bqhd"]
    for n in range(150):
        equation = equations[n % len(equations)]
        sizes = {label: int(rng.integers(1, 9)) for label in "abdhijklmnq"}
        shapes = [tuple(sizes[label] for label in term) for term in equation.split("->")[0].split(",")]
        arrays = [rng.standard_normal(shape) for shape in shapes]
        requires_grad = n % 3 == 0  # the recorded path too
        ours = chainrule.einsum(equation, *[chainrule.tensor(a, dtype=getattr(chainrule, dtype),
                                                             requires_grad=requires_grad) for a in arrays])
        theirs = torch.einsum(equation, *[torch.tensor(a, dtype=getattr(torch, dtype)) for a in arrays])
        assert ours.stride() == theirs.stride(), (equation, shapes)
        blas = _torch_bmm_goes_to_blas(equation, arrays, getattr(torch, dtype))
        _assert_torchs_values(ours.detach().numpy(), theirs.numpy(), blas, 1e-5 if dtype == "float32" else 1e-12,
                              f"{equation} {shapes}")


@pytest.mark.parametrize("equation,shapes", [c for c in CASES if 0 not in sum(c[1], ())],
                         ids=[i for c, i in zip(CASES, IDS) if 0 not in sum(c[1], ())])
def test_gradcheck_and_torchs_gradients_and_graph(equation, shapes):
    arrays = _arrays(shapes, seed=3)
    ours = [chainrule.tensor(a, requires_grad=True) for a in arrays]
    assert chainrule.autograd.gradcheck(lambda *ts: chainrule.einsum(equation, *ts), tuple(ours))
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    our_out, their_out = chainrule.einsum(equation, *ours), torch.einsum(equation, *theirs)
    assert type(our_out.grad_fn).__name__ == type(their_out.grad_fn).__name__
    weight = np.random.default_rng(1).standard_normal(tuple(their_out.shape))
    our_grads = chainrule.autograd.grad((our_out * chainrule.tensor(weight)).sum(), ours)
    their_grads = torch.autograd.grad((their_out * torch.tensor(weight)).sum(), theirs)
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("equation,shapes", [CASES[1], CASES[4], CASES[12], CASES[15], CASES[21]],
                         ids=[IDS[1], IDS[4], IDS[12], IDS[15], IDS[21]])
def test_forward_ad_matches_torch(equation, shapes):
    arrays = _arrays(shapes, seed=8)
    tangents = _arrays(shapes, seed=9)

    def run(lib):
        with lib.autograd.forward_ad.dual_level():
            duals = [lib.autograd.forward_ad.make_dual(lib.tensor(a), lib.tensor(t)) for a, t in zip(arrays, tangents)]
            primal, tangent = lib.autograd.forward_ad.unpack_dual(lib.einsum(equation, *duals))
            return primal.numpy(), tangent.numpy()

    for a, b in zip(run(chainrule), run(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("equation,shapes", [CASES[1], CASES[4], CASES[15]], ids=[IDS[1], IDS[4], IDS[15]])
def test_vmap_and_its_gradient_match_torch(equation, shapes):
    arrays = _arrays([(3,) + tuple(shapes[0])] + list(shapes[1:]), seed=4)

    def run(lib):
        first = lib.tensor(arrays[0], requires_grad=True)
        rest = [lib.tensor(a) for a in arrays[1:]]
        out = lib.func.vmap(lambda x: lib.einsum(equation, x, *rest))(first)
        (grad,) = lib.autograd.grad(out.square().sum(), [first])
        return out.detach().numpy(), grad.numpy()

    for a, b in zip(run(chainrule), run(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtypes", [("int32", "int32"), ("int64", "int64"), ("int16", "int16"), ("int32", "int64"),
                                    ("float32", "float64"), ("bool", "bool"), ("uint8", "uint8")])
@pytest.mark.parametrize("equation,shapes", [("ij,jk->ik", [(3, 4), (4, 5)]), ("ij,jk->", [(3, 4), (4, 5)]),
                                             ("i,j->ij", [(3,), (4,)]), ("ij,jk->ik", [(0, 4), (4, 5)])])
def test_integer_bool_and_mixed_dtypes_as_torch(dtypes, equation, shapes):
    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 3, size=shape) for shape in shapes]

    def run(lib):
        tensors = [lib.tensor(a).to(getattr(lib, d)) for a, d in zip(arrays, dtypes)]
        try:
            out = lib.einsum(equation, *tensors)
        except Exception as error:  # noqa: BLE001 - the error itself is compared
            return type(error), str(error)
        return str(out.dtype).split(".")[-1], out.numpy().tolist()

    assert run(chainrule) == run(torch)


def test_complex_values_and_gradients_close_to_torch():
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s) + 1j * rng.standard_normal(s) for s in [(2, 3, 5, 4), (2, 3, 6, 4)]]
    ours = [chainrule.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    our_out, their_out = chainrule.einsum("bhqd,bhkd->bhqk", *ours), torch.einsum("bhqd,bhkd->bhqk", *theirs)
    np.testing.assert_allclose(our_out.detach().numpy(), their_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    our_out.abs().sum().backward()
    their_out.abs().sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-12)
