"""torch.library against torch 2.13: custom_op (schema inference, calls, autograd through
register_autograd, kernels per device, aliasing and argument errors), Library/define/impl, opcheck,
and torch.ops (library namespaces, aten overloads, load_library)."""

import gc
import typing
import warnings

import numpy as np
import pytest
import torch
import torch.library

import chainrule
import chainrule.library
from tests._heap import frozen_heap

LIBS = [pytest.param(chainrule, id="chainrule"), pytest.param(torch, id="torch")]
X = np.random.default_rng(0).standard_normal((2, 3))


def _namespace(lib, name: str) -> str:
    """Each library keeps one global registry: a namespace per test and per library."""
    return f"{name}_{lib.__name__}"


def _error(call, *args, **kwargs) -> tuple[type, str]:
    try:
        call(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the type and text are what is compared
        return type(error), str(error)
    raise AssertionError("no error raised")


def _schema_functions(lib):
    Tensor = lib.Tensor

    def plain(x: Tensor, k: float, n: int = 2, w: typing.Optional[Tensor] = None, s: str = "a",  # noqa: UP045
              flag: bool = True, dt: lib.dtype = lib.float64) -> Tensor: ...

    def mutating(x: Tensor, out: Tensor) -> None: ...

    def two_outputs(x: Tensor, *, sizes: list[int], scales: typing.Optional[list[float]] = None) -> tuple[Tensor, Tensor]: ...  # noqa: UP045

    def listed(xs: list[Tensor], maybe: list[typing.Optional[Tensor]]) -> list[Tensor]: ...  # noqa: UP045

    return plain, mutating, two_outputs, listed


def test_infer_schema_writes_torchs_schemas():
    ours, theirs = _schema_functions(chainrule), _schema_functions(torch)
    mutations = [(), {"out"}, (), ()]
    for mine, reference, mutates in zip(ours, theirs, mutations):
        assert chainrule.library.infer_schema(mine, mutates_args=mutates) == \
            torch.library.infer_schema(reference, mutates_args=mutates)
    assert chainrule.library.infer_schema(ours[1], op_name="f", mutates_args="unknown") == \
        torch.library.infer_schema(theirs[1], op_name="f", mutates_args="unknown") == \
        "f(Tensor(a0!) x, Tensor(a1!) out) -> ()"


def _bad_functions(lib):
    Tensor = lib.Tensor

    def no_annotation(x): ...

    def no_return(x: Tensor): ...

    def varargs(*xs: Tensor) -> Tensor: ...

    def list_default(x: Tensor, sizes: list[int] = [1]) -> Tensor: ...  # noqa: B006

    def mutated_int(x: Tensor, n: int) -> Tensor: ...

    return [(no_annotation, ()), (no_return, ()), (varargs, ()), (list_default, ()), (mutated_int, ["n"]),
            (mutated_int, ["y"]), (mutated_int, "everything")]


def test_infer_schema_refuses_what_torch_refuses_with_its_message():
    for (mine, mutates), (reference, _) in zip(_bad_functions(chainrule), _bad_functions(torch)):
        ours = _error(chainrule.library.infer_schema, mine, mutates_args=mutates)
        theirs = _error(torch.library.infer_schema, reference, mutates_args=mutates)
        assert ours[0] is theirs[0] is ValueError
        # the messages end by printing the signature, whose annotations name each library's Tensor
        assert ours[1].split(" Got func")[0] == theirs[1].split(" Got func")[0]


def _scale_op(lib, name: str):
    @lib.library.custom_op(f"{_namespace(lib, name)}::scale", mutates_args=())
    def scale(x: lib.Tensor, k: float) -> lib.Tensor:
        return x.sin() * k

    def setup_context(ctx, inputs, output):
        x, k = inputs
        ctx.k = k
        ctx.save_for_backward(x)

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return grad * x.cos() * ctx.k, None

    scale.register_autograd(backward, setup_context=setup_context)
    return scale


@pytest.mark.parametrize("call", ["def", "packet", "overload"])
def test_custom_op_values_gradients_and_node_match_torch(call):
    results = []
    for lib in (chainrule, torch):
        scale = _scale_op(lib, f"grad_{call}")
        op = {"def": scale, "packet": getattr(lib.ops, _namespace(lib, f"grad_{call}")).scale,
              "overload": getattr(lib.ops, _namespace(lib, f"grad_{call}")).scale.default}[call]
        x = lib.tensor(X, requires_grad=True)
        y = op(x, 3.0)
        (y * y).sum().backward()
        node = type(y.grad_fn).__name__.replace(f"_{lib.__name__}", "")
        results.append((y.detach().numpy(), x.grad.numpy(), node))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
    assert results[0][2] == results[1][2] == f"GeneratedBackwardFor_grad_{call}_scale_defaultBackward"


def test_custom_op_gradient_passes_gradcheck_and_records_nothing_under_no_grad():
    scale = _scale_op(chainrule, "gradcheck")
    x = chainrule.tensor(X, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: scale(t, 1.5), (x,))
    with chainrule.no_grad():
        y = scale(x, 2.0)
    assert y.grad_fn is None and not y.requires_grad


@pytest.mark.parametrize("lib", LIBS)
def test_custom_op_without_autograd_fails_at_backward_with_torchs_message(lib):
    @lib.library.custom_op(f"{_namespace(lib, 'noauto')}::double", mutates_args=())
    def double(x: lib.Tensor) -> lib.Tensor:
        return x * 2

    y = double(lib.ones(2, requires_grad=True))
    assert y.requires_grad
    with pytest.raises(RuntimeError, match=f"^Trying to backward through {_namespace(lib, 'noauto')}.double.default "
                                           "but no autograd formula was registered. Please use register_autograd "
                                           "to add one.$"):
        y.sum().backward()


@pytest.mark.parametrize("lib", LIBS)
def test_backward_returning_a_gradient_for_a_number_is_refused(lib):
    ns = _namespace(lib, "badgrad")

    @lib.library.custom_op(f"{ns}::mul", mutates_args=())
    def mul(x: lib.Tensor, k: float) -> lib.Tensor:
        return x * k

    lib.library.register_autograd(f"{ns}::mul", lambda ctx, grad: (grad, grad))
    with pytest.raises(RuntimeError, match=f"^function GeneratedBackwardFor_{ns}_mul_defaultBackward returned a "
                                           "gradient different than None at position 2, but the corresponding "
                                           "forward input was not a Variable$"):
        mul(lib.ones(2, requires_grad=True), 2.0).sum().backward()
    lib.library.register_autograd(f"{ns}::mul", lambda ctx, grad: grad)
    with pytest.raises(RuntimeError, match=f"^function GeneratedBackwardFor_{ns}_mul_defaultBackward returned an "
                                           "incorrect number of gradients"):
        mul(lib.ones(2, requires_grad=True), 2.0).sum().backward()


def test_several_outputs_and_a_mutated_argument():
    results = []
    for lib in (chainrule, torch):
        ns = _namespace(lib, "multi")

        @lib.library.custom_op(f"{ns}::split", mutates_args=())
        def split(x: lib.Tensor) -> tuple[lib.Tensor, lib.Tensor]:
            return x * 2, x * 3

        split.register_autograd(lambda ctx, first, second: first * 2 + second * 3)

        @lib.library.custom_op(f"{ns}::add_into", mutates_args={"out"})
        def add_into(x: lib.Tensor, out: lib.Tensor) -> None:
            out.add_(x)

        x = lib.tensor(X, requires_grad=True)
        a, b = split(x)
        (a * b).sum().backward()
        out = lib.zeros(2, 3, dtype=lib.float64)
        assert add_into(x.detach(), out) is None
        results.append((x.grad.numpy(), out.numpy(), str(add_into._opoverload._schema)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1])
    assert results[0][2].replace("chainrule", "torch") == results[1][2]


@pytest.mark.parametrize("lib", LIBS)
def test_an_output_that_is_an_input_or_its_view_is_refused(lib):
    ns = _namespace(lib, "alias")

    @lib.library.custom_op(f"{ns}::same", mutates_args=())
    def same(x: lib.Tensor) -> lib.Tensor:
        return x

    @lib.library.custom_op(f"{ns}::flat", mutates_args=())
    def flat(x: lib.Tensor) -> lib.Tensor:
        return x.view(-1)

    for op, name in ((same, "same"), (flat, "flat")):
        kind, text = _error(lambda op=op: op(lib.ones(2, 2)))
        assert kind is RuntimeError and text.startswith(f"{name} (with implementation in <module ")
        assert "The output of this custom operator (1) must not also be an input to this custom operator and (2) " \
               "may not alias any inputs to this custom operator or other returns." in text


def test_arguments_are_bound_with_the_dispatchers_errors():
    for args, kwargs in (((), {}), ((1, 2.0, 3), {}), ((1, "a"), {}), ((1,), {"k": 2.0, "extra": 1})):
        messages = []
        for lib in (chainrule, torch):
            scale = _scale_op(lib, "bind")
            full = tuple(lib.ones(2) if a == 1 else a for a in args)
            kind, text = _error(scale, *full, **kwargs)
            messages.append((kind, text.split("\n")[0].replace(_namespace(lib, "bind"), "ns")))
        assert messages[0] == messages[1]


@pytest.mark.parametrize("lib", LIBS)
def test_kernels_per_device(lib):
    ns = _namespace(lib, "devices")

    @lib.library.custom_op(f"{ns}::plus", mutates_args=(), device_types="cpu")
    def plus(x: lib.Tensor) -> lib.Tensor:
        return x + 1

    @plus.register_kernel("cpu")
    def _(x):
        return x + 2

    assert plus(lib.zeros(2)).tolist() == [2.0, 2.0]

    @lib.library.custom_op(f"{ns}::gpu_only", mutates_args=(), device_types="cuda")
    def gpu_only(x: lib.Tensor) -> lib.Tensor:
        return x + 1

    with pytest.raises(NotImplementedError, match=f"^Could not run '{ns}::gpu_only' with arguments from the 'CPU' "
                                                  "backend. This could be because the operator doesn't exist for "
                                                  "this backend"):
        gpu_only(lib.zeros(2))
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda, .* device type at start of device string: tpu"):
        plus.register_kernel("tpu")(lambda x: x)


@pytest.mark.parametrize("lib", LIBS)
def test_custom_op_names_and_arguments(lib):
    def f(x: lib.Tensor) -> lib.Tensor:
        return x.clone()

    assert _error(lambda: lib.library.custom_op("nonamespace", f, mutates_args=())) == \
        (ValueError, "not enough values to unpack (expected 2, got 1)")
    assert _error(lambda: lib.library.custom_op("a::b::c", f, mutates_args=()))[0] is ValueError
    with pytest.raises(TypeError, match=r"custom_op\(\) missing 1 required keyword-only argument: 'mutates_args'"):
        lib.library.custom_op("x::f")(f)
    op = lib.library.custom_op(f"{_namespace(lib, 'named')}::f", f, mutates_args=(), schema="(Tensor y) -> Tensor")
    assert repr(op) == f"<CustomOpDef({_namespace(lib, 'named')}::f)>"
    with pytest.raises(ValueError, match=r"^Attempted to create a custom op with `mutates_args=\(\)` and "
                                         r"`schema=\(Tensor\(a!\) x\) -> Tensor. The schema suggests that the op "
                                         r"mutates \{'x'\}which is different"):
        lib.library.custom_op("x::g", f, mutates_args=(), schema="(Tensor(a!) x) -> Tensor")


@pytest.mark.parametrize("lib", LIBS)
def test_library_define_and_impl(lib):
    ns = _namespace(lib, "legacy")
    library = lib.library.Library(ns, "DEF")
    assert repr(library) == f"Library(kind=DEF, ns={ns}, dispatch_key=)>"
    assert library.define("triple(Tensor x, int n=3) -> Tensor") == "triple"
    with pytest.raises(RuntimeError, match=rf"^Tried to register an operator \({ns}::triple\(Tensor x, int n=3\) -> "
                                           r"Tensor\) with the same name and overload name multiple times."):
        library.define("triple(Tensor x, int n=3) -> Tensor")
    with pytest.raises(RuntimeError, match=f"^Only a single TORCH_LIBRARY can be used to register the namespace {ns};"):
        lib.library.Library(ns, "DEF")
    with pytest.raises(ValueError, match="^Unsupported kind: BAD$"):
        lib.library.Library(ns, "BAD")
    with pytest.raises(RuntimeError, match="could not parse dispatch key: Bogus"):
        library.impl("triple", lambda x, n: x * n, "Bogus")
    seen = []
    library.impl("triple", lambda x, *rest: seen.append(rest) or x * (rest[0] if rest else 3), "CPU")
    packet = getattr(lib.ops, ns).triple
    assert packet(lib.ones(2)).tolist() == [3.0, 3.0] and packet.default(lib.ones(2), 2).tolist() == [2.0, 2.0]
    # the dispatcher leaves out trailing arguments equal to their defaults
    assert packet(lib.ones(2), 3).tolist() == [3.0, 3.0] and seen == [(), (2,), ()]
    assert str(packet.default._schema) == f"{ns}::triple(Tensor x, int n=3) -> Tensor"
    assert packet.overloads() == ["default"] and str(packet) == f"{ns}.triple"

    library.define("tangent(Tensor x) -> Tensor")
    library.impl("tangent", lambda x: x.tan(), "CompositeImplicitAutograd")
    assert type(getattr(lib.ops, ns).tangent(lib.ones(2, requires_grad=True)).grad_fn).__name__ == "TanBackward0"

    lib.library.define(f"{ns}_free::halve", "(Tensor x) -> Tensor")
    lib.library.impl(f"{ns}_free::halve", "cpu", lambda x: x / 2)
    assert getattr(lib.ops, f"{ns}_free").halve(lib.ones(2)).tolist() == [0.5, 0.5]


def test_a_cpu_kernel_without_autograd_warns_and_its_ops_still_differentiate():
    grads = []
    for lib in (chainrule, torch):
        library = lib.library.Library(_namespace(lib, "noautograd"), "DEF")
        library.define("sine(Tensor x) -> Tensor")
        library.impl("sine", lambda x: x.sin(), "CPU")
        x = lib.tensor(X, requires_grad=True)
        with pytest.warns(UserWarning, match="an autograd kernel was not registered to the Autograd key"):
            getattr(lib.ops, _namespace(lib, "noautograd")).sine(x).sum().backward()  # torch warns at backward
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def _opcheck_ops(lib, ns: str):
    @lib.library.custom_op(f"{ns}::good", mutates_args=())
    def good(x: lib.Tensor, k: float) -> lib.Tensor:
        return x * k

    good.register_fake(lambda x, k: lib.empty_like(x))
    good.register_autograd(lambda ctx, grad: (grad * ctx.k, None),
                           setup_context=lambda ctx, inputs, output: setattr(ctx, "k", inputs[1]))

    @lib.library.custom_op(f"{ns}::nofake", mutates_args=())
    def nofake(x: lib.Tensor) -> lib.Tensor:
        return x * 2

    @lib.library.custom_op(f"{ns}::badfake", mutates_args=())
    def badfake(x: lib.Tensor) -> lib.Tensor:
        return x * 2

    badfake.register_fake(lambda x: x.new_empty(5))

    @lib.library.custom_op(f"{ns}::sneaky", mutates_args=())
    def sneaky(x: lib.Tensor) -> lib.Tensor:
        x.add_(1)
        return x.clone()

    sneaky.register_fake(lambda x: lib.empty_like(x))
    return good, nofake, badfake, sneaky


def test_opcheck_reports_as_torch():
    ours = _opcheck_ops(chainrule, "opcheck_chainrule")
    theirs = _opcheck_ops(torch, "opcheck_torch")
    for lib, (good, *_) in ((chainrule, ours), (torch, theirs)):
        x = lib.randn(3, requires_grad=True)
        result = lib.library.opcheck(good, (x, 2.0))
        assert {k: v for k, v in result.items() if "aot" not in k} == {
            "test_schema": "SUCCESS", "test_autograd_registration": "SUCCESS", "test_faketensor": "SUCCESS"}
    messages = []
    for lib, (good, nofake, badfake, sneaky) in ((chainrule, ours), (torch, theirs)):
        opcheck = lib.library.opcheck
        found = [_error(opcheck, nofake, (lib.randn(3),))[1], _error(opcheck, badfake, (lib.randn(3),))[1],
                 _error(opcheck, sneaky, (lib.randn(3),), test_utils="test_schema")[1],
                 _error(opcheck, good, (lib.randn(3), 2.0), test_utils="bogus"),
                 _error(opcheck, lib.sin, (lib.randn(3),))[1].split(", got")[0]]
        messages.append([text.replace("chainrule", "torch") if isinstance(text, str) else text for text in found])
    assert messages[0][0] == messages[1][0]
    assert messages[0][1].startswith("opcheck(op, ...): test_faketensor failed with When comparing the output of "
                                     "opcheck_torch.badfake.default on FakeTensor and concrete Tensors, found "
                                     "mismatched tensor metadata: Shapes torch.Size([3]) and torch.Size([5]) are not "
                                     "equal!")
    assert messages[0][1] == messages[1][1]
    assert messages[0][2:] == messages[1][2:]


def test_opcheck_compares_the_registered_backward_with_finite_differences():
    @chainrule.library.custom_op("opcheck_wrong::double", mutates_args=())
    def double(x: chainrule.Tensor) -> chainrule.Tensor:
        return x * 2

    double.register_fake(lambda x: chainrule.empty_like(x))
    double.register_autograd(lambda ctx, grad: grad * 3)  # wrong: d(2x)/dx is 2
    with pytest.raises(chainrule.library.OpCheckError, match="test_autograd_registration failed with Jacobian mismatch"):
        chainrule.library.opcheck(double, (chainrule.randn(3, requires_grad=True),))
    result = chainrule.library.opcheck(double, (chainrule.randn(3, requires_grad=True),), raise_exception=False)
    assert isinstance(result["test_autograd_registration"], chainrule.autograd.GradcheckError)
    assert result["test_aot_dispatch_dynamic"] == "SKIPPED"


@pytest.mark.parametrize("lib", LIBS)
def test_get_ctx_and_fallthrough_kernel(lib):
    assert lib.library.get_ctx() is None
    with pytest.raises(NotImplementedError, match=r"^fallthrough_kernel\(\) should never be called.$"):
        lib.library.fallthrough_kernel()


ATEN_CALLS = [
    ("add", "Tensor", lambda lib: (lib.tensor(X), lib.tensor(X)), {"alpha": 2}),
    ("mul", "Scalar", lambda lib: (lib.tensor(X), 3.0), {}),
    ("mm", "default", lambda lib: (lib.tensor(X), lib.tensor(X.T.copy())), {}),
    ("relu", "default", lambda lib: (lib.tensor(X),), {}),
    ("sum", "dim_IntList", lambda lib: (lib.tensor(X), [1]), {"keepdim": True}),
    ("mean", "dim", lambda lib: (lib.tensor(X), [0]), {}),
    ("_softmax", "default", lambda lib: (lib.tensor(X), 1, False), {}),
    ("_log_softmax", "default", lambda lib: (lib.tensor(X), 0, False), {}),
    ("embedding", "default", lambda lib: (lib.tensor(X), lib.tensor([1, 0, 1])), {}),
    ("view", "default", lambda lib: (lib.tensor(X), [3, 2]), {}),
    ("transpose", "int", lambda lib: (lib.tensor(X), 0, 1), {}),
    ("cat", "default", lambda lib: ([lib.tensor(X), lib.tensor(X)], 1), {}),
    ("layer_norm", "default", lambda lib: (lib.tensor(X), [3], None, None, 1e-5, True), {}),
    ("max", "dim", lambda lib: (lib.tensor(X), 1), {}),
    ("where", "self", lambda lib: (lib.tensor(X) > 0, lib.tensor(X), lib.zeros(2, 3, dtype=lib.float64)), {}),
    ("var", "correction", lambda lib: (lib.tensor(X), [1]), {"correction": 0}),
    ("pow", "Tensor_Scalar", lambda lib: (lib.tensor(X), 2), {}),
]


@pytest.mark.parametrize("name, overload, make, kwargs", ATEN_CALLS, ids=[c[0] for c in ATEN_CALLS])
def test_aten_overloads_compute_as_torchs(name, overload, make, kwargs):
    ours = getattr(getattr(chainrule.ops.aten, name), overload)(*make(chainrule), **kwargs)
    theirs = getattr(getattr(torch.ops.aten, name), overload)(*make(torch), **kwargs)
    for mine, reference in zip(ours if isinstance(ours, tuple) else (ours,),
                               theirs if isinstance(theirs, tuple) else (theirs,)):
        np.testing.assert_allclose(mine.numpy(), reference.numpy(), rtol=1e-12)
    assert str(getattr(getattr(chainrule.ops.aten, name), overload)) == f"aten.{name}.{overload}"


def test_every_aten_overload_chainrule_answers_is_one_of_torchs():
    from chainrule.ops import namespaces

    for name in [*namespaces._ATEN_SAME, *namespaces._ATEN_ADAPTED]:
        ours = getattr(chainrule.ops.aten, name).overloads()
        assert ours and set(ours) <= set(getattr(torch.ops.aten, name).overloads()), name


@pytest.mark.parametrize("lib", LIBS)
def test_unknown_ops_overloads_and_libraries_raise_torchs_errors(lib):
    with pytest.raises(AttributeError, match="^'_OpNamespace' 'aten' object has no attribute 'not_an_op'$"):
        lib.ops.aten.not_an_op  # noqa: B018
    with pytest.raises(AttributeError, match="^The underlying op of 'aten.add' has no overload name 'nope'$"):
        lib.ops.aten.add.nope  # noqa: B018
    with pytest.raises(AttributeError, match="^'_OpNamespace' 'nothing_defined' object has no attribute 'foo'$"):
        lib.ops.nothing_defined.foo  # noqa: B018
    with pytest.raises(OSError, match="^Could not load this library: /no/such/library.so$"):
        lib.ops.load_library("/no/such/library.so")


def test_the_op_package_still_hands_out_its_modules():
    from chainrule.ops import namespaces, shape

    assert shape.__name__ == "chainrule.ops.shape" and chainrule.ops.shape is shape
    assert isinstance(chainrule.ops.aten, namespaces.OpNamespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert chainrule.ops.load_library is namespaces.load_library


@pytest.mark.parametrize("lib", LIBS)
def test_a_library_takes_its_definitions_and_kernels_with_it(lib):
    ns = _namespace(lib, "lifetime")
    with frozen_heap():  # (the collection below walks only what the test made)
        library = lib.library.Library(ns, "DEF")
        library.define("inc(Tensor x) -> Tensor")
        library.impl("inc", lambda x: x + 1, "CPU")
        assert getattr(lib.ops, ns).inc(lib.zeros(1)).tolist() == [1.0]
        del library
        gc.collect()
    with pytest.raises(AttributeError, match=f"^'_OpNamespace' '{ns}' object has no attribute 'inc'$"):
        getattr(lib.ops, ns).inc  # noqa: B018
    again = lib.library.Library(ns, "DEF")  # the namespace is free again
    again.define("inc(Tensor x) -> Tensor")
    with pytest.raises(NotImplementedError, match=f"^Could not run '{ns}::inc' with arguments from the 'CPU' backend"):
        getattr(lib.ops, ns).inc(lib.zeros(1))


@pytest.mark.parametrize("lib", LIBS)
def test_a_custom_ops_kernel_records_nothing_even_with_a_parameter_inside(lib):
    weight = lib.ones(2, requires_grad=True)

    @lib.library.custom_op(f"{_namespace(lib, 'closure')}::scaled", mutates_args=())
    def scaled(x: lib.Tensor) -> lib.Tensor:
        return x * weight

    out = scaled(lib.ones(2))
    assert out.grad_fn is None and not out.requires_grad


def test_a_kernel_that_wants_the_dispatch_key_set_is_refused_with_a_reason():
    library = chainrule.library.Library("keyset_chainrule", "FRAGMENT")
    library.define("f(Tensor x) -> Tensor")
    with pytest.raises(NotImplementedError, match=r"with_keyset=True\): chainrule has no dispatch key sets"):
        library.impl("f", lambda keyset, x: x, "CPU", with_keyset=True)
