"""What scientific and image libraries (e3nn, piq, geomloss, POT, ...) reached for, run unedited on
torch 2.13 and on chainrule (docs/compatibility-trials.md, session 20): each case here is our own
small reproduction, compared with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

A = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)
B = np.array([[1.0, 0.5], [-2.0, 0.25], [0.75, 3.0]], dtype=np.float32)


def test_torch_functional_names_the_top_level_objects():
    # opt_einsum_fx keys a set on {torch.functional.einsum, torch.einsum}
    assert sorted(chainrule.functional.__all__) == sorted(torch.functional.__all__)
    for name in torch.functional.__all__:
        assert getattr(chainrule.functional, name) is getattr(chainrule, name), name


def traced_calls(lib, fn):
    graph = lib.fx.symbolic_trace(fn).graph
    return [(str(n.target).rsplit(" at ", 1)[0], [type(a).__name__ for a in n.args])
            for n in graph.nodes if n.op == "call_function" and n.target in (lib.einsum, lib._assert)]


@pytest.mark.parametrize("form", ["varargs", "tuple", "list"])
def test_fx_records_einsum_with_its_operands_unpacked(form):
    def fn_of(lib):
        def fn(a, b):
            operands = {"varargs": None, "tuple": (a, b), "list": [a, b]}[form]
            return lib.einsum("ij,jk->ik", a, b) if operands is None else lib.einsum("ij,jk->ik", operands)
        return fn

    ours, theirs = traced_calls(chainrule, fn_of(chainrule)), traced_calls(torch, fn_of(torch))
    assert [args for _, args in ours] == [args for _, args in theirs] == [["str", "Node", "Node"]]
    module = chainrule.fx.symbolic_trace(fn_of(chainrule))
    np.testing.assert_allclose(module(chainrule.tensor(A), chainrule.tensor(B)).numpy(), A @ B, rtol=1e-6)


def test_a_mode_sees_einsums_list_of_operands_as_torchs_does():
    def seen_by_mode(lib):
        seen = []

        class Recorder(lib.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if getattr(func, "__name__", "") == "einsum":
                    seen.append([type(a).__name__ for a in args])
                return func(*args, **(kwargs or {}))

        with Recorder():
            out = lib.einsum("ij,jk->ik", [lib.tensor(A), lib.tensor(B)])
            lib.einsum(lib.tensor(A), [0, 1], lib.tensor(B), [1, 2])
        return seen, out.numpy()

    for lib in (chainrule, torch):
        assert any(f is lib.einsum for f in lib.overrides.get_overridable_functions()[lib])
        assert lib.einsum in lib.overrides.get_testing_overrides()
    (ours, value), (theirs, expected) = seen_by_mode(chainrule), seen_by_mode(torch)
    assert ours == theirs == [["str", "list"], ["str", "Tensor", "Tensor"]]
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_fx_records_assert_on_a_traced_condition():
    def fn_of(lib):
        def fn(x):
            lib._assert(x.shape[-1] == 3, "last dimension must be 3")
            return x * 2
        return fn

    ours, theirs = traced_calls(chainrule, fn_of(chainrule)), traced_calls(torch, fn_of(torch))
    assert [args for _, args in ours] == [args for _, args in theirs] == [["Node", "str"]]
    module = chainrule.fx.symbolic_trace(fn_of(chainrule))
    np.testing.assert_array_equal(module(chainrule.tensor(A)).numpy(), A * 2)
    with pytest.raises(AssertionError, match="last dimension must be 3"):
        module(chainrule.tensor(B))
    with pytest.raises(AssertionError, match="last dimension must be 3"):
        fn_of(torch)(torch.tensor(B))


def warnings_of(calls):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in calls:
            call()
    return [str(w.message).split(" (Triggered internally")[0] for w in caught if w.category is UserWarning]


def torchs_warnings(call):
    """torch's messages for ``call``: its warn-once memory is the process's, so read with warn_always."""
    torch.set_warn_always(True)
    try:
        return warnings_of([call])
    finally:
        torch.set_warn_always(False)


@pytest.mark.parametrize("make", [lambda lib: lib.ones(3), lambda lib: lib.ones(2, 3, 4), lambda lib: lib.tensor(1.0)],
                         ids=["1-D", "3-D", "0-D"])
def test_tensor_T_off_matrices_warns_once_per_process_as_torchs(make, monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    # POT's 1-D quantile code reads `.T` of a vector: torch warns once (TORCH_WARN_ONCE), and on
    # every read under set_warn_always(True)
    expected = torchs_warnings(lambda: make(torch).T)
    assert len(expected) == 1
    read_twice = [lambda: make(chainrule).T, lambda: make(chainrule).T]
    assert warnings_of(read_twice) == expected
    assert warnings_of(read_twice) == []
    chainrule.set_warn_always(True)
    try:
        assert warnings_of(read_twice) == expected * 2
    finally:
        chainrule.set_warn_always(False)
    assert warnings_of([lambda: chainrule.ones(2, 3).T]) == []
    values = []
    warnings_of([lambda: values.extend([make(chainrule).T.numpy(), make(torch).T.numpy()])])
    np.testing.assert_array_equal(*values)


def test_deprecated_linalg_names_warn_once_from_two_call_sites(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    # nflows' LU transform calls triangular_solve on two lines: torch warns once, Python's default
    # filter would have warned once per line
    def calls(lib):
        A, b = lib.eye(3) * 2, lib.ones(3, 1)
        return [lambda: lib.triangular_solve(b, A), lambda: lib.triangular_solve(b, A, upper=False),
                lambda: lib.cholesky(A), lambda: lib.cholesky(A)]

    expected = [m for call in calls(torch)[::2] for m in torchs_warnings(call)]
    assert len(expected) == 2
    assert warnings_of(calls(chainrule)) == expected


def test_jit_trace_module_returns_the_module_after_torchs_checks():
    # e3nn.util.jit.trace(module) calls torch.jit.trace_module(mod, {"forward": inputs})
    layer = chainrule.nn.Linear(2, 3)
    x = chainrule.tensor(A[:, :2])
    with pytest.warns(DeprecationWarning, match=r"`torch.jit.trace_method` is deprecated"):
        traced = chainrule.jit.trace_module(layer, {"forward": x})
    assert traced is layer
    for lib in (chainrule, torch):
        with pytest.warns(DeprecationWarning):
            with pytest.raises(AttributeError, match="expected torch.nn.Module as the first argument"):
                lib.jit.trace_module(lambda v: v, {"forward": lib.ones(1)})
            with pytest.raises(AttributeError, match=r"expected a dictionary of \(method_name, input\) pairs"):
                lib.jit.trace_module(lib.nn.Linear(2, 3), lib.ones(1, 2))


@pytest.mark.parametrize("name", ["script", "trace"])
def test_jit_entry_points_say_they_are_deprecated_as_torchs(name):
    def messages(lib):
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            entry = getattr(lib.jit, name)
            entry(lib.nn.Linear(2, 2), lib.ones(1, 2)) if name == "trace" else entry(lib.nn.Linear(2, 2))
        return [str(w.message) for w in caught if w.category is DeprecationWarning]

    assert messages(chainrule)[0] == messages(torch)[0] == (
        f"`torch.jit.{name}` is deprecated. Please switch to `torch.compile` or `torch.export`.")


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_type_of_the_tensor_class_casts_to_the_default_dtype(default):
    # nflows' LeakyReLU transform: `mask = (inputs < 0).type(torch.Tensor)`
    values = np.array([1, -2, 0], dtype=np.int64)
    results = {}
    for lib in (chainrule, torch):
        saved = lib.get_default_dtype()
        lib.set_default_dtype(getattr(lib, default))
        try:
            x = lib.tensor(values)
            cast, mask, named = x.type(lib.Tensor), (x < 0).type(lib.Tensor), x.type("torch.Tensor")
            doubled = x.double()
            kept = doubled.type(lib.Tensor) is doubled
        finally:
            lib.set_default_dtype(saved)
        results[lib] = [(str(t.dtype).split(".")[-1], t.tolist()) for t in (cast, mask, named)]
        assert kept == (default == "float64")  # no cast: the tensor itself, as torch's
        with pytest.raises(ValueError, match=r"^invalid type: 'Parameter'$"):
            x.type(lib.nn.Parameter)
    assert results[chainrule] == results[torch]


def conv_message(lib, op, input_shape, weight_shape, **kwargs):
    try:
        getattr(lib.nn.functional, op)(lib.ones(*input_shape), lib.ones(*weight_shape), **kwargs)
    except RuntimeError as error:
        return str(error)
    raise AssertionError(f"{lib.__name__}.{op} accepted a weight of size {weight_shape}")


@pytest.mark.parametrize("op,input_shape,weight_shape,kwargs", [
    ("conv2d", (1, 1, 5, 5), (2, 1, 3), {}),                   # the stride, read at the weight's rank
    ("conv2d", (1, 1, 5, 5), (2, 1, 3, 3, 3), {}),
    ("conv1d", (1, 1, 5), (2, 1, 3, 3), {}),                    # the rank, "weight [2, 1, 3, 3]"
    ("conv2d", (1, 1, 5, 5), (2, 1), {}),
    ("conv2d", (1, 1, 5, 5), (2, 1, 3, 3), {"padding": (1, 1, 1), "dilation": (1, 1, 1)}),
    ("conv2d", (1, 2, 5, 5), (3, 1, 3, 3), {"groups": 2}),
    ("conv1d", (1, 1, 5), (2, 1, 0), {}),
    ("conv3d", (1, 1, 5, 5, 5), (2, 1, 0, 3, 3), {}),
    ("conv_transpose2d", (1, 1, 5, 5), (1, 2, 3), {}),
    ("conv_transpose1d", (1, 1, 5), (1, 2, 3, 3), {}),
    ("conv_transpose2d", (1, 1, 5, 5), (1, 2), {}),
    ("conv_transpose1d", (1, 1, 5), (1, 2, 3), {"output_padding": 2}),
    ("conv_transpose3d", (1, 1, 5, 5, 5), (1, 2, 3, 3, 3), {"output_padding": 2}),
    ("conv_transpose2d", (1, 1, 5, 5), (0, 2, 3, 3), {}),
    ("conv_transpose1d", (1, 2, 5), (2, 0, 3), {}),
    ("conv_transpose3d", (1, 2, 5, 5, 5), (2, 0, 3, 3, 3), {}),
    ("conv_transpose2d", (1, 2, 5, 5), (2, 1, 0, 3), {"output_padding": 2}),
    ("conv_transpose2d", (1, 1, 5, 5), (1, 2, 3, 3), {"groups": 2}),
    ("conv_transpose2d", (1, 3, 5, 5), (3, 2, 3, 3), {"groups": 2}),
])
def test_conv_argument_checks_read_as_torchs(op, input_shape, weight_shape, kwargs):
    assert conv_message(chainrule, op, input_shape, weight_shape, **kwargs) == \
        conv_message(torch, op, input_shape, weight_shape, **kwargs)


def error_text(call):
    try:
        call()
    except (TypeError, ValueError, RuntimeError) as error:
        return f"{type(error).__name__}: {error}"
    raise AssertionError("no error")


@pytest.mark.parametrize("case", [
    lambda lib: lib.Size([1]) + "a",
    lambda lib: lib.optim.SGD(lib.ones(1), lr=0.1),
    lambda lib: setattr(lib.nn.Linear(1, 1), "weight", lib.ones(1)),
    lambda lib: lib.nn.Linear(1, 1).register_parameter("extra", lib.ones(1)),
    lambda lib: lib.nn.Linear(1, 1).register_buffer("extra", lib.Size([1])),
    lambda lib: lib.nn.Linear(1, 1).add_module("extra", lib.ones(1)),
    lambda lib: lib.nn.Sequential() + lib.nn.Linear(1, 1),
    lambda lib: lib.nn.functional.embedding_bag(lib.tensor([[0, 1]]), lib.ones(3, 2), lib.tensor([0])),
    lambda lib: lib.func.grad_and_value(lambda x: x.shape)(lib.ones(2)),
])
def test_messages_name_the_types_as_torch_does(case):
    # torch's messages print torch.typename / repr(type): 'torch.FloatTensor', <class 'torch.Size'>,
    # never the module chainrule defines a class in
    assert error_text(lambda: case(chainrule)) == error_text(lambda: case(torch))


def test_typename_and_a_state_dicts_wrong_value_name_torchs_types():
    for make in (lambda lib: lib.Size([1]), lambda lib: lib.device("cpu"), lambda lib: lib.float32,
                 lambda lib: lib.Generator(), lambda lib: lib.Tensor, lambda lib: lib.nn.Parameter,
                 lambda lib: lib.nn.Linear(1, 1)):
        assert chainrule.typename(make(chainrule)) == torch.typename(make(torch))

    def load(lib):
        return lib.nn.Linear(1, 1).load_state_dict({"weight": lib.Size([1, 1]), "bias": lib.ones(1)})
    assert error_text(lambda: load(chainrule)) == error_text(lambda: load(torch))
