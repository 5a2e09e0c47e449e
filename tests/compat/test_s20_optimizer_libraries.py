"""What optimizer and curvature libraries (torch-optimizer, pytorch-ranger, pytorch_optimizer, BackPACK,
curvlinops, higher) met on chainrule in session 20 (docs/compatibility-trials.md): each test runs the
same small program on chainrule and on torch 2.13 and compares what it returns."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(20)
_W = _RNG.standard_normal((3, 4)).astype(np.float32)
_X = _RNG.standard_normal((5, 4)).astype(np.float32)


def _linear(lib):
    model = lib.nn.Linear(4, 3)
    with lib.no_grad():
        model.weight.copy_(lib.from_numpy(_W))
        model.bias.zero_()
    return model


def _int_step_optimizer(lib):
    """An optimizer written outside torch counting steps in a Python int and passing a number
    computed from it first, in torch's deprecated overload (torch-optimizer's AdaBelief, Ranger)."""

    class IntStepSGD(lib.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        @lib.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state[p]
                    state["step"] = state.get("step", 0) + 1
                    p.add_(p.grad, alpha=-group["lr"] / state["step"])
            return None

    return IntStepSGD


def _train_round_trip(lib, make):
    model = _linear(lib)
    x = lib.from_numpy(_X)
    opt = make(model.parameters())
    for step in range(4):
        if step == 2:
            saved = copy.deepcopy(opt.state_dict())
            opt = make(model.parameters())
            opt.load_state_dict(saved)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    step = opt.state[model.weight]["step"]
    return type(step).__name__, float(step), model.weight.detach().numpy().copy()


def test_a_loaded_int_step_stays_an_int_outside_torchs_own_optimizers():
    ours = _train_round_trip(chainrule, _int_step_optimizer(chainrule))
    theirs = _train_round_trip(torch, _int_step_optimizer(torch))
    assert ours[:2] == theirs[:2] == ("int", 4.0)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6, atol=1e-7)


def test_torchs_own_optimizers_still_load_a_number_step_as_a_tensor():
    def loaded_step(lib):
        model = _linear(lib)
        opt = lib.optim.Adam(model.parameters())
        model(lib.from_numpy(_X)).sum().backward()
        opt.step()
        saved = opt.state_dict()
        saved["state"][0]["step"] = 1  # a step number, as an older torch wrote it
        opt.load_state_dict(saved)
        step = opt.state[model.weight]["step"]
        return type(step).__name__, str(step.dtype).split(".")[-1], float(step)

    assert loaded_step(chainrule) == loaded_step(torch) == ("Tensor", "float32", 1.0)


def test_randint_like_takes_high_by_keyword():
    def draw(lib):
        lib.manual_seed(3)
        x = lib.zeros(2, 5)
        return [lib.randint_like(x, high=2).tolist(), lib.randint_like(x, 4).tolist(),
                lib.randint_like(x, 2, 6).tolist()]

    assert draw(chainrule) == draw(torch)
    for lib in (chainrule, torch):
        with pytest.raises(TypeError, match=r"^randint_like\(\) received an invalid combination of arguments"):
            lib.randint_like(lib.zeros(2))


def test_eye_writes_into_out():
    def write(lib):
        out = lib.empty(2, 2, dtype=lib.float64)
        result = lib.eye(3, out=out)
        wide = lib.eye(2, 3, out=lib.empty(0, dtype=lib.int32))
        return result is out, str(out.dtype).split(".")[-1], out.tolist(), wide.tolist()

    assert write(chainrule) == write(torch)
    messages = []
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError) as refused:
            lib.eye(2, out=lib.empty(2, 2, requires_grad=True))
        messages.append(str(refused.value))
    assert messages[0] == messages[1]


def _hessian_diagonal_estimate(lib):
    """Adahessian's pattern: backward(create_graph=True), then Hessian-vector products from p.grad,
    then p.grad.detach_() and an in-place update."""
    model = _linear(lib)
    x = lib.from_numpy(_X)
    model(x).tanh().pow(2).sum().backward(create_graph=True)
    params = list(model.parameters())
    grads = [p.grad for p in params]
    names = [type(g.grad_fn).__name__ for g in grads]
    views = [g._is_view() for g in grads]
    vs = [lib.ones_like(p) for p in params]
    hvs = lib.autograd.grad(grads, params, grad_outputs=vs, retain_graph=True)
    for g in grads:
        g.detach_()
    return names, views, [h.detach().numpy() for h in hvs], [g.requires_grad for g in grads]


def test_a_create_graph_gradient_is_a_recorded_copy_that_detaches_in_place():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference-cycle warning for backward(create_graph=True)
        ours = _hessian_diagonal_estimate(chainrule)
        theirs = _hessian_diagonal_estimate(torch)
    assert ours[0] == theirs[0] == ["CopyBackwards", "CopyBackwards"]
    assert ours[1] == theirs[1] == [False, False]
    assert ours[3] == theirs[3] == [False, False]
    for a, b in zip(ours[2], theirs[2]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_copy_node_is_named_as_torch_names_its_type_and_its_name():
    def names(lib):
        x = lib.ones(3, requires_grad=True)
        y = lib.zeros(3)
        y.copy_(x)
        return type(y.grad_fn).__name__, y.grad_fn.name()

    assert names(chainrule) == names(torch) == ("CopyBackwards", "torch::autograd::CopyBackwards")


def _hook_log(lib):
    from importlib import import_module

    optimizer_module = import_module(f"{lib.__name__}.optim.optimizer")
    log = []
    model = _linear(lib)
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    handles = [
        optimizer_module.register_optimizer_step_pre_hook(lambda o, a, k: log.append("global pre")),
        optimizer_module.register_optimizer_step_post_hook(lambda o, a, k: log.append("global post")),
        opt.register_step_pre_hook(lambda o, a, k: log.append(("pre", type(o).__name__, len(a), dict(k)))),
        opt.register_step_post_hook(lambda o, a, k: log.append("post")),
        opt.register_state_dict_pre_hook(lambda o: log.append("state_dict pre")),
        opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1}),
        opt.register_state_dict_pre_hook(lambda o: log.append("state_dict pre, prepended"), prepend=True),
        opt.register_load_state_dict_pre_hook(lambda o, sd: {k: v for k, v in sd.items() if k != "extra"}),
        opt.register_load_state_dict_post_hook(lambda o: log.append("loaded")),
    ]
    try:
        model(lib.from_numpy(_X)).sum().backward()
        opt.step()
        saved = opt.state_dict()
        log.append(sorted(saved))
        opt.load_state_dict(saved)
        handles[2].remove()
        opt.step()
        # a pre-hook may replace the arguments: here it hands step a closure
        opt.register_step_pre_hook(lambda o, a, k: (a, {"closure": lambda: 7.0}))
        log.append(opt.step())
        with pytest.raises(RuntimeError) as refused:
            opt.register_step_pre_hook(lambda o, a, k: "not a pair")
            opt.step()
        log.append(str(refused.value).split(" must return")[1])
        restored = pickle.loads(pickle.dumps(opt))
        log.append(sorted(k for k in vars(restored) if "hooks" in k))
        log.append(len(restored._optimizer_step_pre_hooks))
    finally:
        for handle in handles[:2]:
            handle.remove()
    return log


def test_optimizer_hooks_run_as_torchs():
    assert _hook_log(chainrule) == _hook_log(torch)


def test_a_subclass_step_runs_the_hooks_and_one_without_init_has_no_hook_tables():
    def run(lib):
        calls = []

        class Plain(lib.optim.Optimizer):
            def __init__(self, params):
                super().__init__(params, {"lr": 0.1})

            def step(self, closure=None):
                calls.append("step")

        opt = Plain([lib.zeros(1, requires_grad=True)])
        opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
        opt.step()

        class Wrapper(lib.optim.Optimizer):  # torch-optimizer's Lookahead: no Optimizer.__init__
            def __init__(self, inner):
                self.optimizer = inner
                self.param_groups = inner.param_groups
                self.state = {}

        with pytest.raises(AttributeError) as missing:
            Wrapper(opt).state_dict()
        return calls, str(missing.value)

    assert run(chainrule) == run(torch)


def _state_beside_the_parameters(lib):
    """pytorch_optimizer's SPAM and MADGRAD keep counters in ``optimizer.state`` under their own keys."""
    model = _linear(lib)
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    opt.state["k"] = lib.tensor([3])
    opt.state["current_step"] = 5
    opt.state[model.weight]["seen"] = 1
    saved = opt.state_dict()
    fresh = lib.optim.SGD(model.parameters(), lr=0.1)
    fresh.load_state_dict(copy.deepcopy(saved))
    loaded = {str(k) if not isinstance(k, lib.Tensor) else "weight": (v.tolist() if isinstance(v, lib.Tensor) else v)
              for k, v in fresh.state.items()}
    return sorted(map(str, saved["state"])), loaded


def test_state_under_keys_that_are_no_parameters_survives_a_round_trip():
    assert _state_beside_the_parameters(chainrule) == _state_beside_the_parameters(torch)


def test_a_dict_saved_without_parameter_names_keeps_the_optimizers_names():
    def names(lib):
        model = _linear(lib)
        named = lib.optim.SGD(model.named_parameters(), lr=0.1)
        unnamed = lib.optim.SGD(model.parameters(), lr=0.2)
        named.load_state_dict(unnamed.state_dict())
        return named.param_groups[0]["param_names"], named.param_groups[0]["lr"]

    assert names(chainrule) == names(torch) == (["weight", "bias"], 0.2)


def test_foreach_utils_group_tensors_by_device_and_dtype_as_torch():
    from torch.utils import _foreach_utils as theirs

    from chainrule.utils import _foreach_utils as ours

    def grouped(lib, utils):
        first = [lib.zeros(1), lib.zeros(2, dtype=lib.float64), lib.zeros(3)]
        second = [lib.ones(1), None, lib.ones(3)]
        result = {}
        for with_indices in (False, True):
            groups = utils._group_tensors_by_device_and_dtype([first, second], with_indices)
            for (device, dtype), (lists, indices) in groups.items():
                same_objects = all(t is first[i] for t, i in zip(lists[0], indices)) if with_indices else None
                result[(str(device), str(dtype).split(".")[-1], with_indices)] = (
                    [[None if t is None else list(t.shape) for t in tensors] for tensors in lists], indices,
                    same_objects)
        return result, utils._has_foreach_support(first, lib.device("cpu"))

    assert grouped(chainrule, ours) == grouped(torch, theirs)
    assert (chainrule.optim.Optimizer._group_tensors_by_device_and_dtype([[chainrule.zeros(1)]], True)
            [(chainrule.device("cpu"), chainrule.float32)][1] == [0])


def test_loaded_tensors_inside_lists_and_dicts_take_the_parameters_dtype():
    def loaded(lib):
        p = lib.zeros(2, dtype=lib.float64, requires_grad=True)
        opt = lib.optim.SGD([p])
        opt.state[p]["Q"] = [lib.ones(2), [], (lib.ones(1),)]  # SOAP keeps its eigenbases in a list
        opt.state[p]["nested"] = {"step": lib.ones(1), "x": lib.ones(1)}
        fresh = lib.optim.SGD([p])
        fresh.load_state_dict(opt.state_dict())
        state = fresh.state[p]
        return ([str(state["Q"][0].dtype), state["Q"][1], str(state["Q"][2][0].dtype), type(state["Q"][2]).__name__],
                {k: str(v.dtype) for k, v in state["nested"].items()})

    def named(result):
        return repr(result).replace("chainrule.", "torch.")

    assert named(loaded(chainrule)) == named(loaded(torch))


def _transforms_under_no_grad(lib):
    """curvlinops' Hessian and GGN products: torch.func transforms inside an @no_grad() function
    (vmapped), over parameters that require grad. The transforms still differentiate, but nothing
    they return is recorded outside."""
    func = lib.func
    p = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
    v = lib.tensor([1.0, 2.0, 3.0])

    @lib.no_grad()
    def hvp(v):
        return func.jvp(func.jacrev(lambda q: (q ** 3).sum()), (p,), (v,))[1]

    @lib.no_grad()
    def vjp(v):
        return func.vjp(lambda q: q.sin() * q, p)[1](v)[0]

    @lib.no_grad()
    def grad(v):
        return func.grad(lambda q: (q.exp() * v).sum())(p)

    @lib.no_grad()
    def jacfwd(v):
        return func.jacfwd(lambda q: q.tanh() * v)(p)

    results = {}
    for name, fn in (("hvp", hvp), ("vjp", vjp), ("grad", grad), ("jacfwd", jacfwd)):
        once, mapped = fn(v), func.vmap(fn)(lib.stack([v, 2 * v]))
        results[name] = (once.requires_grad, mapped.requires_grad, once.numpy().round(5).tolist())
    with lib.enable_grad():  # recorded as usual when grad mode is on outside
        results["recorded"] = func.grad(lambda q: (q ** 3).sum())(p).requires_grad
    return results


def test_transforms_called_under_no_grad_return_unrecorded_results():
    ours = _transforms_under_no_grad(chainrule)
    assert ours == _transforms_under_no_grad(torch)
    assert ours["hvp"][:2] == (False, False)


def test_vmap_with_the_same_randomness_rewinds_an_explicit_generator_too():
    def draws(lib):
        """curvlinops' MC Fisher: samples from its own seeded Generator inside vmap(randomness="same")."""
        generator = lib.Generator()
        generator.manual_seed(2147483647)
        prob = lib.softmax(lib.tensor([[0.1, 0.5, -0.3], [1.0, 0.0, 0.2]]), dim=1)

        def sample(v):
            picked = prob.multinomial(num_samples=4, replacement=True, generator=generator).to(v.dtype)
            return picked * v + lib.normal(lib.zeros(2, 4), 1.0, generator=generator)

        mapped = lib.func.vmap(sample, randomness="same")(lib.ones(3))
        after = lib.rand(2, generator=generator)  # the generator advanced by one slice's draws
        return mapped.numpy().round(5).tolist(), after.numpy().round(6).tolist()

    ours, theirs = draws(chainrule), draws(torch)
    assert ours == theirs
    assert ours[0][0] == ours[0][1] == ours[0][2]


def test_cuda_nvtx_imports_and_refuses_as_a_cpu_build():
    """asdl (laplace-torch's backend) imports torch.cuda.nvtx at package import."""
    from torch.cuda import nvtx as theirs

    from chainrule.cuda import nvtx as ours

    def outcomes(nvtx):
        found = []
        for call in (lambda: nvtx.range_push("a"), nvtx.range_pop, lambda: nvtx.mark("a"),
                     lambda: nvtx.range_start("a"), lambda: nvtx.range_end(1)):
            try:
                found.append(call())
            except (RuntimeError, AttributeError) as refused:
                found.append((type(refused).__name__, str(refused)))
        try:
            with nvtx.range("step {}", 1):
                found.append("inside")
        except RuntimeError as refused:
            found.append(str(refused))
        return found

    if chainrule.cuda.is_available() or torch.cuda.is_available():
        pytest.skip("a GPU machine: NVTX is installed there")
    assert outcomes(ours) == outcomes(theirs)


def test_linalg_error_is_named_as_torchs_class():
    """laplace-torch's full Hessian of an indefinite curvature: the error a user reads is torch._C._LinAlgError."""
    names = []
    for lib in (chainrule, torch):
        with pytest.raises(lib.linalg.LinAlgError) as refused:
            lib.linalg.cholesky(-lib.eye(2))
        names.append((type(refused.value).__name__, type(refused.value).__module__.split(".", 1)[1],
                      lib._C._LinAlgError is lib.linalg.LinAlgError, str(refused.value)))
    assert names[0] == names[1]


def test_optimizer_classes_are_named_by_torchs_modules():
    import inspect

    def modules(lib):
        optim = lib.optim
        return {name: getattr(optim, name).__module__.split(".", 1)[1] for name in optim.__all__
                if inspect.isclass(getattr(optim, name)) and issubclass(getattr(optim, name), optim.Optimizer)}

    assert modules(chainrule) == modules(torch)
    from chainrule.optim.adamw import AdamW

    assert AdamW is chainrule.optim.AdamW


def test_an_assigned_flat_weights_list_is_what_the_rnn_runs_on():
    """higher's functional LSTM assigns its fast weights to ``_flat_weights`` before the forward."""
    def outputs(lib):
        lib.manual_seed(0)
        lstm = lib.nn.LSTM(3, 2, batch_first=True)
        with lib.no_grad():
            for p, values in zip(lstm.parameters(), np.split(np.linspace(-0.5, 0.5, 56, dtype=np.float32),
                                                             np.cumsum([p.numel() for p in lstm.parameters()])[:-1])):
                p.copy_(lib.from_numpy(values.reshape(tuple(p.shape))))
        x = lib.from_numpy(_X[:2, :3].reshape(1, 2, 3).copy())
        lstm._flat_weights = [2 * w for w in lstm._flat_weights]
        doubled = lstm(x)[0]
        lstm.weight_hh_l0 = lib.nn.Parameter(lib.zeros(8, 2))  # kept in step with the assigned list
        no_recurrence = lstm(x)[0]
        return doubled.detach().numpy(), no_recurrence.detach().numpy()

    for a, b in zip(outputs(chainrule), outputs(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_addcmul_and_addcdiv_multiply_in_the_common_dtype_of_all_operands():
    """AdaMuon keeps a float32 second moment of a bfloat16 update: ``v.addcmul_(update, update)``."""
    def run(lib):
        update = lib.tensor([1.0078125, 3.015625, -0.50390625], dtype=lib.bfloat16, requires_grad=True)
        moment = lib.zeros(3).addcmul(update, update, value=0.05)
        ratio = lib.ones(3).addcdiv(update, 3 * update.detach(), value=0.3)
        (moment.sum() + ratio.sum()).backward()
        return (moment.detach().numpy(), ratio.detach().numpy(), str(moment.dtype).split(".")[-1],
                update.grad.float().numpy())

    ours, theirs = run(chainrule), run(torch)
    assert ours[2] == theirs[2] == "float32"
    for a, b in zip(ours[:2] + ours[3:], theirs[:2] + theirs[3:]):
        # torch's CPU kernel fuses the multiply-add (one rounding); a bfloat16 product would be 6e-5 off
        np.testing.assert_allclose(a, b, rtol=2e-7, atol=0)


def test_backward_with_create_graph_warns_of_the_reference_cycle_once(monkeypatch):
    import warnings

    from chainrule.autograd import engine

    monkeypatch.setattr(engine, "_reference_cycle_warned", False)  # torch warns once per process
    x = chainrule.ones(2, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (x ** 2).sum().backward(create_graph=True)
        (x ** 2).sum().backward(create_graph=True)
        chainrule.autograd.grad((x ** 2).sum(), x, create_graph=True)  # grad() makes no cycle: no warning
    assert [(w.category, str(w.message)[:69]) for w in caught] == [
        (UserWarning, "Using backward() with create_graph=True will create a reference cycle")]
    assert caught[0].filename == __file__  # the user's line


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_tensor_times_or_over_a_number_keeps_the_number_in_float32(dtype):
    # torch's CPU mul and div kernels keep a Python number (the second operand) in float32, their
    # opmath type, and round the result once: bfloat16 3 * -4.7 is -14.125; a number rounded to
    # bfloat16 first (-4.6875) gave -14.0625. add and sub round their number to the dtype.
    rng = np.random.default_rng(3)
    values = (rng.standard_normal(300) * np.exp(rng.uniform(-6, 6, 300))).astype(np.float32)
    numbers = [-4.7, 0.1, 1 / 3, 0.999, 257, 7.123456e-3, -1e-6]

    def run(lib):
        x = lib.tensor(values).to(getattr(lib, dtype))
        leaf = lib.tensor(values[:5]).to(getattr(lib, dtype)).requires_grad_()
        results = []
        for s in numbers:
            scaled, shrunk = x.clone(), x.clone()
            scaled.mul_(s)
            shrunk /= s
            results += [x * s, s * x, x / s, s / x, x.mul(s), scaled, shrunk, x + s, s - x]
            (leaf * s + leaf / s).sum().backward()
        results.append(leaf.grad)
        return [r.detach().float().numpy() for r in results]

    for i, (ours, theirs) in enumerate(zip(run(chainrule), run(torch))):
        np.testing.assert_array_equal(ours, theirs, err_msg=f"result {i}")
    assert float(chainrule.tensor([3.0], dtype=chainrule.bfloat16)[0] * -4.7) == -14.125


def test_einsum_and_tensordot_refuse_contracting_mixed_dtypes_as_torch():
    # a contraction runs through bmm, which wants one dtype; a pure broadcast product promotes
    def outcome(lib, fn):
        try:
            return str(fn(lib).dtype).split(".")[-1]
        except RuntimeError as error:
            return str(error)

    cases = [
        lambda lib: lib.einsum("ij,jk->ik", lib.ones(2, 3), lib.ones(3, 4, dtype=lib.float64)),
        lambda lib: lib.einsum("ij,ij->i", lib.ones(2, 3), lib.ones(2, 3, dtype=lib.float64)),
        lambda lib: lib.einsum("ij,j->i", lib.ones(2, 3), lib.ones(3, dtype=lib.int64)),
        lambda lib: lib.einsum("ij,jk,kl->il", lib.ones(2, 3), lib.ones(3, 4), lib.ones(4, 2, dtype=lib.float64)),
        lambda lib: lib.einsum("ij,kl->ijkl", lib.ones(2, 3), lib.ones(3, 4, dtype=lib.float64)),
        lambda lib: lib.einsum("ij,ij->ij", lib.ones(2, 3), lib.ones(2, 3, dtype=lib.float64)),
        lambda lib: lib.tensordot(lib.ones(2, 3), lib.ones(3, 4, dtype=lib.float64), 1),
        lambda lib: lib.tensordot(lib.ones(3), lib.ones(3, dtype=lib.float64), 0),
    ]
    ours = [outcome(chainrule, fn) for fn in cases]
    assert ours == [outcome(torch, fn) for fn in cases]
    assert ours[0] == "expected scalar type Float but found Double" and ours[4] == "float64"
