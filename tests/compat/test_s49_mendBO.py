"""Lane mendBO (session 49): torch's conj() is a view, so writes reach through it both ways.

chainrule's conj() keeps the conjugate in memory of its own (reads stay one array read); the family's
version counter becomes a ``tensor.ConjugateViews``, whose bump after every in-place write copies a
written conj view's conjugate back into its source and refreshes every conj view from its source.
Also: a conj view of an expanded tensor stays expanded (so AccumulateGrad's clone drops the bit, as
torch's), ``detach_()`` refuses a conj view, ``vmap`` keeps the bit of what the function returns,
``.real`` of a conj view is torch's select(view_as_real(_conj(z))), and ihfftn conjugates internally.
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_VALUES = [1 + 2j, 3 - 1j, -2 + 0.5j]


def _z(lib, values=_VALUES):
    return lib.tensor(values, dtype=lib.complex128)


def _seen(lib, *tensors):
    """Each tensor's values (resolved, signed zeros made plain), conj bit and version."""
    return [((t.resolve_conj().detach().numpy() + 0).tolist(), t.is_conj(), t._version) for t in tensors]


def _mul_(lib):
    z = _z(lib)
    w = z.conj()
    w.mul_(2)
    return z, w


def _setitem(lib):
    z = _z(lib)
    w = z.conj()
    w[0] = 1 + 1j
    return z, w


def _add_imaginary(lib):
    z = _z(lib)
    w = z.conj()
    w.add_(1j)
    return z, w


def _copy_(lib):
    z = _z(lib)
    w = z.conj()
    w.copy_(lib.tensor([1j, 2j, 3j], dtype=lib.complex128))
    return z, w


def _slice_of_view(lib):
    z = _z(lib)
    w = z.conj()
    w[1:].zero_()
    return z, w


def _base_written(lib):
    z = _z(lib)
    w = z.conj()
    z.mul_(1j)
    return z, w


def _base_element_written(lib):
    z = _z(lib)
    w = z.conj()
    z[2] = 5j
    return z, w


def _slice_of_view_then_base(lib):
    z = _z(lib)
    v = z.conj()[1:]
    z.add_(1j)
    return z, v


def _conj_of_conj(lib):
    z = _z(lib)
    w = z.conj().conj()
    w.add_(1)
    return z, w


def _two_views(lib):
    z = _z(lib)
    a, b = z.conj(), z.conj()
    a.mul_(2)
    return z, a, b


def _conj_of_row(lib):
    z = lib.zeros(2, 3, dtype=lib.complex128)
    w = z[1].conj()
    w.fill_(1j)
    return z, w


def _row_of_base_then_view(lib):
    z = lib.zeros(2, 3, dtype=lib.complex128)
    w = z.conj()
    z[0].fill_(2 + 1j)
    return z, w


def _real_of_view(lib):
    z = _z(lib)
    w = z.conj()
    w.real.add_(1)
    return z, w


def _imag_of_view(lib):
    z = _z(lib)
    w = z.conj()
    w.imag.mul_(3)
    return z, w


def _detached_view(lib):
    z = _z(lib)
    w = z.conj()
    d = w.detach()
    d.mul_(3)
    return z, w, d


def _mH(lib):
    z = lib.tensor([[1 + 1j, 2j], [3, -1j]], dtype=lib.complex128)
    h = z.mH
    h[0, 1] = 7 - 7j
    return z, h


def _adjoint_then_base(lib):
    z = lib.tensor([[1 + 1j, 2j], [3, -1j]], dtype=lib.complex128)
    h = z.adjoint()
    z.sub_(1j)
    return z, h


_WRITES = {name[1:]: f for name, f in dict(globals()).items() if name.startswith("_") and callable(f) and name not in
           ("_z", "_seen")}


@pytest.mark.parametrize("name", sorted(_WRITES))
def test_writes_reach_through_conj_views_as_torch(name):
    """Values, conj bits and versions of the tensor and its conj views after a write into either."""
    assert _seen(chainrule, *_WRITES[name](chainrule)) == _seen(torch, *_WRITES[name](torch))


def test_conj_view_shares_the_version_counter():
    for lib in (torch, chainrule):
        z = _z(lib)
        w = z.conj()
        w.add_(1)
        z.add_(1)
        assert (z._version, w._version) == (2, 2), lib


def test_written_conj_view_that_dies_first_still_reached_its_source():
    # the conj of a conj view reads the first view's copy, kept alive by the second
    z = _z(chainrule)
    u = z.conj().conj()
    u.mul_(2)
    np.testing.assert_array_equal(z.numpy(), 2 * np.array(_VALUES))
    z.add_(1)
    np.testing.assert_array_equal(u.numpy(), 2 * np.array(_VALUES) + 1)


def test_real_tensors_keep_a_plain_version_counter():
    x = chainrule.ones(3)
    x.conj().add_(1)  # the conj of a real tensor is the tensor itself
    assert type(x._version_box) is list and x.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_detach_in_place_refuses_a_conj_view(lib, requires_grad):
    z = _z(lib).requires_grad_(requires_grad)
    with pytest.raises(RuntimeError, match=r"^Can't detach views in-place. Use detach\(\) instead."):
        z.conj().detach_()


def test_detach_in_place_of_a_detached_conj_view_works_as_torch():
    for lib in (torch, chainrule):
        d = _z(lib).conj().detach()
        assert d.detach_() is d and d.is_conj()


_VMAPPED = {
    "conj": lambda lib: lib.conj,
    "method": lambda lib: lambda t: t.conj(),
    "conj then mul": lambda lib: lambda t: t.conj() * 2,
    "conj then resolve": lambda lib: lambda t: t.conj().resolve_conj(),
    "element of conj": lambda lib: lambda t: t[0].conj(),
    "tuple": lambda lib: lambda t: (t.conj(), t + 1),
    "nested": lambda lib: lib.vmap(lib.conj),
    "add on a conj input": lambda lib: lambda t: t + 1,
    "identity of a conj input": lambda lib: lambda t: t,
}


@pytest.mark.parametrize("name", sorted(_VMAPPED))
@pytest.mark.parametrize("conj_input", [False, True])
def test_vmap_keeps_the_conj_bit_as_torch(name, conj_input):
    def run(lib):
        z = lib.stack([_z(lib), _z(lib) * 2])
        out = lib.vmap(_VMAPPED[name](lib))(z.conj() if conj_input else z)
        return _seen(lib, *(out if isinstance(out, tuple) else (out,)))
    assert run(chainrule) == run(torch)


_GRADS = {
    "sum of conj": lambda lib, x: x.conj().sum().real,
    "expand of conj": lambda lib, x: x.conj().expand(3, 2).real.sum(),
    "conj of expand": lambda lib, x: (x.expand(3, 2).conj() * 1j).real.sum(),
    "abs of conj": lambda lib, x: x.conj().abs().sum(),
    "real of conj": lambda lib, x: x.conj().real.sum(),
    "imag of conj": lambda lib, x: x.conj().imag.sum(),
}


# (not "imag of conj": torch's is a lazily negated view of the conj's imaginary parts, whose second
# ConjBackward0 clears the grad's bit; chainrule's imag of a conj view is a plain view, its grad keeps it)
@pytest.mark.parametrize("name", sorted(set(_GRADS) - {"imag of conj"}))
def test_leaf_grad_conj_bit_as_torch(name):
    def run(lib):
        x = lib.tensor([1 + 1j, 2j], dtype=lib.complex128, requires_grad=True)
        _GRADS[name](lib, x).backward()
        return (x.grad.resolve_conj().numpy() + 0).tolist(), x.grad.is_conj()
    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("name", ["sum of conj", "expand of conj"])
def test_autograd_grad_of_an_expanded_conj_keeps_it_expanded(name):
    def run(lib):
        x = lib.tensor([1 + 1j, 2j], dtype=lib.complex128, requires_grad=True)
        g, = lib.autograd.grad(_GRADS[name](lib, x), x)
        return g.is_conj(), g.stride(), (g.resolve_conj().numpy() + 0).tolist()
    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("name", sorted(_GRADS))
def test_conj_routes_pass_gradcheck(name):
    x = chainrule.tensor([1 + 1j, 2j], dtype=chainrule.complex128, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda x: _GRADS[name](chainrule, x), (x,))


def _chain(node):
    names = []
    while node is not None:
        names.append(node.name())
        node = node.next_functions[0][0] if node.next_functions else None
    return names


def test_real_of_a_conj_view_is_torch_graph():
    for lib in (torch, chainrule):
        x = _z(lib).requires_grad_()
        r = x.conj().real
        assert not r.is_conj() and r._is_view()
        assert [n.rsplit("::", 1)[-1] for n in _chain(r.grad_fn)] == [
            "SelectBackward0", "ViewAsRealBackward0", "ConjBackward0", "ConjBackward0", "AccumulateGrad"], lib


def _dispatch_log(lib, fn):
    from torch.utils._python_dispatch import TorchDispatchMode as TorchMode

    from chainrule.utils._python_dispatch import TorchDispatchMode as ChainruleMode
    seen = []

    class Log(TorchMode if lib is torch else ChainruleMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func.overloadpacket).replace("aten.", ""))
            return func(*args, **(kwargs or {}))
    with Log():
        fn()
    return seen


def _function_log(lib, fn):
    seen = []

    class Log(lib.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))
    with Log():
        fn()
    return seen


@pytest.mark.parametrize("op", ["ihfftn", "ihfft2", "ihfft", "rfft", "irfft", "fft"])
def test_fft_kernels_a_dispatch_mode_sees_as_torch(op):
    def run(lib):
        x = lib.arange(6, dtype=lib.float64).view(2, 3)
        return _dispatch_log(lib, lambda: getattr(lib.fft, op)(x))
    assert run(chainrule) == run(torch)


def test_ihfftn_shows_a_function_mode_itself_alone():
    x = chainrule.arange(6, dtype=chainrule.float64).view(2, 3)
    assert _function_log(chainrule, lambda: chainrule.fft.ihfftn(x)) == [chainrule.fft.ihfftn]


def test_no_grad_writes_reach_through_conj_views_of_a_leaf_as_torch():
    def run(lib):
        z = _z(lib).requires_grad_()
        w = z.conj()
        with lib.no_grad():
            w.mul_(2)
            z.add_(1j)
        return _seen(lib, z, w)
    assert run(chainrule) == run(torch)


def test_recorded_write_to_a_conj_view_never_changes_a_leaf_that_requires_grad():
    # torch refuses it (a view of a leaf); chainrule does not record torch's CopySlices on the leaf,
    # so the view becomes a copy and the leaf keeps its values
    z = _z(chainrule).requires_grad_()
    w = z.conj()
    w.mul_(2)
    assert z.tolist() == _VALUES and (w.resolve_conj().detach().numpy() == 2 * np.conj(_VALUES)).all()
    with chainrule.no_grad():
        z.mul_(3)  # the ended pair writes nothing back either way
    assert z.tolist() == [3 * v for v in _VALUES] and (w.resolve_conj().detach().numpy() == 2 * np.conj(_VALUES)).all()



def _through_view(lib, x):
    z = x * 1
    z.conj().mul_(2j)
    return z


def _through_view_by_a_tensor(lib, x):
    z = x * 1
    z.conj().add_(x.conj() * x)
    return z


def _into_source(lib, x):
    z = x * 1
    w = z.conj()
    z.mul_(x)
    return w


def _view_then_both(lib, x):
    z = x * 1
    w = z.conj()
    w.mul_(x)
    return z * w


def _view_of_untracked(lib, x):
    z = lib.tensor([1 + 2j, 3j, -1 + 1j], dtype=lib.complex128)
    w = z.conj()
    w.mul_(x.abs())
    return z


_RECORDED = {f.__name__[1:]: f for f in (_through_view, _through_view_by_a_tensor, _into_source, _view_then_both,
                                         _view_of_untracked)}


@pytest.mark.parametrize("name", sorted(_RECORDED))
def test_recorded_writes_through_conj_views_give_torch_values_and_gradients(name):
    def run(lib):
        x = lib.tensor([1 + 2j, 3j, -1 + 1j], dtype=lib.complex128, requires_grad=True)
        out = _RECORDED[name](lib, x)
        (out * lib.tensor([1j, 2, 3 - 1j], dtype=lib.complex128)).real.sum().backward()
        return [*out.resolve_conj().detach().numpy(), *x.grad.resolve_conj().numpy()], out.requires_grad
    (ours, ours_grad), (theirs, theirs_grad) = run(chainrule), run(torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours_grad == theirs_grad


@pytest.mark.parametrize("name", sorted(_RECORDED))
def test_recorded_writes_through_conj_views_pass_gradcheck(name):
    x = chainrule.tensor([1 + 2j, 3j, -1 + 1j], dtype=chainrule.complex128, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda x: _RECORDED[name](chainrule, x), (x,))
