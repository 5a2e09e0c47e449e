"""Module hook corners that captum and opacus lean on, each compared with torch 2.13: the flag
tables beside the hook dicts (``_forward_hooks_with_kwargs``, ``_forward_hooks_always_called``),
``always_call`` forward hooks after a failing forward, the global ``register_module_*_hook``
functions, the deprecated non-full ``register_backward_hook`` and its FutureWarning, and a module
called twice in one graph with full backward hooks (docs/compatibility-trials.md, session 15)."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])


def _linear(lib, weight, bias):
    layer = lib.nn.Linear(len(weight[0]), len(weight))
    with lib.no_grad():
        layer.weight.copy_(lib.tensor(weight))
        layer.bias.copy_(lib.tensor(bias))
    return layer


def _events(lib, run):
    """What ``run(lib, log)`` logs and warns, values rounded to compare across libraries."""
    log = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(lib, log)
    return log, [(w.category.__name__, str(w.message)) for w in caught]


def _values(t):
    return None if t is None else np.round(t.detach().numpy().astype(float), 6).tolist()


def test_flag_tables_follow_registration_and_removal():
    def run(lib, log):
        layer = lib.nn.Linear(2, 2)
        plain = layer.register_forward_hook(lambda *a: None)
        keyed = layer.register_forward_hook(lambda *a: None, with_kwargs=True, always_call=True)
        pre = layer.register_forward_pre_hook(lambda *a: None, with_kwargs=True)
        log.append([type(layer._forward_hooks_with_kwargs).__name__, type(layer._forward_hooks_always_called).__name__])
        log.append([list(layer._forward_hooks_with_kwargs) == [keyed.id],
                    list(layer._forward_hooks_always_called) == [keyed.id],
                    list(layer._forward_pre_hooks_with_kwargs) == [pre.id], plain.id not in layer._forward_hooks_with_kwargs])
        keyed.remove()
        pre.remove()
        log.append([len(layer._forward_hooks), len(layer._forward_hooks_with_kwargs),
                    len(layer._forward_hooks_always_called), len(layer._forward_pre_hooks_with_kwargs)])
        log.append(layer._is_full_backward_hook)

    assert _events(chainrule, run) == _events(torch, run)


def test_kwargs_hooks_rewrite_the_call_and_the_output():
    def run(lib, log):
        class Scale(lib.nn.Module):
            def forward(self, a, scale=1.0):
                return a * scale

        module = Scale()
        module.register_forward_pre_hook(lambda m, args, kwargs: (args, {**kwargs, "scale": 3.0}), with_kwargs=True)
        module.register_forward_hook(lambda m, args, kwargs, out: log.append(dict(kwargs)) or out + 1, with_kwargs=True)
        module.register_forward_hook(lambda m, args, out: log.append(_values(out)), prepend=True)
        log.append(_values(module(lib.ones(2), scale=2.0)))
        bad = Scale()
        bad.register_forward_pre_hook(lambda m, args, kwargs: args, with_kwargs=True)
        try:
            bad(lib.ones(2))
        except RuntimeError as e:
            log.append(str(e).split(", but")[0])

    assert _events(chainrule, run) == _events(torch, run)


def test_always_call_hooks_run_when_the_forward_raises():
    def run(lib, log):
        layer = lib.nn.Linear(2, 2)

        def fails(m, args):
            raise ValueError("no input for you")

        def raises_too(m, args, out):
            raise KeyError("second")

        layer.register_forward_pre_hook(fails)
        layer.register_forward_hook(lambda m, args, out: log.append(("always", out)), always_call=True)
        layer.register_forward_hook(lambda m, args, out: log.append("never"))
        layer.register_forward_hook(raises_too, always_call=True)
        try:
            layer(lib.ones(1, 2))
        except ValueError as e:
            log.append(str(e))

    theirs, ours = _events(torch, run), _events(chainrule, run)
    assert ours == theirs
    assert ours[0] == [("always", None), "no input for you"]


def test_global_module_hooks_run_first_for_every_module():
    def run(lib, log):
        from importlib import import_module

        registry = import_module(f"{lib.__name__}.nn.modules.module")
        model = lib.nn.Sequential(_linear(lib, [[1.0, 2.0]], [0.5]), lib.nn.ReLU())
        model[0].register_forward_hook(lambda m, args, out: log.append(("own", type(m).__name__)))
        handles = [
            registry.register_module_forward_pre_hook(lambda m, args: log.append(("pre", type(m).__name__))),
            registry.register_module_forward_hook(lambda m, args, out: log.append(("post", type(m).__name__, _values(out)))),
            registry.register_module_full_backward_pre_hook(lambda m, go: log.append(("bwpre", type(m).__name__))),
            registry.register_module_full_backward_hook(
                lambda m, gi, go: log.append(("bw", type(m).__name__, [_values(g) for g in gi]))),
        ]
        x = lib.tensor([[1.0, -1.0], [2.0, 1.0]], requires_grad=True)
        try:
            model(x).sum().backward()
            try:
                registry.register_module_backward_hook(lambda *a: None)
            except RuntimeError as e:
                log.append(str(e))
        finally:
            for handle in handles:
                handle.remove()
        model(x)  # nothing global runs any more
        log.append(_values(x.grad))

    assert _events(chainrule, run) == _events(torch, run)


def test_non_full_backward_hook_sees_the_last_node_and_warns():
    def run(lib, log):
        layer = _linear(lib, [[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]], [0.1, 0.2])
        layer.register_backward_hook(lambda m, gi, go: log.append(
            (len(gi), sorted(tuple(g.shape) for g in gi if g is not None), [_values(g) for g in go])))
        x = lib.ones(2, 3, requires_grad=True)
        layer(x).sum().backward()
        try:
            layer.register_full_backward_hook(lambda *a: None)
        except RuntimeError as e:
            log.append(str(e))
        single = lib.nn.ReLU()  # one node whose input is the module's input: no warning
        single.register_backward_hook(lambda m, gi, go: log.append(("relu", [_values(g) for g in gi])))
        (single(x * 1 - 1.5) * 2).sum().backward()

    theirs, ours = _events(torch, run), _events(chainrule, run)
    assert ours == theirs
    assert any(category == "FutureWarning" for category, _ in ours[1])


def test_full_backward_hooks_on_a_module_called_twice():
    def run(lib, log):
        layer = _linear(lib, [[0.5, 0.0], [0.0, 0.5]], [0.0, 0.0])
        layer.register_full_backward_pre_hook(lambda m, go: log.append(("pre", [_values(g) for g in go])))
        layer.register_full_backward_hook(lambda m, gi, go: log.append(("bw", [_values(g) for g in gi])))
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        layer(layer(x)).sum().backward()
        log.append(_values(x.grad))
        quiet = lib.nn.Linear(2, 2)
        quiet.register_full_backward_hook(lambda m, gi, go: log.append(("inputs need no grad", gi)))
        quiet(lib.ones(1, 2)).sum().backward()

    assert _events(chainrule, run) == _events(torch, run)
