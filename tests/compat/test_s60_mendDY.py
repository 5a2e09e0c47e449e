"""Session 60, lane mendDY: the autograd engine's semantics where the autograd fuzzer
(tests/fuzz/test_autograd_programs.py) found chainrule differing from torch 2.13."""

import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _first_line(error) -> str:
    return str(error).split("\n")[0]


# -- copy_/fill_/zero_ nodes save no tensor: a second backward through them runs

@pytest.mark.parametrize("write", ["copy_", "fill_", "zero_", "fill_tensor"])
def test_copy_and_fill_nodes_backward_twice_as_torch(write):
    def run(lib):
        a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = lib.tensor([4.0, 5.0, 6.0], requires_grad=True)
        x = a.sum().expand(3)
        x = x + b if write != "copy_" else x.clone()
        {"copy_": lambda: x.copy_(b), "fill_": lambda: x.fill_(2.0), "zero_": x.zero_,
         "fill_tensor": lambda: x.fill_(b.sum())}[write]()
        y = x.sum()
        y.backward()
        y.backward()  # torch's Copy/Fill/Zero nodes save nothing, nor do the Add/Sum/Expand below them
        return x.grad_fn.name(), a.grad.tolist(), b.grad.tolist()

    assert run(cr) == run(torch)
