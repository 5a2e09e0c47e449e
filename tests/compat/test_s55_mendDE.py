"""Leftovers of earlier lanes (lane mendDE, session 55), each compared with torch on the same inputs: the
node a recurrent layer's output meets, normalizations' graphs, sparse gradient nodes, window bits."""

import itertools

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
