"""What the trial of torch's custom_op_db (tools/torch_custom_op_trial.py) found, each checked against
torch 2.13 on operators of our own: register_vmap rules run under vmap, fake kernels serve meta
tensors, Tensor[] arguments and outputs differentiate, keyword-only arguments reach setup_context
apart, NumPy integers bind to int arguments, and torch's messages for bad names and arguments."""

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

LIBS = [pytest.param(chainrule, id="chainrule"), pytest.param(torch, id="torch")]


def _namespace(lib, name: str) -> str:
    """Each library keeps one global registry: a namespace per test and per library."""
    return f"dbfix_{name}_{lib.__name__}"


def _error(call, *args, **kwargs) -> tuple[type, str]:
    try:
        call(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the type and text are what is compared
        return type(error), str(error)
    raise AssertionError("no error raised")


def _in_both(build):
    """build(lib) run on chainrule and torch; the pair of its results."""
    return build(chainrule), build(torch)


# ---- register_vmap
def _scaled_by_rule(lib, name):
    """An op whose NumPy kernel keeps float64, while its vmap rule computes in torch ops (float32
    for an integer input): the result's dtype says which of the two ran."""
    Tensor = lib.Tensor
    seen = {}

    @lib.library.custom_op(f"{_namespace(lib, name)}::halve", mutates_args=())
    def halve(x: Tensor) -> Tensor:
        return lib.from_numpy(x.numpy() * 0.5)

    @halve.register_vmap
    def _(info, in_dims, x):
        seen["batch_size"], seen["in_dims"] = info.batch_size, in_dims
        return x.movedim(in_dims[0], 0) * 0.5, 0

    return halve, seen


def test_vmap_runs_the_registered_rule_once_for_the_batch_as_torch():
    results = []
    for lib in (chainrule, torch):
        halve, seen = _scaled_by_rule(lib, "rule")
        batch = lib.arange(6).reshape(2, 3)
        out = lib.func.vmap(halve, in_dims=1)(batch)
        results.append((out.numpy(), str(out.dtype).rpartition(".")[2], dict(seen)))
    (ours, our_dtype, our_seen), (theirs, their_dtype, their_seen) = results
    np.testing.assert_array_equal(ours, theirs)
    assert our_dtype == their_dtype == "float32"
    assert our_seen == their_seen == {"batch_size": 3, "in_dims": (1,)}


def test_vmap_returns_the_rules_output_with_its_batch_dim_moved_as_torch():
    results = []
    for lib in (chainrule, torch):
        @lib.library.custom_op(f"{_namespace(lib, 'view')}::outer", mutates_args=())
        def outer(x: lib.Tensor, y: lib.Tensor) -> lib.Tensor:
            return x[:, None] * y[None, :]

        @outer.register_vmap
        def _(info, in_dims, x, y):
            # the batch dim ends up last in the product: a movedim view is the rule's output
            product = x.movedim(in_dims[0], -1)[:, None] * y.movedim(in_dims[1], -1)[None, :]
            return product.movedim(-1, 0), 0

        x, y = lib.arange(6.0).reshape(2, 3), lib.arange(8.0).reshape(2, 4)
        out = lib.func.vmap(outer, out_dims=1)(x, y)
        results.append((out.numpy(), tuple(out.shape), out.stride()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1:] == results[1][1:] == ((3, 2, 4), (4, 12, 1))


def test_vmap_of_an_op_whose_rule_refuses_raises_the_rules_error_as_torch():
    def build(lib):
        @lib.library.custom_op(f"{_namespace(lib, 'refuse')}::positive", mutates_args=())
        def positive(x: lib.Tensor) -> lib.Tensor:
            return x[x > 0].clone()

        @positive.register_vmap
        def _(info, in_dims, x):
            raise NotImplementedError("data-dependent: no batching")

        return _error(lib.func.vmap(positive), lib.ones(2, 3))

    ours, theirs = _in_both(build)
    assert ours == theirs == (NotImplementedError, "data-dependent: no batching")


def test_vmap_rule_gets_none_for_unmapped_inputs_and_its_gradient_flows():
    grads = []
    for lib in (chainrule, torch):
        @lib.library.custom_op(f"{_namespace(lib, 'grad')}::mul", mutates_args=())
        def mul(x: lib.Tensor, y: lib.Tensor) -> lib.Tensor:
            return x * y

        mul.register_autograd(lambda ctx, g: (g * ctx.y, g * ctx.x),
                              setup_context=lambda ctx, inputs, output: ctx.__dict__.update(x=inputs[0], y=inputs[1]))

        @mul.register_vmap
        def _(info, in_dims, x, y):
            assert in_dims == (0, None)
            return x * y.unsqueeze(0), 0

        x = lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
        y = lib.tensor([10.0, 20.0])
        lib.func.vmap(mul, in_dims=(0, None))(x, y).pow(2).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1])


# ---- fake kernels on meta tensors
@pytest.mark.parametrize("lib", LIBS)
def test_custom_op_on_meta_tensors_runs_its_fake_kernel(lib):
    @lib.library.custom_op(f"{_namespace(lib, 'meta')}::rows", mutates_args=())
    def rows(x: lib.Tensor) -> tuple[lib.Tensor, lib.Tensor]:
        return lib.from_numpy(x.numpy().sum(1)), lib.from_numpy(np.argsort(x.numpy(), 1))

    @rows.register_fake
    def _(x):
        return x.new_empty(x.shape[:1]), lib.empty_like(x, dtype=lib.long)

    total, order = rows(lib.empty(4, 5, device="meta"))
    assert (total.device.type, tuple(total.shape), total.dtype) == ("meta", (4,), lib.float32)
    assert (order.device.type, tuple(order.shape), order.dtype) == ("meta", (4, 5), lib.int64)


def test_data_dependent_fake_kernel_on_meta_raises_torchs_error():
    def build(lib):
        @lib.library.custom_op(f"{_namespace(lib, 'dyn')}::nonzero", mutates_args=())
        def nonzero(x: lib.Tensor) -> lib.Tensor:
            return lib.from_numpy(np.stack(np.nonzero(x.numpy()), 1))

        @nonzero.register_fake
        def _(x):
            size = lib.library.get_ctx().new_dynamic_size()
            return x.new_empty([size, x.dim()], dtype=lib.long)

        kind, message = _error(nonzero, lib.ones(3, device="meta"))
        # the message names where each library's operator was defined: this file, another line
        assert re.match(rf"{_namespace(lib, 'dyn')}::nonzero \({re.escape(__file__)}:\d+\): ", message)
        return kind, message.split("): ", 1)[1]

    ours, theirs = _in_both(build)
    assert ours == theirs
    assert ours[0] is RuntimeError and ours[1].startswith("You're trying to run this operator with meta Tensors")


@pytest.mark.parametrize("lib", LIBS)
def test_library_op_with_only_a_fake_kernel_serves_meta_and_refuses_cpu(lib):
    library = lib.library.Library(_namespace(lib, "source"), "FRAGMENT")
    library.define("twice(Tensor x) -> Tensor")
    lib.library.register_fake(f"{_namespace(lib, 'source')}::twice", lambda x: x.clone(), lib=library)
    op = getattr(lib.ops, _namespace(lib, "source")).twice
    assert tuple(op(lib.empty(2, 3, device="meta")).shape) == (2, 3)
    kind, message = _error(op, lib.ones(2))
    assert kind is NotImplementedError
    assert message.startswith(f"Could not run '{_namespace(lib, 'source')}::twice' with arguments from the 'CPU' "
                              "backend. This could be because the operator doesn't exist for this backend, or was "
                              "omitted during the selective/custom build process (if using custom build). If you are "
                              "a Facebook employee using PyTorch on mobile, please visit https://fburl.com/ptmfixes "
                              "for possible resolutions.")
    library._destroy()


def test_torch_custom_op_impl_get_ctx_is_none_outside_a_fake_kernel():
    assert chainrule._custom_op.impl.get_ctx() is None is torch._custom_op.impl.get_ctx()


# ---- autograd through Tensor[] arguments and outputs
def _concat_and_split(lib, name):
    Tensor = lib.Tensor
    ns = _namespace(lib, name)
    needs = []

    @lib.library.custom_op(f"{ns}::concat", mutates_args=())
    def concat(xs: list[Tensor], dim: int) -> Tensor:
        return lib.from_numpy(np.concatenate([x.numpy() for x in xs], dim))

    @lib.library.custom_op(f"{ns}::split", mutates_args=())
    def split(x: Tensor, points: list[int], dim: int) -> tuple[list[Tensor], int]:
        return [lib.from_numpy(p.copy()) for p in np.split(x.numpy(), points, dim)], len(points)

    def concat_setup(ctx, inputs, output):
        xs, ctx.dim = inputs
        ctx.points = list(np.cumsum([x.shape[ctx.dim] for x in xs])[:-1])  # NumPy ints, as torch's db passes

    def concat_backward(ctx, grad):
        needs.append(ctx.needs_input_grad)
        return split(grad, ctx.points, ctx.dim)[0], None

    def split_backward(ctx, grads, count_grad):
        needs.append(ctx.needs_input_grad)
        return concat(grads, ctx.dim), None, None

    concat.register_autograd(concat_backward, setup_context=concat_setup)
    split.register_autograd(split_backward,
                            setup_context=lambda ctx, inputs, output: setattr(ctx, "dim", inputs[2]))
    return concat, split, needs


def test_tensor_list_argument_and_output_get_gradients_as_torch():
    results = []
    rng = np.random.default_rng(0)
    a, b, weights = rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    for lib in (chainrule, torch):
        concat, split, needs = _concat_and_split(lib, "lists")
        x, y = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        joined = concat([x, y], 0)
        pieces, count = split(joined * lib.tensor(weights), [1, 3], 0)
        (pieces[0].sum() + (pieces[2] ** 2).sum()).backward()  # pieces[1] unused: a zero gradient
        results.append((joined.detach().numpy(), count, x.grad.numpy(), y.grad.numpy(), needs,
                        type(joined.grad_fn).__name__.replace(f"_{lib.__name__}", "")))
    ours, theirs = results
    np.testing.assert_allclose(ours[0], theirs[0])
    assert ours[1] == theirs[1] == 2
    np.testing.assert_allclose(ours[2], theirs[2])
    np.testing.assert_allclose(ours[3], theirs[3])
    assert ours[4] == theirs[4] == [(True, False, False), ([True, True], False)]
    assert ours[5] == theirs[5] == "GeneratedBackwardFor_dbfix_lists_concat_defaultBackward"


def test_tensor_list_gradients_pass_gradcheck_twice():
    concat, split, _ = _concat_and_split(chainrule, "gradcheck")
    x = chainrule.randn(2, 3, dtype=chainrule.float64, requires_grad=True)
    y = chainrule.randn(1, 3, dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda a, b: concat([a, b], 0), (x, y))
    assert chainrule.autograd.gradgradcheck(lambda a, b: concat([a, b], 0), (x, y))
    assert chainrule.autograd.gradcheck(lambda a: tuple(split(a, [1], 1)[0]), (x,))


# ---- keyword-only arguments
def _keyword_only_scale(lib):
    """Backpropagate through an op taking its factor by keyword; (x's gradient, what setup saw)."""
    seen = {}

    @lib.library.custom_op(f"{_namespace(lib, 'kw')}::scale", mutates_args=())
    def scale(x: lib.Tensor, *, factor: float) -> lib.Tensor:
        return x * factor

    def setup_context(ctx, inputs, keyword_only_inputs, output):
        seen["inputs"], seen["keywords"] = len(inputs), dict(keyword_only_inputs)
        ctx.factor = keyword_only_inputs["factor"]

    scale.register_autograd(lambda ctx, grad: grad * ctx.factor, setup_context=setup_context)
    x = lib.ones(3, requires_grad=True)
    scale(x, factor=2.5).sum().backward()
    return x.grad.numpy(), seen


def test_setup_context_with_keyword_only_inputs_and_one_gradient_per_positional_argument():
    ours, theirs = _in_both(_keyword_only_scale)
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[1] == theirs[1] == {"inputs": 1, "keywords": {"factor": 2.5}}


# ---- binding and names
@pytest.mark.parametrize("lib", LIBS)
def test_numpy_integers_bind_to_int_arguments(lib):
    @lib.library.custom_op(f"{_namespace(lib, 'npint')}::pad", mutates_args=())
    def pad(x: lib.Tensor, sizes: list[int], value: float, times: int) -> lib.Tensor:
        return lib.nn.functional.pad(x, [int(s) for s in sizes], value=value) * times

    out = pad(lib.zeros(2), [np.int64(1), np.int32(0)], np.float64(3.0), np.int64(2))
    np.testing.assert_array_equal(out.numpy(), [6.0, 0.0, 0.0])


def test_argument_type_errors_name_the_types_as_torch():
    def build(lib):
        ns = _namespace(lib, "types")
        library = lib.library.Library(ns, "FRAGMENT")
        library.define("f(Tensor[] xs, SymInt[] sizes, Tensor? w, Scalar s, float[] fs) -> Tensor")
        op = getattr(lib.ops, ns).f
        good = [[lib.ones(1)], [1], None, 1, [1.0]]
        messages = []
        for position in range(len(good)):
            call = list(good)
            call[position] = "text"
            messages.append(_error(op, *call)[1].splitlines()[0].replace(ns, "NS"))
        library._destroy()
        return messages

    ours, theirs = _in_both(build)
    assert ours == theirs
    assert "'List[Tensor]'" in ours[0] and "'Optional[Tensor]'" in ours[2] and "'number'" in ours[3]


@pytest.mark.parametrize("name", ["bad-name", "9lives", "two words"])
def test_custom_op_name_that_is_no_identifier_fails_as_torchs_lexer(name):
    def build(lib):
        return _error(lib.library.custom_op, f"{_namespace(lib, 'names')}::{name}", lambda x: x, mutates_args=(),
                      schema="(Tensor x) -> Tensor")

    ours, theirs = _in_both(build)
    assert ours[0] is theirs[0] is RuntimeError
    assert ours[1].splitlines()[0] == theirs[1].splitlines()[0]


# ---- registration and backward errors
def test_autograd_formula_for_a_mutating_op_is_refused_as_torch():
    def build(lib):
        def bump(x: lib.Tensor) -> None:
            x.add_(1)

        op = lib.library.custom_op(f"{_namespace(lib, 'mutating')}::bump", bump, mutates_args=("x",))
        return _error(op.register_autograd, lambda ctx, grad: grad)

    ours, theirs = _in_both(build)
    assert ours[0] is theirs[0] is RuntimeError
    assert ours[1].replace("chainrule", "torch") == theirs[1]
    assert ours[1].startswith("Cannot register autograd formula for non-functional operator <CustomOpDef(")


def test_fake_kernel_for_an_undefined_op_is_refused_and_a_kernel_is_kept_as_torch():
    def build(lib):
        ns = _namespace(lib, "undefined")
        lib.library.register_kernel(f"{ns}::later", "cpu", lambda x: x)  # torch keeps it for a later define
        return _error(lib.library.register_fake, f"{ns}::missing", lambda x: x)

    ours, theirs = _in_both(build)
    assert ours == (RuntimeError, f"operator {_namespace(chainrule, 'undefined')}::missing does not exist")
    assert theirs == (RuntimeError, f"operator {_namespace(torch, 'undefined')}::missing does not exist")


def test_opcheck_fake_shape_mismatch_raises_metadata_mismatch_error_as_torch():
    def build(lib):
        def column_sums(x: lib.Tensor) -> lib.Tensor:
            return x.sum(0)

        op = lib.library.custom_op(f"{_namespace(lib, 'fakeshape')}::sums", column_sums, mutates_args=())
        op.register_fake(lambda x: x.clone())
        found = lib.library.opcheck(op, (lib.ones(2, 3),), test_utils="test_faketensor", raise_exception=False)
        error = found["test_faketensor"]
        return type(error).__name__, isinstance(error, RuntimeError), str(error).split(" found ")[1]

    ours, theirs = _in_both(build)
    assert ours[:2] == theirs[:2] == ("MetadataMismatchError", True)
    assert ours[2].replace("chainrule", "torch") == theirs[2]


@pytest.mark.parametrize("returned", ["three", "gradient_for_metadata", "list"])
def test_backward_returning_the_wrong_gradients_fails_as_torch(returned):
    def build(lib):
        def product(x: lib.Tensor, y: lib.Tensor) -> lib.Tensor:
            return x * y

        op = lib.library.custom_op(f"{_namespace(lib, 'count_' + returned)}::product", product, mutates_args=())
        gradients = {"three": lambda g: (g, g, g), "gradient_for_metadata": lambda g: (g, None, g),
                     "list": lambda g: [g, g]}[returned]
        op.register_autograd(lambda ctx, grad: gradients(grad))
        x = lib.ones(2, requires_grad=True)
        return _error(lambda: op(x, lib.ones(2)).sum().backward())

    ours, theirs = _in_both(build)
    assert ours[0] is theirs[0] is RuntimeError
    assert ours[1].replace(_namespace(chainrule, "count_" + returned), "NS") == \
        theirs[1].replace(_namespace(torch, "count_" + returned), "NS")


# ---- register_autocast
def _autocast_run(lib, name, dtype_name, **inputs):
    """An op registered to autocast on the CPU to ``dtype_name``, called inside and outside a CPU
    autocast region: the dtypes its kernel saw and returned."""
    seen = []

    @lib.library.custom_op(f"{_namespace(lib, name)}::weigh", mutates_args=())
    def weigh(x: lib.Tensor, w: lib.Tensor, counts: lib.Tensor) -> lib.Tensor:
        seen.append((str(x.dtype), str(w.dtype), str(counts.dtype), lib.is_autocast_enabled("cpu")))
        return (x * w).sum(-1) + counts

    lib.library.register_autocast(f"{_namespace(lib, name)}::weigh", "cpu", getattr(lib, dtype_name))
    x, w = lib.ones(2, 3), lib.ones(3, dtype=lib.float64)
    counts = lib.arange(2)
    plain = weigh(x, w, counts)
    with lib.autocast("cpu", dtype=lib.bfloat16):
        cast = weigh(x, w, counts)
    return [s.replace(lib.__name__, "LIB") for s in map(str, seen)], str(plain.dtype).rpartition(".")[2], \
        str(cast.dtype).rpartition(".")[2]


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_register_autocast_casts_floating_inputs_and_runs_without_autocast_as_torch(dtype_name):
    ours, theirs = _autocast_run(chainrule, f"cast_{dtype_name}", dtype_name), \
        _autocast_run(torch, f"cast_{dtype_name}", dtype_name)
    assert ours == theirs
    assert ours[0][1] == f"('LIB.{dtype_name}', 'LIB.float64', 'LIB.int64', False)"


def test_register_autocast_refuses_a_device_without_autocast_as_torch():
    def build(lib):
        def twice(x: lib.Tensor) -> lib.Tensor:
            return x * 2

        op = lib.library.custom_op(f"{_namespace(lib, 'nodevice')}::twice", twice, mutates_args=())
        op.register_autocast("mps", lib.float16)  # a device with an autocast, where chainrule never runs
        return [_error(op.register_autocast, device_type, lib.float16) for device_type in ("meta", "tpu", 3)]

    ours, theirs = _in_both(build)
    assert ours == theirs
    assert ours[0] == (ValueError, "Device type 'meta' does not support autocast.")
    assert ours[1][0] is RuntimeError
