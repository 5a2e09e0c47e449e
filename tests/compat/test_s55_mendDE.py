"""Leftovers of earlier lanes (lane mendDE, session 55), each compared with torch on the same inputs: the
node a recurrent layer's output meets, normalizations' graphs, sparse gradient nodes, window bits."""

import itertools

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _top(node, depth: int):
    """``node``'s name and, ``depth`` levels down, the set of its inputs' (as torch's walker prints them)."""
    if node is None:
        return None
    name = node.name().replace("torch::autograd::", "")
    if depth == 0:
        return name
    return name, tuple(sorted({str(_top(child, depth - 1)) for child, _ in node.next_functions}))


def _recurrent_output(lib, mode: str, layers: int, bidirectional: bool, batch_first: bool, packed: bool, dtype):
    lib.manual_seed(0)
    module = getattr(lib.nn, mode)(3, 4, num_layers=layers, bidirectional=bidirectional,
                                   batch_first=batch_first).to(getattr(lib, dtype))
    x = (lib.randn(2, 5, 3) if batch_first else lib.randn(5, 2, 3)).to(getattr(lib, dtype))
    if packed:
        x = lib.nn.utils.rnn.pack_padded_sequence(x, [5, 3], batch_first=batch_first)
    out, state = module(x)
    return out.data if packed else out, state[0] if mode == "LSTM" else state


_RECURRENT = [case for case in itertools.product(["RNN", "GRU", "LSTM"], [1, 2], [False, True], [False, True],
                                                 [False, True], ["float32", "float64"])
              if case[0] != "LSTM" or case[-1] == "float64"]


@pytest.mark.parametrize("case", _RECURRENT[::5] + [("GRU", 1, False, False, False, "float32")])
def test_recurrent_layer_output_node_is_named_as_torchs(case):
    """torch's CPU RNN and GRU (and an LSTM oneDNN does not run) compose each layer and end by stacking
    the steps: the output's grad_fn is StackBackward0 (below a bidirectional layer's CatBackward0 or
    batch_first's TransposeBackward1); chainrule's fused node was RnnBackward0 / GruBackward0 /
    LstmBackward0 (10 of 80 module configurations differed at the top node, 50 of 80 counting the
    names of its inputs; now 0 and 30: below, torch's are the steps' own nodes)."""
    theirs = _recurrent_output(torch, *case)
    ours = _recurrent_output(chainrule, *case)
    assert _top(ours[0].grad_fn, 0) == _top(theirs[0].grad_fn, 0)
    assert _top(ours[1].grad_fn, 0) == _top(theirs[1].grad_fn, 0)
    if (case[2] or case[3]) and not case[4]:  # an unpacked bidirectional or batch_first layer, a level down
        assert _top(ours[0].grad_fn, 1) == _top(theirs[0].grad_fn, 1)


def _graph(tensor) -> list:
    """The nodes reachable from ``tensor``'s grad_fn, breadth first: each name with its inputs' names."""
    found, seen, queue = [], set(), [tensor.grad_fn]
    while queue:
        node = queue.pop(0)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        found.append((node.name().replace("torch::autograd::", ""),
                      tuple(None if child is None else child.name().replace("torch::autograd::", "")
                            for child, _ in node.next_functions)))
        queue.extend(child for child, _ in node.next_functions)
    return found


def _normalized(lib, op: str, shape: tuple, input_grad: bool, use_input_stats: bool = True, momentum: float = 0.1):
    """(output, graph, the leaves that require grad, the running statistics) of F.layer_norm with a weight
    alone or F.instance_norm with running statistics."""
    rng = np.random.default_rng(len(shape) * 10 + input_grad)
    x = lib.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=input_grad)
    F = lib.nn.functional
    if op == "layer_norm":
        weight = lib.tensor(rng.standard_normal(shape[-1:]).astype(np.float32), requires_grad=True)
        out, leaves, running = F.layer_norm(x, shape[-1:], weight), [weight], []
    else:
        c = shape[1]
        running = [lib.tensor(rng.standard_normal(c).astype(np.float32)),
                   lib.tensor(rng.random(c).astype(np.float32) + 0.5)]
        affine = [lib.tensor(rng.standard_normal(c).astype(np.float32), requires_grad=True) for _ in range(2)]
        out = F.instance_norm(x, *running, *affine, use_input_stats=use_input_stats, momentum=momentum)
        leaves = affine
    return out, _graph(out), ([x] if input_grad else []) + leaves, running


@pytest.mark.parametrize("shape", [(2, 4, 3), (3, 5, 7, 2)])
@pytest.mark.parametrize("input_grad", [True, False])
def test_layer_norm_with_a_weight_alone_is_torchs_one_node(shape, input_grad):
    """torch records F.layer_norm(x, shape, weight) as one NativeLayerNormBackward0 whose bias input is
    None; chainrule recorded MulBackward0 over NativeLayerNormBackward0 and the weight's ViewBackward0
    (4 of 4 graphs differed, now 0). (Neither route's float32 values are torch's bits: nor are those of
    a layer norm with weight and bias, whose rows' moments torch sums in its own order.)"""
    ours, theirs = _normalized(chainrule, "layer_norm", shape, input_grad), _normalized(torch, "layer_norm", shape,
                                                                                     input_grad)
    assert ours[1] == theirs[1]
    assert ours[0].grad_fn._saved_bias is None and theirs[0].grad_fn._saved_bias is None
    np.testing.assert_allclose(ours[0].detach().numpy(), theirs[0].detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 4, 3), (3, 4, 5, 2)])
@pytest.mark.parametrize(("use_input_stats", "momentum"), [(True, 0.1), (True, 0.5), (False, 0.1)])
def test_instance_norm_with_running_statistics_records_torchs_graph(shape, use_input_stats, momentum):
    """torch's instance_norm is a batch norm of the input viewed as (1, N·C, *) with the parameters
    and running statistics repeated per sample: ViewBackward0 over NativeBatchNormBackward0 over the
    input's ViewBackward0 and the parameters' RepeatBackward0. With running statistics chainrule
    normalised per channel (AddBackward0 over MulBackward0 ..., or one NativeBatchNormBackward0 of
    the unviewed input): 16 of 16 graphs differed, now 0; the outputs and running statistics are now
    torch's bits (8 of 16 cases' values or gradients differed in the last bits before: the gradients of a
    use_input_stats normalisation still do, by an ulp or so, as without running statistics)."""
    ours = _normalized(chainrule, "instance_norm", shape, True, use_input_stats, momentum)
    theirs = _normalized(torch, "instance_norm", shape, True, use_input_stats, momentum)
    assert ours[1] == theirs[1]
    assert np.array_equal(ours[0].detach().numpy(), theirs[0].detach().numpy())
    for our_stat, their_stat in zip(ours[3], theirs[3]):
        assert np.array_equal(our_stat.numpy(), their_stat.numpy())
    seed = np.random.default_rng(0).standard_normal(tuple(ours[0].shape)).astype(np.float32)
    ours[0].backward(chainrule.tensor(seed))
    theirs[0].backward(torch.tensor(seed))
    for our_leaf, their_leaf in zip(ours[2], theirs[2]):
        if use_input_stats:
            np.testing.assert_allclose(our_leaf.grad.numpy(), their_leaf.grad.numpy(), rtol=1e-5, atol=1e-5)
        else:
            assert np.array_equal(our_leaf.grad.numpy(), their_leaf.grad.numpy())


@pytest.mark.parametrize(("shape", "size"), [((2, 4, 3), 2), ((2, 6, 5), 3), ((3, 5, 4, 2), 3), ((2, 3, 2, 2, 3), 2)])
def test_local_response_norm_pools_as_torch(shape, size):
    """torch averages the padded squares with avg_pool2d (3-d input) or avg_pool3d of the input viewed as
    (N, 1, C, H, rest): its graph has AvgPool2D/3DBackward0 under SqueezeBackward1 where chainrule summed
    slices (AddBackward0 over SliceBackward0, DivBackward0): 8 of 8 graphs differed, now 0; the values
    and gradients stay torch's bits."""
    results = []
    for lib in (chainrule, torch):
        x = lib.tensor(np.random.default_rng(size).standard_normal(shape).astype(np.float32), requires_grad=True)
        out = lib.nn.functional.local_response_norm(x, size)
        out.backward(lib.ones_like(out))
        results.append((_graph(out), out.detach().numpy(), x.grad.numpy()))
    (our_graph, *ours), (their_graph, *theirs) = results
    assert our_graph == their_graph
    for our, their in zip(ours, theirs):
        assert np.array_equal(our, their)


@pytest.mark.parametrize("name", ["sinh", "cosh"])
def test_float32_sinh_cosh_round_as_torchs(name):
    """torch's float32 sinh and cosh are nearly always the float64 value rounded once; NumPy's float32 loops
    were an ulp off it in a quarter of the values (randn·3, (4096,): sinh 1062, cosh 844 of 4096 differed
    from torch; now 7 and 5, each by one ulp)."""
    x = (np.random.default_rng(0).standard_normal(4096) * 3).astype(np.float32)
    ours = getattr(chainrule, name)(chainrule.tensor(x)).numpy().view(np.int32).astype(np.int64)
    theirs = getattr(torch, name)(torch.tensor(x)).numpy().view(np.int32).astype(np.int64)
    apart = np.abs(ours - theirs)  # (ulps: the values share their signs)
    assert apart.max() <= 1 and (apart > 0).sum() <= 20
