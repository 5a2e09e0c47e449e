"""torch.func and autograd corners against torch (the differences tools/torch_func_api_trial.py and
hand probes found): vmap's refusals of what a per-sample loop cannot mean — reading a batched value as
a Python number (``.item()``, ``float``, ``int``, ``.tolist()``), branching on one (``if x.sum() > 0:``),
an in-place write of a batched value into a tensor the function closes over — raised with torch's
class and words, while the same calls on unbatched tensors still run."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

XS = np.arange(6, dtype=np.float32).reshape(2, 3) - 1.5


def _outcome(lib, case):
    """("ok", values) or (exception class name, first line of its message)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's performance warnings for its batching fallbacks
        try:
            result = case(lib)
        except Exception as error:  # noqa: BLE001 - the class and message are what is compared
            return type(error).__name__, str(error).splitlines()[0]
    return "ok", np.asarray(result.detach().numpy() if hasattr(result, "detach") else result)


def _same(case):
    ours, theirs = _outcome(chainrule, case), _outcome(torch, case)
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "ok":
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    else:
        assert ours[1] == theirs[1]


def _vmapped(body):
    return lambda lib: lib.func.vmap(lambda r: body(lib, r))(lib.tensor(XS))


READS = {
    "item": lambda lib, r: r.sum().item(),
    "item of a computed value": lambda lib, r: (r * 2).exp()[0].item(),
    "float": lambda lib, r: float(r.sum()),
    "int": lambda lib, r: int(r.argmax()),
    "int of a cast": lambda lib, r: int(r.long().sum()),
    "bool": lambda lib, r: bool(r.sum()),
    "if on a comparison": lambda lib, r: r if r.sum() > 0 else -r,
    "if on any": lambda lib, r: r if (r > 0).any() else -r,
    "if on isnan": lambda lib, r: r if r.isnan().any() else -r,
    "if on a conjunction": lambda lib, r: r if ((r > 0) & (r < 9)).all() else -r,
    "tolist": lambda lib, r: lib.tensor(r.tolist()),
    "numpy": lambda lib, r: r.numpy(),
    # unbatched values read inside vmap are plain numbers, as in torch
    "item of a factory tensor": lambda lib, r: r * lib.ones(()).item(),
    "if on a factory tensor": lambda lib, r: r if lib.ones(()) > 0 else -r,
}


@pytest.mark.parametrize("name", sorted(READS))
def test_reading_a_batched_value_inside_vmap_is_refused_as_torch(name):
    _same(_vmapped(READS[name]))


def test_an_unmapped_input_can_be_read_inside_vmap():
    _same(lambda lib: lib.func.vmap(lambda r, s: r * s.item(), in_dims=(0, None))(lib.tensor(XS), lib.tensor(2.0)))


def test_item_outside_vmap_still_reads_the_value():
    assert chainrule.tensor([2.5]).item() == 2.5
    assert bool(chainrule.tensor(1.0) > 0)


WRITES = {
    "add_": lambda lib, y, r: y.add_(r),
    "add_ alpha": lambda lib, y, r: y.add_(r * 2, alpha=2),
    "+=": lambda lib, y, r: y.__iadd__(r),
    "sub_": lambda lib, y, r: y.sub_(r),
    "mul_ of a computed value": lambda lib, y, r: y.mul_(r.exp()),
    "copy_": lambda lib, y, r: y.copy_(r.sin()),
    "clamp_": lambda lib, y, r: y.clamp_(min=r),
    "addcmul_": lambda lib, y, r: y.addcmul_(r, r),
    "index_add_": lambda lib, y, r: y.index_add_(0, lib.tensor([0, 1, 2]), r),
    "fill_": lambda lib, y, r: y.fill_(r[0]),
    "through a view": lambda lib, y, r: y[:].mul_(r),
    "into a factory tensor": lambda lib, y, r: lib.zeros(3).add_(r),
    "into a sum of unbatched tensors": lambda lib, y, r: (lib.ones(3) + y).mul_(r),
    "into a view of a sum of unbatched tensors": lambda lib, y, r: (lib.ones(3) - y)[1:].add_(r[1:]),
    # writes torch's vmap allows
    "into a batched value": lambda lib, y, r: (r * 2).add_(r),
    "into a clone": lambda lib, y, r: r.clone().mul_(r),
}


@pytest.mark.parametrize("name", sorted(WRITES))
def test_in_place_write_into_a_closed_over_tensor_inside_vmap(name):
    def case(lib):
        y = lib.zeros(3)
        out = lib.func.vmap(lambda r: WRITES[name](lib, y, r))(lib.tensor(XS))
        return lib.cat([out.reshape(-1), y])

    _same(case)


def test_vmapped_function_with_its_own_numpy_kernel_still_runs():
    """A user Function whose forward reads .numpy() (torch runs its vmap rule below vmap)."""
    def case(lib):
        class Cube(lib.autograd.Function):
            generate_vmap_rule = True

            @staticmethod
            def forward(x):
                return lib.tensor(x.detach().numpy() ** 3)

            @staticmethod
            def setup_context(ctx, inputs, output):
                pass

            @staticmethod
            def vmap(info, in_dims, x):
                return Cube.apply(x), in_dims[0]

        Cube.generate_vmap_rule = False
        return lib.func.vmap(Cube.apply)(lib.tensor(XS))

    _same(case)


RANDOM_TRANSFORMS = {
    "jacfwd, randomness error": lambda lib, x: lib.func.jacfwd(lambda t: t * lib.rand(3))(x),
    "jacfwd of dropout": lambda lib, x: lib.func.jacfwd(lambda t: lib.nn.functional.dropout(t, 0.5))(x),
    "hessian": lambda lib, x: lib.func.hessian(lambda t: (t * lib.rand(3)).sum())(x),
    "jacfwd, randomness same": lambda lib, x: lib.func.jacfwd(lambda t: t * lib.rand(3), randomness="same")(x),
    # each column draws its own numbers, in order, as torch's vmapped jvps do
    "jacfwd, randomness different": lambda lib, x: lib.func.jacfwd(lambda t: t * lib.rand(3),
                                                                   randomness="different")(x),
    "jacrev": lambda lib, x: lib.func.jacrev(lambda t: t * lib.rand(3))(x),
}


@pytest.mark.parametrize("name", sorted(RANDOM_TRANSFORMS))
def test_random_ops_inside_jacfwd_follow_its_randomness(name):
    def case(lib):
        lib.manual_seed(0)
        jacobian = RANDOM_TRANSFORMS[name](lib, lib.tensor([1.0, 2.0, 3.0]))
        return lib.cat([jacobian.reshape(-1), lib.rand(1)])  # the generator is left where torch leaves it

    _same(case)


def _dual_case(body):
    """The primal's and tangent's dtypes (and the tangent's values) of ``body`` run on dual tensors:
    a float32 vector or matrix whose tangent is float64."""
    def case(lib):
        fw = lib.autograd.forward_ad
        w = lib.tensor([[1.0, 2.0], [3.0, 4.0]])
        v = lib.tensor([1.0, 2.0])

        def dual(x, dtype=lib.float64):
            return fw.make_dual(x.clone(), lib.ones_like(x, dtype=dtype) / 4)

        with fw.dual_level():
            primal, tangent = fw.unpack_dual(body(lib, w, v, dual))
            names = (str(primal.dtype).split(".")[-1], str(tangent.dtype).split(".")[-1])
            return np.array([*tangent.reshape(-1).tolist(), len(names[0]), len(names[1])]), names

    def outcome(lib):
        try:
            values, names = case(lib)
        except RuntimeError as error:
            return "RuntimeError", str(error).splitlines()[0]
        return "ok", names, values.tolist()

    return outcome


MIXED_TANGENTS = {
    # torch's product kernels take one dtype: a float64 tangent meets the other float32 operand
    "matrix @ vector": lambda lib, w, v, dual: w @ dual(v),
    "vector @ matrix": lambda lib, w, v, dual: dual(v) @ w,
    "matrix @ matrix, second": lambda lib, w, v, dual: w @ dual(w),
    "matrix @ matrix, both": lambda lib, w, v, dual: dual(w) @ dual(w),
    "float16 tangent": lambda lib, w, v, dual: w @ dual(w, lib.float16),
    "linear with bias": lambda lib, w, v, dual: lib.nn.functional.linear(dual(v), w, v),
    "dot": lambda lib, w, v, dual: lib.dot(v, dual(v)),
    "bmm": lambda lib, w, v, dual: lib.bmm(w[None], dual(w[None])),
    "batched matmul": lambda lib, w, v, dual: dual(v)[None, None].expand(3, 1, 2) @ w,
    "conv1d": lambda lib, w, v, dual: lib.nn.functional.conv1d(dual(v)[None, None], w[None, :1]),
    "einsum": lambda lib, w, v, dual: lib.einsum("i,ij->j", v, dual(w)),
    # elementwise formulas promote: the tangent stays float64
    "addmm's bias": lambda lib, w, v, dual: lib.addmm(dual(v), w, w),
    "sin": lambda lib, w, v, dual: dual(v).sin(),
    "softmax": lambda lib, w, v, dual: dual(v).softmax(0),
    # a cast casts the tangent too (torch: self_t.to(dtype))
    "float() of a float64 dual": lambda lib, w, v, dual: dual(v.double()).float() @ w,
    "half() of a float64 dual": lambda lib, w, v, dual: dual(v.double()).half(),
}


@pytest.mark.parametrize("name", sorted(MIXED_TANGENTS))
def test_a_tangent_of_another_dtype_than_its_primal(name):
    ours = _dual_case(MIXED_TANGENTS[name])(chainrule)
    theirs = _dual_case(MIXED_TANGENTS[name])(torch)
    assert ours[:2] == theirs[:2]
    if ours[0] == "ok":
        np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6)


@pytest.mark.parametrize("tangent", ["float64", "shape"])
def test_linearize_refuses_a_tangent_unlike_its_primal(tangent):
    def case(lib):
        _, jvp_fn = lib.func.linearize(lib.sin, lib.ones(3))
        return jvp_fn(lib.ones(3, dtype=lib.float64) if tangent == "float64" else lib.ones(2))

    _same(case)


def _graph_flags(result):
    """(requires_grad, grad_fn name) of every tensor in a nest of tuples."""
    if isinstance(result, (tuple, list)):
        return [_graph_flags(r) for r in result]
    return result.requires_grad, None if result.grad_fn is None else type(result.grad_fn).__name__


def _square_distance(x, y):
    return (x - y).pow(2).sum()


CREATE_GRAPH = {
    # x ** 2's second derivative is constant, yet torch's formula (2 * x.pow(1)) reaches x
    "hessian of a squared distance": lambda lib, x, y: lib.autograd.functional.hessian(
        _square_distance, (x, y), create_graph=True),
    "hvp of a squared distance": lambda lib, x, y: lib.autograd.functional.hvp(
        _square_distance, (x, y), (x, y), create_graph=True)[1],
    "grad of grad of x ** 2": lambda lib, x, y: lib.autograd.grad(
        lib.autograd.grad(x.requires_grad_().pow(2).sum(), x, create_graph=True)[0].sum(), x, create_graph=True),
    "grad of x ** 1": lambda lib, x, y: lib.autograd.grad(x.requires_grad_().pow(1).sum(), x, create_graph=True),
    "grad of x * 2": lambda lib, x, y: lib.autograd.grad((x.requires_grad_() * 2).sum(), x, create_graph=True),
    # a materialized gradient requires grad under create_graph (torch's zeros_like(requires_grad=True))
    "materialized unused input": lambda lib, x, y: lib.autograd.grad(
        (x.requires_grad_() * 2).sum(), [x, y.requires_grad_()], create_graph=True, materialize_grads=True),
    # a vectorized Jacobian is one tensor per input, split by output: all blocks require grad or none
    "vectorized jacobian of two outputs": lambda lib, x, y: lib.autograd.functional.jacobian(
        lambda a, b: (a * b, a + b), (x, y), create_graph=True, vectorize=True),
    "vectorized hessian": lambda lib, x, y: lib.autograd.functional.hessian(
        lambda a, b: (a.tanh() * b).sum(), (x, y), create_graph=True, vectorize=True),
    "jacobian of two outputs": lambda lib, x, y: lib.autograd.functional.jacobian(
        lambda a, b: (a * b, a + b), (x, y), create_graph=True),
}


@pytest.mark.parametrize("name", sorted(CREATE_GRAPH))
def test_create_graph_results_require_grad_as_torch(name):
    def flags(lib):
        x, y = lib.tensor([1.0, 2.0, 3.0, 4.0]), lib.tensor([0.5, 1.0, 1.5, 3.0])
        result = CREATE_GRAPH[name](lib, x, y)
        values = [np.asarray(r.detach().numpy()) for r in _flat(result)]
        return _graph_flags(result), values

    (ours, our_values), (theirs, their_values) = flags(chainrule), flags(torch)
    assert ours == theirs
    for mine, expected in zip(our_values, their_values):
        np.testing.assert_allclose(mine, expected, rtol=1e-4, atol=1e-6)


def _flat(result):
    return [t for r in result for t in _flat(r)] if isinstance(result, (tuple, list)) else [result]


TRANSFORM_GRAPHS = {
    # torch.func.jacrev vmaps one vjp: per input one tensor, split by output
    "jacrev of two outputs": lambda lib, x, y: lib.func.jacrev(lambda a, b: (a * b, a + b))(x.requires_grad_(), y),
    # the forward-over-reverse Hessian runs on inputs made to require grad
    "forward-mode hessian": lambda lib, x, y: lib.autograd.functional.hessian(
        lambda a: (a.sin() * a).sum(), x, vectorize=True, outer_jacobian_strategy="forward-mode"),
    "forward-mode jacobian of a leaf": lambda lib, x, y: lib.autograd.functional.jacobian(
        lambda a: a.sin(), x.requires_grad_(), vectorize=True, strategy="forward-mode"),
}


@pytest.mark.parametrize("name", sorted(TRANSFORM_GRAPHS))
def test_transform_results_require_grad_as_torch(name):
    def flags(lib):
        x, y = lib.tensor([1.0, 2.0, 3.0]), lib.tensor([0.5, 1.0, 1.5])
        result = TRANSFORM_GRAPHS[name](lib, x, y)
        return [r.requires_grad for r in _flat(result)], [r.detach().numpy() for r in _flat(result)]

    (ours, our_values), (theirs, their_values) = flags(chainrule), flags(torch)
    assert ours == theirs
    for mine, expected in zip(our_values, their_values):
        np.testing.assert_allclose(mine, expected, rtol=1e-4, atol=1e-6)


RANDOM_OF_BATCHED = {
    "bernoulli": lambda lib, t: lib.bernoulli(t),
    "bernoulli, p": lambda lib, t: lib.bernoulli(t, 0.5),
    "normal, mean": lambda lib, t: lib.normal(t, 1.0),
    "normal, std": lambda lib, t: lib.normal(0.0, t),
    "poisson": lambda lib, t: lib.poisson(t),
    "multinomial": lambda lib, t: lib.multinomial(t, 2),
    "binomial": lambda lib, t: lib.binomial(lib.full((3,), 5.0), t),
    # the tensor gives only a shape: every slice draws the same numbers
    "rand_like": lambda lib, t: lib.rand_like(t),
    "dropout": lambda lib, t: lib.nn.functional.dropout(t, 0.5),
}


@pytest.mark.parametrize("randomness", ["same", "different"])
@pytest.mark.parametrize("name", sorted(RANDOM_OF_BATCHED))
def test_random_ops_of_a_batched_tensor_under_vmap(name, randomness):
    def case(lib):
        lib.manual_seed(0)
        probabilities = lib.tensor([[0.1, 0.5, 0.9], [0.2, 0.4, 0.6]])
        drawn = lib.func.vmap(lambda t: RANDOM_OF_BATCHED[name](lib, t), randomness=randomness)(probabilities)
        return lib.cat([drawn.reshape(-1).double(), lib.rand(1).double()])

    _same(case)


def test_a_profiler_runs_around_and_inside_vmap():
    """vmap watches ops where the profiler does; a profiler started around it or inside the mapped
    function still records every op (torch's names), each time the function runs inside (torch's
    vmap runs it once; chainrule's once for the batch and once more on the last slice to check)."""
    x = chainrule.randn(3, 4)
    with chainrule.profiler.profile() as outer:
        chainrule.func.vmap(lambda t: (t.sin() * 2).sum())(x)
    assert {"aten::sin", "aten::mul", "aten::sum"} <= {event.key for event in outer.key_averages()}
    seen = []

    def mapped(t):
        with chainrule.profiler.profile() as inner:
            result = t.cos()
        seen.append([event.key for event in inner.key_averages()])
        return result

    chainrule.func.vmap(mapped)(x)
    assert seen and seen == [["aten::cos"]] * len(seen)
    assert chainrule.tensor([1.5]).item() == 1.5  # nothing left watching after vmap


@pytest.mark.parametrize("where", ["backward", "autograd.grad", "func.vjp"])
def test_a_gradient_of_the_wrong_shape_is_refused_in_torchs_words(where):
    def case(lib):
        x = lib.ones(3, 4, requires_grad=True)
        if where == "backward":
            return (x * 2).backward(lib.ones(4))
        if where == "autograd.grad":
            return lib.autograd.grad(x * 2, x, lib.ones(4, 3))
        return lib.func.vjp(lambda t: t * 2, x)[1](lib.ones(4))

    _same(case)


STRUCTURES = {
    "in_dims too short": lambda lib, x: lib.func.vmap(lambda a, b: a * b, in_dims=(0,))(x, x),
    "nested in_dims too long": lambda lib, x: lib.func.vmap(lambda a, b: a, in_dims=(0, (0, 0), 1))(x, [x, {"k": x}]),
    "out_dims too long": lambda lib, x: lib.func.vmap(lambda a: (a, a), out_dims=(0, 1, 0))(x),
    "out_dims of a dict": lambda lib, x: lib.func.vmap(lambda a: {"p": a, "q": [a, a]}, out_dims=(0, 1))(x),
    "one cotangent for two outputs": lambda lib, x: lib.func.vjp(lambda a: (a, a), x)[1](x),
    "a tuple cotangent for one output": lambda lib, x: lib.func.vjp(lambda a: a, x)[1]((x,)),
    "a list cotangent for a tuple": lambda lib, x: lib.func.vjp(lambda a: (a, a), x)[1]([x, x]),
    "a tuple cotangent for a dict": lambda lib, x: lib.func.vjp(lambda a: {"p": a, "q": [a, a]}, x)[1]((x,)),
    "matching cotangents": lambda lib, x: lib.func.vjp(lambda a: (a, a), x)[1]((x, x))[0],
}


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_pytree_structure_mismatches_are_refused_in_torchs_words(name):
    def case(lib):
        return STRUCTURES[name](lib, lib.ones(2, 3))

    ours, theirs = _outcome(chainrule, case), _outcome(torch, case)
    assert ours[0] == theirs[0]
    if ours[0] != "ok":  # the whole message: torch's TreeSpec spans lines
        assert _message(chainrule, case) == _message(torch, case)


def _message(lib, case):
    try:
        case(lib)
    except Exception as error:  # noqa: BLE001 - the message is what is compared
        return str(error)
    return None


def _structure_error(lib, call):
    from collections import namedtuple

    pair = namedtuple("Pair", "a b")
    x = lib.ones(2, 3)
    calls = {
        "in_dims": lambda: lib.func.vmap(lambda a, b: a, in_dims=(0, 0, 0))(x, pair(x, x)),
        "out_dims": lambda: lib.func.vmap(lambda a: pair(a, a), out_dims=(0, 0, 0))(x),
        "vjp": lambda: lib.func.vjp(lambda a: pair(a, a), x)[1]((x, x)),
    }
    with pytest.raises(Exception) as caught:
        calls[call]()
    return caught.type, str(caught.value)


@pytest.mark.parametrize("call", ["in_dims", "out_dims", "vjp"])
def test_structure_mismatch_messages_print_a_namedtuple_as_torch(call):
    # the structures are utils._pytree's TreeSpecs, which name a namedtuple as torch's do
    assert _structure_error(chainrule, call) == _structure_error(torch, call)
