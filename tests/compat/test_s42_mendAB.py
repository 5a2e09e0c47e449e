"""Session 42, lane mendAB: differences from torch closed, each checked against torch on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _graph(fn, depth=3):
    """(level, name) of the nodes reachable from fn, depth first, to ``depth`` levels."""
    found = []

    def walk(node, level):
        if node is None or level > depth:
            return
        found.append((level, node.name()))
        for child, _ in node.next_functions:
            walk(child, level + 1)

    walk(fn, 0)
    return found


def _saved(fn):
    return {name: tuple(getattr(fn, name).shape) if hasattr(getattr(fn, name), "shape") else getattr(fn, name)
            for name in dir(fn) if name.startswith("_saved_")}


# ---------------------------------------------------------------- 1. unbatched pools' graphs
_POOLS = {
    "max_pool": lambda m, d, x: getattr(m.nn.functional, f"max_pool{d}d")(x, 3, 2, 1),
    "max_pool_indices": lambda m, d, x: getattr(m.nn.functional, f"max_pool{d}d")(x, 2, return_indices=True)[0],
    "avg_pool": lambda m, d, x: getattr(m.nn.functional, f"avg_pool{d}d")(x, 3, 2, 1, count_include_pad=False),
    "adaptive_max_pool": lambda m, d, x: getattr(m.nn.functional, f"adaptive_max_pool{d}d")(x, 3),
    "adaptive_avg_pool": lambda m, d, x: getattr(m.nn.functional, f"adaptive_avg_pool{d}d")(x, 2),
    "MaxPool": lambda m, d, x: getattr(m.nn, f"MaxPool{d}d")(2)(x),
    "AvgPool": lambda m, d, x: getattr(m.nn, f"AvgPool{d}d")(2)(x),
}


@pytest.mark.parametrize("batched", [False, True], ids=["unbatched", "batched"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("pool", sorted(_POOLS))
def test_pools_record_torchs_graph_on_unbatched_and_batched_input(pool, d, batched):
    # torch pools one sample as it is (no Unsqueeze/Squeeze around the node), and a 1-d pool as the
    # 2-d one on input.unsqueeze(-2), batched or not
    spatial = (6,) * d if d < 3 else (4, 5, 4)
    data = np.random.default_rng(d).standard_normal(((2,) if batched else ()) + (3,) + spatial)
    results = {}
    for m in (torch, chainrule):
        x = m.tensor(data, requires_grad=True)
        y = _POOLS[pool](m, d, x)
        graph, saved = _graph(y.grad_fn), _saved(y.grad_fn)
        y.backward(m.ones_like(y))
        results[m] = graph, saved, y.detach().numpy(), x.grad.numpy()
    (t_graph, t_saved, t_y, t_grad), (c_graph, c_saved, c_y, c_grad) = results[torch], results[chainrule]
    assert c_graph == t_graph
    assert c_saved == t_saved
    assert c_y.shape == t_y.shape
    # adaptive average pooling multiplies by averaging matrices (1 ulp off torch's sums): values close
    np.testing.assert_allclose(c_y, t_y, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(c_grad, t_grad, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("d", [1, 2])
def test_unbatched_max_pool_indices_and_double_backward_values_match_torch(d):
    data = np.random.default_rng(7).standard_normal((3,) + (6,) * d)
    results = {}
    for m in (torch, chainrule):
        x = m.tensor(data, requires_grad=True)
        y, indices = getattr(m.nn.functional, f"max_pool{d}d")(x, 2, return_indices=True)
        upstream = m.tensor(np.arange(y.numel(), dtype=np.float64).reshape(tuple(y.shape)), requires_grad=True)
        (grad_x,) = m.autograd.grad(y, x, upstream, create_graph=True)
        (grad_upstream,) = m.autograd.grad((grad_x * grad_x).sum(), upstream)
        results[m] = indices.numpy(), grad_x.detach().numpy(), grad_upstream.numpy()
    for ours, theirs in zip(results[chainrule], results[torch]):
        assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes()


@pytest.mark.parametrize("shape, pool", [
    ((3, 5, 5), lambda m, x: m.nn.functional.adaptive_max_pool2d(x, (-1, 2))),
    ((3, 5, 5, 5), lambda m, x: m.nn.functional.adaptive_max_pool3d(x, (2, -1, 2))),
    ((3, 5), lambda m, x: m.nn.functional.adaptive_max_pool1d(x, -2)),
], ids=["2d", "3d", "1d"])
def test_unbatched_adaptive_max_pool_refusal_names_the_unbatched_shape(shape, pool):
    assert _refusal(chainrule, lambda m: pool(m, m.zeros(shape))) == _refusal(torch, lambda m: pool(m, m.zeros(shape)))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_unbatched_int64_avg_pool_matches_torch(d):
    data = np.arange(3 * 5 ** d).reshape((3,) + (5,) * d) * 7 - 40
    ours, theirs = (getattr(m.nn.functional, f"avg_pool{d}d")(m.tensor(data), 2) for m in (chainrule, torch))
    assert ours.dtype == chainrule.int64 and ours.numpy().tolist() == theirs.numpy().tolist()


def test_vmap_of_grad_through_unbatched_pools_matches_torch():
    data = np.random.default_rng(3).standard_normal((4, 3, 6, 6))
    for pool in (lambda m, t: m.nn.functional.max_pool2d(t, 2), lambda m, t: m.nn.functional.adaptive_max_pool2d(t, 3),
                 lambda m, t: m.nn.functional.avg_pool1d(t[0], 3)):
        got = {m: m.func.vmap(m.func.grad(lambda t, m=m, pool=pool: (pool(m, t) ** 2).sum()))(m.tensor(data)).numpy()
               for m in (torch, chainrule)}
        np.testing.assert_allclose(got[chainrule], got[torch], rtol=1e-14, atol=0)


# ---------------------------------------------------------------- 2. squeeze/unsqueeze/transpose nodes
_VIEWS = {
    "unsqueeze(0)": ((3, 4), lambda t: t.unsqueeze(0)),
    "unsqueeze(-1)": ((3, 4), lambda t: t.unsqueeze(-1)),
    "unsqueeze of 0-d": ((), lambda t: t.unsqueeze(0)),
    "squeeze()": ((3, 1, 4, 1), lambda t: t.squeeze()),
    "squeeze(1)": ((3, 1, 4), lambda t: t.squeeze(1)),
    "squeeze(-2)": ((3, 1, 4), lambda t: t.squeeze(-2)),
    "squeeze of a size > 1": ((3, 4), lambda t: t.squeeze(-1)),
    "squeeze((3, 1))": ((3, 1, 4, 1), lambda t: t.squeeze((3, 1))),
    "squeeze((1,))": ((3, 1, 4, 1), lambda t: t.squeeze((1,))),
    "squeeze of 0-d": ((1,), lambda t: t.squeeze()),
    "flatten": ((2, 3, 4), lambda t: t.flatten(1)),
    "unflatten": ((2, 12), lambda t: t.unflatten(1, (3, 4))),
    "view": ((2, 3, 4), lambda t: t.view(6, 4)),
    "reshape of a transpose": ((2, 3, 4), lambda t: t.transpose(0, 1).reshape(6, 4)),
    "expand": ((3, 1), lambda t: t.expand(2, 3, 4)),
    "movedim": ((2, 3, 4), lambda t: t.movedim((0, 1), (2, 0))),
    "permute": ((2, 3, 4), lambda t: t.permute(2, 0, 1)),
    "transpose(-2, -1)": ((2, 3, 4), lambda t: t.transpose(-2, -1)),
    "transpose(0, -1)": ((2, 3, 4), lambda t: t.transpose(0, -1)),
    "transpose of 0-d": ((), lambda t: t.transpose(-1, 0)),
    "mT": ((2, 3, 4), lambda t: t.mT),
    "t": ((3, 4), lambda t: t.t()),
}


@pytest.mark.parametrize("case", sorted(_VIEWS))
def test_view_ops_record_torchs_nodes_first_and_second_order(case):
    shape, op = _VIEWS[case]
    data = np.random.default_rng(5).standard_normal(shape)
    results = {}
    for m in (torch, chainrule):
        x = m.tensor(data, requires_grad=True)
        y = op(x)
        first = _graph(y.grad_fn), _saved(y.grad_fn)
        upstream = m.tensor(np.arange(1.0, y.numel() + 1).reshape(tuple(y.shape)), requires_grad=True)
        (grad_x,) = m.autograd.grad(y, x, upstream, create_graph=True)
        # a squeeze of no size-1 dim hands the gradient back as it is: no node
        second = (_graph(grad_x.grad_fn), _saved(grad_x.grad_fn)) if grad_x.grad_fn is not None else None
        (grad_upstream,) = m.autograd.grad((grad_x * grad_x).sum(), upstream)
        results[m] = first, second, tuple(y.shape), grad_x.detach().numpy().tobytes(), grad_upstream.numpy().tobytes()
    assert results[chainrule] == results[torch]


# ---------------------------------------------------------------- 3. refusals left over
def _refusal(m, build):
    with pytest.raises(Exception) as caught:
        build(m)
    return type(caught.value), str(caught.value)


_CONSTRUCTOR_REFUSALS = {
    "Conv2d groups=2.0": lambda m: m.nn.Conv2d(4, 4, 3, groups=2.0),
    "Conv1d groups=2.0": lambda m: m.nn.Conv1d(4, 4, 3, groups=2.0),
    "ConvTranspose2d groups=2.0": lambda m: m.nn.ConvTranspose2d(4, 4, 3, groups=2.0),
    "Conv2d in_channels=4.0": lambda m: m.nn.Conv2d(4.0, 4, 3),
    "Conv2d groups='2'": lambda m: m.nn.Conv2d(4, 4, 3, groups="2"),
    "Wishart 1-d scale_tril": lambda m: m.distributions.Wishart(df=m.tensor(3.0), scale_tril=m.ones(2)),
    "Wishart 1-d covariance": lambda m: m.distributions.Wishart(df=m.tensor(3.0), covariance_matrix=m.ones(2)),
    "Wishart 1-d precision": lambda m: m.distributions.Wishart(df=m.tensor(3.0), precision_matrix=m.ones(2)),
    "Wishart small df": lambda m: m.distributions.Wishart(df=m.tensor(0.5), covariance_matrix=m.eye(2)),
    "Wishart none given": lambda m: m.distributions.Wishart(df=m.tensor(3.0)),
}


@pytest.mark.parametrize("case", sorted(_CONSTRUCTOR_REFUSALS))
def test_constructor_refusals_in_torchs_bare_words(case):
    assert _refusal(chainrule, _CONSTRUCTOR_REFUSALS[case]) == _refusal(torch, _CONSTRUCTOR_REFUSALS[case])


def test_wishart_df_not_broadcastable_is_torchs_runtime_error():
    def build(m):
        return m.distributions.Wishart(df=m.ones(5), covariance_matrix=m.eye(2).expand(3, 2, 2))

    ours, theirs = _refusal(chainrule, build), _refusal(torch, build)
    assert ours[0] is theirs[0] is RuntimeError
    # the same words but for the Size's module name (chainrule.Size, torch.Size)
    assert ours[1] == theirs[1].replace("torch.Size", "chainrule.Size")


@pytest.mark.parametrize("name", ["__lshift__", "__rlshift__", "__ilshift__", "__rshift__", "__rrshift__",
                                  "__irshift__"])
@pytest.mark.parametrize("operand", ["none", "str", 2])
def test_shift_operators_answer_not_implemented_as_torchs(name, operand):
    results = {}
    for m in (torch, chainrule):
        t = m.tensor([3, 5], dtype=m.int64)
        result = getattr(t, name)() if operand == "none" else getattr(t, name)("a" if operand == "str" else operand)
        results[m] = result if result is NotImplemented else (result.numpy().tolist(), str(result.dtype)[-5:])
    assert results[chainrule] == results[torch]


@pytest.mark.parametrize("expression", ["t << 'a'", "'a' << t", "t >> None", "[1] >> t"])
def test_shift_operators_on_other_operands_get_pythons_words(expression):
    def evaluate(m):
        return eval(expression, {"t": m.tensor([3, 5])})

    assert _refusal(chainrule, evaluate) == _refusal(torch, evaluate)


def test_in_place_shift_by_a_str_gets_pythons_words():
    def shift(m):
        t = m.tensor([3, 5])
        t <<= "a"

    assert _refusal(chainrule, shift) == _refusal(torch, shift)


# ---------------------------------------------------------------- 4. pad_packed_sequence's plain backward
def test_pad_packed_sequence_keeps_torchs_graph_values_and_gradients():
    rng = np.random.default_rng(11)
    lengths = np.array(sorted(list(range(50, 29, -1)) + [30] * 11, reverse=True))  # 21 distinct lengths, batch 32
    data = rng.standard_normal((50, 32, 8)).astype(np.float32)
    upstream = rng.standard_normal((32, 50, 8)).astype(np.float32)
    results = {}
    for m in (torch, chainrule):
        x = m.tensor(data, requires_grad=True)
        packed = m.nn.utils.rnn.pack_padded_sequence(x, m.tensor(lengths))
        padded, sizes = m.nn.utils.rnn.pad_packed_sequence(packed, batch_first=True)
        chain, node = [], padded.grad_fn
        while node is not None:  # down the first edges (each CopySlices' base) to the full() it wrote into
            chain.append((node.name(), [None if n is None else n.name() for n, _ in node.next_functions]))
            node = node.next_functions[0][0]
        padded.backward(m.tensor(upstream))
        results[m] = chain, padded.detach().numpy().tobytes(), sizes.numpy().tolist(), x.grad.numpy().tobytes()
    assert sum(name == "torch::autograd::CopySlices" for name, _ in results[torch][0]) == 21
    assert results[chainrule] == results[torch]


@pytest.mark.parametrize("create_graph", [False, True])
def test_overwritten_slots_get_zero_gradient_keeping_negative_zero_inf_and_nan(create_graph):
    upstream = np.array([[-0.0, np.inf, np.nan], [-1.5, -0.0, np.inf]])
    results = {}
    for m in (torch, chainrule):
        base = m.zeros(2, 3, requires_grad=True)
        value = m.ones(2, requires_grad=True)
        x = base.clone()
        x[:, 1] = value
        grads = m.autograd.grad(x, (base, value), m.tensor(upstream), create_graph=create_graph)
        results[m] = [g.detach().numpy().tobytes() for g in grads], [g.requires_grad for g in grads]
    assert results[chainrule] == results[torch]
