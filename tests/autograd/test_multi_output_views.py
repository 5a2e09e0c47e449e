"""split, chunk and unbind record one node whose outputs are numbered 0..n-1, as torch's: each
piece's ``output_nr``, a consumer's ``next_functions``, the node's ``_saved_*`` values, and the
gradients (pieces unused included) equal torch 2.13's on the same program."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

_SPLITS = [
    ("split", lambda h: h.split(2, 0)),
    ("split negative dim", lambda h: h.split(3, -1)),
    ("split with sizes", lambda h: h.split([1, 4], 0)),
    ("split one piece", lambda h: h.split(10, 0)),
    ("chunk", lambda h: h.chunk(2, 1)),
    ("unbind", lambda h: h.unbind(1)),
    ("unbind negative dim", lambda h: h.unbind(-2)),
]


def _graph(lib, make):
    a = lib.tensor(np.arange(20.0).reshape(5, 4) / 10, requires_grad=True)
    pieces = make(a * 1)
    node = pieces[0].grad_fn
    saved = {name: getattr(node, name) for name in dir(node) if name.startswith("_saved_")}
    consumer = pieces[-1] * 2
    edge = consumer.grad_fn.next_functions[0]
    return (type(node).__name__, [p.output_nr for p in pieces], all(p.grad_fn is node for p in pieces),
            sorted((k, tuple(v) if isinstance(v, tuple) else v) for k, v in saved.items()),
            type(edge[0]).__name__, edge[1] == len(pieces) - 1, edge[0] is node)


@pytest.mark.parametrize("name, make", _SPLITS, ids=[s[0] for s in _SPLITS])
def test_the_pieces_are_one_node_s_numbered_outputs_as_torch(name, make):
    assert _graph(cr, make) == _graph(torch, make)


def _program(lib, a, make):
    pieces = make(a * 1)
    used = pieces[::2]  # some pieces unused: their gradients are zeros
    return sum(((p * p).sin() * (i + 1)).sum() for i, p in enumerate(used))


@pytest.mark.parametrize("name, make", _SPLITS, ids=[s[0] for s in _SPLITS])
def test_gradients_through_the_pieces_match_torch_and_finite_differences(name, make):
    data = np.random.default_rng(0).standard_normal((5, 4))
    grads = []
    for lib in (cr, torch):
        a = lib.tensor(data, requires_grad=True)
        _program(lib, a, make).backward()
        grads.append(a.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    a = cr.tensor(data, requires_grad=True)
    assert cr.autograd.gradcheck(lambda a: _program(cr, a, make), (a,))
    assert cr.autograd.gradgradcheck(lambda a: _program(cr, a, make), (a,))


def test_the_pieces_share_the_input_s_memory_and_version():
    h = cr.ones(4, 3, requires_grad=True) * 1
    pieces = h.split(2, 0)
    assert all(p._base is h for p in pieces)
    h.detach()[0, 0] = 5.0
    assert pieces[0][0, 0].item() == 5.0 and pieces[0]._version == h._version == 1


@pytest.mark.parametrize("make", ["split", "unbind"])
def test_a_written_piece_is_refused_naming_its_number_as_torch(make):
    words = []
    for lib in (torch, cr):
        h = lib.ones(2, 4, dtype=lib.float64, requires_grad=True) * 2
        pieces = h.split(1, 0) if make == "split" else h.unbind(0)
        with pytest.raises(RuntimeError) as caught:
            pieces[1].add_(1)
        words.append(str(caught.value))
    assert words[0] == words[1]
    assert words[1].startswith("Output 1 of ")
