"""Session 56, perfAR: a bfloat16 use no longer slows every later float32 op. The low-precision hook
(``opmath_hook``) stays set once bfloat16, float16 or a float8 type is used; ops now call it only
inside a CPU autocast region or with a low-precision input, and the array fast paths of gradient
rules and in-place ops ask the open region rather than the hook. And one ``nothing_watches``
predicate for the fused paths (eval batch_norm's, rms_norm's), which vmap sends to the composite."""

import numpy as np
import pytest

import chainrule
from chainrule import _methods, _opmath
from chainrule.autograd import function as _function
from chainrule.ops import normalization

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(56)
X = RNG.standard_normal((5, 6)).astype(np.float32)
W1 = RNG.standard_normal((8, 6)).astype(np.float32) * 0.5
W2 = RNG.standard_normal((3, 8)).astype(np.float32) * 0.5
B1 = RNG.standard_normal(8).astype(np.float32)
LABELS = np.array([0, 2, 1, 1, 0])


@pytest.fixture
def counted_hook(monkeypatch):
    """The low-precision hook installed as a bfloat16 use installs it, noting each op it is called for."""
    chainrule.ones(2, dtype=chainrule.bfloat16) + 1
    calls = []

    def hook(cls, ctx, arrays, params):
        calls.append(cls.__name__)
        return _opmath.run(cls, ctx, arrays, params)

    monkeypatch.setattr(_function, "opmath_hook", hook)
    return calls


def _graph(node) -> list:
    """grad_fn names of a graph, depth first."""
    names, pending = [], [node]
    while pending:
        node = pending.pop()
        if node is not None:
            names.append(node.name())
            pending.extend(n for n, _ in reversed(node.next_functions))
    return names


def _float32_steps(lib) -> tuple:
    """Two steps of a small MLP (linear, tanh, relu, cross_entropy) with SGD's momentum update written
    as in-place ops under no_grad (torch.optim's first use costs seconds), then a clamp_: values,
    gradients and the last step's graph."""
    params = [lib.tensor(a, requires_grad=True) for a in (W1, B1, W2)]
    buffers = [lib.zeros_like(p) for p in params]
    x, y = lib.tensor(X), lib.tensor(LABELS)
    values = []
    for _ in range(2):
        hidden = lib.nn.functional.linear(x, params[0], params[1]).tanh()
        loss = lib.nn.functional.cross_entropy((hidden * 1.5).relu() @ params[2].T, y)
        loss.backward()
        with lib.no_grad():
            for p, buffer in zip(params, buffers):
                buffer.mul_(0.9).add_(p.grad)
                p.add_(buffer, alpha=-0.1)
        values += [loss.detach().numpy()] + [p.grad.numpy().copy() for p in params]
        for p in params:
            p.grad = None
    with lib.no_grad():
        params[0].clamp_(-0.3, 0.3)
    values += [p.detach().numpy().copy() for p in params]
    return values, _graph(loss.grad_fn)


def test_a_float32_step_after_a_bfloat16_use_is_the_clean_one_and_never_calls_the_hook(counted_hook, monkeypatch):
    after, graph_after = _float32_steps(chainrule)
    assert counted_hook == []  # every op ran its forward directly
    monkeypatch.setattr(_function, "opmath_hook", None)  # as in a process that never used bfloat16
    clean, graph_clean = _float32_steps(chainrule)
    expected, graph_torch = _float32_steps(torch)
    assert graph_after == graph_clean == graph_torch
    for a, c, t in zip(after, clean, expected):
        assert a.dtype == c.dtype == np.float32 and np.array_equal(a, c)
        np.testing.assert_allclose(a, t, rtol=1e-5, atol=1e-6)


def test_the_array_fast_paths_run_after_a_bfloat16_use_but_not_in_an_autocast_region(counted_hook):
    t = chainrule.ones(3)
    with chainrule.no_grad():
        assert _function.unwatched_on_arrays(t) and _function.nothing_watches()
        assert _methods._unwatched_array(t) is t._data
        with chainrule.autocast("cpu", dtype=chainrule.bfloat16):
            assert not _function.unwatched_on_arrays(t) and not _function.nothing_watches()
            assert _methods._unwatched_array(t) is None
            # an op on float32 inputs runs through the hook inside a region (the region's list casts it)
            out = chainrule.nn.functional.linear(chainrule.tensor(X), chainrule.tensor(W1))
    assert out.dtype is chainrule.bfloat16 and "Mm" in counted_hook


def test_low_precision_and_mixed_ops_still_take_the_hook_and_torchs_values(counted_hook):
    results = {}
    for lib in (chainrule, torch):
        a = lib.tensor(X, requires_grad=True)
        b = lib.tensor(X[::-1].copy(), requires_grad=True)
        thirds = lib.full((1000,), 1 / 3, dtype=lib.bfloat16).sum()  # float32 accumulation: 334, not 128
        mixed = a * b.to(lib.bfloat16)  # float32 result; b's gradient comes back through a bfloat16 cast
        halves = (a * 2).to(lib.float16)  # float16 gradients reach float32 ops
        loss = mixed.sum() + (halves * halves).sum().float() + (a.to(lib.bfloat16) @ b.T.to(lib.bfloat16)).sum()
        loss.backward()
        results[lib] = [thirds.float(), mixed, loss.float(), a.grad, b.grad]
        if lib is chainrule:
            assert {"Sum", "Mul", "Mm"} <= set(counted_hook)
    for ours, theirs in zip(results[chainrule], results[torch]):
        assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
        assert np.array_equal(ours.detach().numpy(), theirs.detach().numpy())


def test_an_autocast_region_opened_and_closed_gives_torchs_values_then_the_float32_path(counted_hook):
    results = {}
    for lib in (chainrule, torch):
        w = lib.tensor(W1, requires_grad=True)
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = lib.nn.functional.linear(lib.tensor(X), w).relu()
        out.float().sum().backward()  # after the region closed
        after = lib.nn.functional.linear(lib.tensor(X), w)  # float32 again
        results[lib] = [out.float(), w.grad, after]
    for ours, theirs in zip(results[chainrule][:2], results[torch][:2]):
        assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
        assert np.array_equal(ours.detach().numpy(), theirs.detach().numpy())
    # (a float32 GEMM's last bits are BLAS's, not torch's)
    assert results[chainrule][2].dtype is chainrule.float32 and results[chainrule][2].grad_fn.name() == "MmBackward0"
    np.testing.assert_allclose(results[chainrule][2].detach().numpy(), results[torch][2].detach().numpy(), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_vmap_over_eval_batch_norm_and_rms_norm_takes_the_composite(monkeypatch, batch):
    array_path = []
    original = normalization._eval_batch_norm_float32
    monkeypatch.setattr(normalization, "_eval_batch_norm_float32",
                        lambda *args: array_path.append(1) or original(*args))
    x = RNG.standard_normal((batch, 4, 3)).astype(np.float32)
    mean, var = RNG.standard_normal(3).astype(np.float32), RNG.random(3).astype(np.float32) + 0.5
    weight, bias = RNG.standard_normal(3).astype(np.float32), RNG.standard_normal(3).astype(np.float32)
    results, watched = {}, []
    for lib in (chainrule, torch):
        m, v, w, b = (lib.tensor(a) for a in (mean, var, weight, bias))
        F = lib.nn.functional

        def normalized(row, lib=lib, F=F, m=m, v=v, w=w, b=b):
            if lib is chainrule:
                watched.append(_function.nothing_watches())
            return F.batch_norm(row, m, v, w, b, training=False), F.rms_norm(row, (3,), w)

        results[lib] = lib.vmap(normalized)(lib.tensor(x))
    assert array_path == [] and watched and not any(watched)
    with chainrule.no_grad():
        F = chainrule.nn.functional
        plain = F.batch_norm(chainrule.tensor(x[0]), *(chainrule.tensor(a) for a in (mean, var, weight, bias)))
    assert array_path == [1]  # outside vmap, the array path
    np.testing.assert_allclose(results[chainrule][0][0].numpy(), plain.numpy(), rtol=1e-6, atol=1e-6)
    for ours, theirs in zip(results[chainrule], results[torch]):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
