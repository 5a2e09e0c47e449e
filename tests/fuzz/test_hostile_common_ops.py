"""Differential fuzzing of ~60 common ops with hostile arguments against torch (session 29).

Each op is called with a float (2, 3) tensor and one hostile value in its argument's place: tensors
of the wrong dtype, rank or size (int, bool, complex, empty, 0-d, a vector, a transposed shape) and
plain values (None, a string, out-of-range and negative ints, a float, a tuple, an empty list). A
fixed-seed sample of the grid runs in CI (every case under ``CHAINRULE_LONG_TESTS=1``). On both
libraries the call must succeed alike or raise the same exception class; where chainrule speaks in
torch's argument-parser words (``"<op>(): argument '<name>'"``) the whole message must be torch's.
"""

from __future__ import annotations

import os
import random
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")

SEED = 20261204
SAMPLE = 300


def _tensor(lib, kind):
    return {
        "float": lambda: lib.arange(6.0).reshape(2, 3), "int": lambda: lib.arange(6).reshape(2, 3),
        "bool": lambda: lib.ones(2, 3, dtype=lib.bool), "empty": lambda: lib.ones(0, 3),
        "0-d": lambda: lib.tensor(2.0), "vector": lambda: lib.arange(4.0),
        "complex": lambda: lib.ones(2, 3, dtype=lib.complex64), "transposed": lambda: lib.ones(3, 2),
    }[kind]()


HOSTILE = [("tensor", kind) for kind in ("float", "int", "bool", "empty", "0-d", "vector", "complex", "transposed")] + [
    ("value", v) for v in (None, "a", 5, -5, -1, 2.5, (0, 0), [])]

F = "nn.functional."
OPS = {
    "sum(dim=a)": lambda lib, x, a: lib.sum(x, dim=a), "mean(dim=a)": lambda lib, x, a: lib.mean(x, dim=a),
    "max(dim=a)": lambda lib, x, a: lib.max(x, dim=a), "argmax(dim=a)": lambda lib, x, a: lib.argmax(x, dim=a),
    "softmax(dim=a)": lambda lib, x, a: lib.softmax(x, dim=a), "cumsum(dim=a)": lambda lib, x, a: lib.cumsum(x, dim=a),
    "std(dim=a)": lambda lib, x, a: lib.std(x, dim=a), "sort(dim=a)": lambda lib, x, a: lib.sort(x, dim=a),
    "log_softmax(x, a)": lambda lib, x, a: lib.log_softmax(x, a), "squeeze(x, a)": lambda lib, x, a: lib.squeeze(x, a),
    "unsqueeze(x, a)": lambda lib, x, a: lib.unsqueeze(x, a), "flatten(x, a)": lambda lib, x, a: lib.flatten(x, a),
    "transpose(x, 0, a)": lambda lib, x, a: lib.transpose(x, 0, a), "cat([x, a])": lambda lib, x, a: lib.cat([x, a]),
    "stack([x, a])": lambda lib, x, a: lib.stack([x, a]), "add": lambda lib, x, a: lib.add(x, a),
    "mul": lambda lib, x, a: lib.mul(x, a), "sub": lambda lib, x, a: lib.sub(x, a), "div": lambda lib, x, a: lib.div(x, a),
    "pow": lambda lib, x, a: lib.pow(x, a), "matmul": lambda lib, x, a: lib.matmul(x, a), "mm": lambda lib, x, a: lib.mm(x, a),
    "bmm": lambda lib, x, a: lib.bmm(x, a), "dot": lambda lib, x, a: lib.dot(x, a),
    "where(a, x, 0.0)": lambda lib, x, a: lib.where(a, x, 0.0), "masked_fill": lambda lib, x, a: x.masked_fill(a, 0.0),
    "clamp(min=a)": lambda lib, x, a: lib.clamp(x, min=a), "topk": lambda lib, x, a: lib.topk(x, a),
    "gather(x, 1, a)": lambda lib, x, a: lib.gather(x, 1, a), "index_select(x, 0, a)": lambda lib, x, a: lib.index_select(x, 0, a),
    "reshape": lambda lib, x, a: x.reshape(a), "view": lambda lib, x, a: x.view(a), "expand": lambda lib, x, a: x.expand(a),
    "repeat": lambda lib, x, a: x.repeat(a), "permute": lambda lib, x, a: x.permute(a), "roll": lambda lib, x, a: lib.roll(x, a),
    "chunk": lambda lib, x, a: lib.chunk(x, a), "split": lambda lib, x, a: lib.split(x, a),
    "narrow(x, 0, 0, a)": lambda lib, x, a: lib.narrow(x, 0, 0, a), "tril(x, a)": lambda lib, x, a: lib.tril(x, a),
    "triu(x, a)": lambda lib, x, a: lib.triu(x, a), "norm(x, a)": lambda lib, x, a: lib.norm(x, a),
    "relu": lambda lib, x, a: lib.relu(a), "exp": lambda lib, x, a: lib.exp(a), "abs": lambda lib, x, a: lib.abs(a),
    "sqrt": lambda lib, x, a: lib.sqrt(a), "sigmoid": lambda lib, x, a: lib.sigmoid(a),
    "einsum": lambda lib, x, a: lib.einsum("ij,jk->ik", x, a), "outer(a, a)": lambda lib, x, a: lib.outer(a, a),
    "zeros(a)": lambda lib, x, a: lib.zeros(a), "full(a, 1.0)": lambda lib, x, a: lib.full(a, 1.0),
    "arange(a)": lambda lib, x, a: lib.arange(a),
    F + "linear": lambda lib, x, a: lib.nn.functional.linear(x, a),
    F + "cross_entropy": lambda lib, x, a: lib.nn.functional.cross_entropy(x, a),
    F + "one_hot": lambda lib, x, a: lib.nn.functional.one_hot(a),
    F + "dropout(x, a)": lambda lib, x, a: lib.nn.functional.dropout(x, a),
    F + "pad": lambda lib, x, a: lib.nn.functional.pad(x, a),
    F + "l1_loss": lambda lib, x, a: lib.nn.functional.l1_loss(x, a),
}

# deliberate or known differences, each with its reason
ALLOWED = {
    # torch's Python loss reads target.size(): a non-tensor target is its AttributeError, which
    # chainrule's dispatch layer reports as torch's argument parser does (a TypeError)
    F + "l1_loss",
}


def _outcome(op, lib, hostile):
    kind, value = hostile
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            op(lib, lib.arange(6.0).reshape(2, 3), _tensor(lib, value) if kind == "tensor" else value)
        except Exception as error:  # noqa: BLE001 - the class and the words are what is compared
            return type(error).__name__, str(error)
    return None


def _parser_words(message: str) -> str | None:
    """The ``"<op>(): argument '<name>'"`` start of a message in torch's argument-parser words."""
    head, found, rest = message.partition("(): argument '")
    if not found or " " in head:
        return None
    return head + found + rest.partition("'")[0]


def _cases():
    grid = [(name, hostile) for name in OPS for hostile in HOSTILE]
    if os.environ.get("CHAINRULE_LONG_TESTS"):
        return grid
    return random.Random(SEED).sample(grid, SAMPLE)


def test_hostile_arguments_of_common_ops_answer_as_torch():
    differences = []
    for name, hostile in _cases():
        if name in ALLOWED:
            continue
        theirs, ours = _outcome(OPS[name], torch, hostile), _outcome(OPS[name], chainrule, hostile)
        if (theirs is None) != (ours is None) or theirs is not None and theirs[0] != ours[0]:
            differences.append(f"{name} with {hostile}: torch {theirs}, chainrule {ours}")
        elif theirs is not None and _parser_words(ours[1]) is not None and _parser_words(ours[1]) == _parser_words(
                theirs[1]) and ours[1] != theirs[1]:
            differences.append(f"{name} with {hostile}: torch's words {theirs[1]!r}, chainrule's {ours[1]!r}")
    assert not differences, f"{len(differences)} cases differ from torch:\n" + "\n".join(differences)
