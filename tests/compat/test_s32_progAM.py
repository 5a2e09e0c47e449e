"""Session 32, lane progAM (training-loop utility programs): fixes found while writing the lane's
programs (optim_zoo_resume, resume_midepoch_accum, hooks_optimizer_in_backward), each checked
against torch 2.13 on the same inputs."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _one_step(lib, name, **kwargs):
    """A parameter of a Linear(3, 2) after one step of ``lib.optim.<name>``: the optimizer and the weight."""
    lib.manual_seed(0)
    model = lib.nn.Linear(3, 2)
    optimizer = getattr(lib.optim, name)(model.parameters(), **kwargs)
    model(lib.ones(2, 3)).pow(2).sum().backward()
    optimizer.step()
    return optimizer, model.weight


# ---------------------------------------------------------------- optimizer state and group key order
@pytest.mark.parametrize("name", ["Rprop", "ASGD", "Adafactor", "RAdam", "NAdam", "Adamax", "Adagrad",
                                  "Adadelta", "Adam", "AdamW", "RMSprop"])
def test_optimizer_state_lists_its_keys_in_torchs_order(name):
    """torch creates ``step`` first in a parameter's state (Rprop: step, prev, step_size; ASGD: step,
    eta, mu, ax; Adafactor: step, row_var, col_var); chainrule added it last in those three, so
    ``print(optimizer.state_dict())`` and loops over ``state.items()`` came out in another order."""
    ours, weight = _one_step(chainrule, name)
    theirs, their_weight = _one_step(torch, name)
    assert list(ours.state[weight]) == list(theirs.state[their_weight])
    assert list(ours.state_dict()["state"][0]) == list(theirs.state_dict()["state"][0])


@pytest.mark.parametrize("name", ["RAdam", "NAdam", "Rprop", "ASGD", "Adamax", "Adafactor", "Adam", "AdamW"])
def test_param_group_keys_in_torchs_order(name):
    """RAdam's group listed ``decoupled_weight_decay`` after ``weight_decay``; torch's comes after
    ``capturable`` (lr, betas, eps, weight_decay, maximize, foreach, capturable,
    decoupled_weight_decay, differentiable)."""
    ours, _ = _one_step(chainrule, name)
    theirs, _ = _one_step(torch, name)
    assert list(ours.state_dict()["param_groups"][0]) == list(theirs.state_dict()["param_groups"][0])
    assert list(ours.param_groups[0]) == list(theirs.param_groups[0])


def test_asgd_state_values_match_torch_after_two_steps():
    """The reordered ASGD state still holds torch's values (step, eta, mu, ax)."""
    def run(lib):
        lib.manual_seed(0)
        model = lib.nn.Linear(3, 2)
        optimizer = lib.optim.ASGD(model.parameters(), lr=0.05, t0=1)
        for _ in range(3):
            optimizer.zero_grad()
            model(lib.ones(2, 3)).pow(2).sum().backward()
            optimizer.step()
        return {k: v.detach().numpy().tolist() for k, v in optimizer.state[model.weight].items()}

    assert run(chainrule) == run(torch)


# ---------------------------------------------------------------- scheduler state_dict key order
_SCHEDULERS = {
    "StepLR": lambda L, o: L.StepLR(o, 2),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, [2, 4]),
    "LinearLR": lambda L, o: L.LinearLR(o),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o, total_iters=4, power=2.0),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, T_mult=2),
    "CyclicLR": lambda L, o: L.CyclicLR(o, 0.01, 0.1, mode="triangular2"),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, 0.1, total_steps=20),
    "OneCycleLR-three-phase": lambda L, o: L.OneCycleLR(o, 0.1, total_steps=20, three_phase=True,
                                                        anneal_strategy="linear"),
    "ReduceLROnPlateau": lambda L, o: L.ReduceLROnPlateau(o, mode="max", patience=1),
    "SequentialLR": lambda L, o: L.SequentialLR(o, [L.ConstantLR(o), L.ExponentialLR(o, 0.9)], [2]),
}


def _stepped_scheduler(lib, name, optimizer_name):
    model = lib.nn.Linear(3, 2)
    if optimizer_name == "SGD":
        optimizer = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        optimizer = lib.optim.Adam(model.parameters(), lr=0.1)
    scheduler = _SCHEDULERS[name](lib.optim.lr_scheduler, optimizer)
    for _ in range(3):
        optimizer.step()
        scheduler.step(1.0) if name == "ReduceLROnPlateau" else scheduler.step()
    return scheduler, optimizer


@pytest.mark.parametrize("optimizer_name", ["SGD", "Adam"])
@pytest.mark.parametrize("name", sorted(_SCHEDULERS))
def test_scheduler_state_dict_lists_torchs_keys_in_torchs_order(name, optimizer_name):
    """OneCycleLR listed ``_anneal_func_type`` before ``_schedule_phases`` and ReduceLROnPlateau its
    mode/threshold keys before ``last_epoch``/``_last_lr``: torch sets them the other way round, and
    ``print(scheduler.state_dict())`` shows the order. Also after a ``load_state_dict`` round trip."""
    ours, our_optimizer = _stepped_scheduler(chainrule, name, optimizer_name)
    theirs, _ = _stepped_scheduler(torch, name, optimizer_name)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
    fresh, _ = _stepped_scheduler(chainrule, name, optimizer_name)
    fresh.load_state_dict(ours.state_dict())
    assert list(fresh.state_dict()) == list(theirs.state_dict())


# ---------------------------------------------------------------- weights_only loading of Python 2 global names
@pytest.mark.parametrize("saver", ["torch", "chainrule"])
def test_safe_globals_allow_a_builtin_saved_under_its_python2_name(saver, tmp_path):
    """torch.save writes protocol 2, so builtins are named ``__builtin__.slice``; torch's weights-only
    unpickler maps the Python 2 names to Python 3 ones (``builtins.slice``) before the allowlist, so
    ``safe_globals([slice])`` lets the file load and ``get_unsafe_globals_in_checkpoint`` says
    ``builtins.slice``. chainrule looked the raw name up: it refused the file under
    ``safe_globals([slice])`` and reported ``__builtin__.slice``."""
    path = tmp_path / "checkpoint.pt"
    (torch if saver == "torch" else chainrule).save({"window": slice(1, 5, 2), "t": torch.ones(2) if saver == "torch"
                                                     else chainrule.ones(2)}, path)
    assert chainrule.serialization.get_unsafe_globals_in_checkpoint(path) == \
        torch.serialization.get_unsafe_globals_in_checkpoint(path) == ["builtins.slice"]
    with torch.serialization.safe_globals([slice]):
        theirs = torch.load(path, weights_only=True)
    with chainrule.serialization.safe_globals([slice]):
        ours = chainrule.load(path, weights_only=True)
    assert ours["window"] == theirs["window"] == slice(1, 5, 2)
    assert ours["t"].tolist() == theirs["t"].tolist()
    import pickle

    with pytest.raises(pickle.UnpicklingError, match="GLOBAL slice was not"):  # torch names a builtin bare
        chainrule.load(path, weights_only=True)


def test_safe_globals_recipe_for_numpy_scalars_and_arrays_loads(tmp_path):
    """torch's documented way to load a checkpoint holding NumPy values with ``weights_only=True``
    (``best_acc`` kept as ``np.float64``): allow ``np._core.multiarray.scalar``, ``np.dtype`` and the
    dtype's class (``np.dtypes.Float64DType``). The dtype is rebuilt by BUILD with a tuple state, which
    torch hands to the allowed class's ``__setstate__``; chainrule took only dict states and refused
    ("BUILD of Float64DType is not allowed")."""
    np = pytest.importorskip("numpy")
    path = tmp_path / "checkpoint.pt"
    torch.save({"best_acc": np.float64(0.75), "order": np.arange(3), "step": 7}, path)
    allow = [np._core.multiarray.scalar, np._core.multiarray._reconstruct, np.ndarray, np.dtype,
             np.dtypes.Float64DType, np.dtypes.Int64DType]
    with torch.serialization.safe_globals(allow):
        theirs = torch.load(path, weights_only=True)
    with chainrule.serialization.safe_globals(allow):
        ours = chainrule.load(path, weights_only=True)
    assert type(ours["best_acc"]) is type(theirs["best_acc"]) is np.float64
    assert ours["best_acc"] == theirs["best_acc"] == 0.75
    assert ours["order"].dtype == theirs["order"].dtype and ours["order"].tolist() == theirs["order"].tolist()
    assert ours["step"] == theirs["step"] == 7
    import pickle

    with chainrule.serialization.safe_globals(allow[:-2]):  # the dtype classes not allowed: refused, as torch
        with pytest.raises(pickle.UnpicklingError):
            chainrule.load(path, weights_only=True)
    with torch.serialization.safe_globals(allow[:-2]):
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)


# ---------------------------------------------------------------- AveragedModel's multi_avg_fn per dtype group
def _bn_model(lib):
    lib.manual_seed(0)
    model = lib.nn.Sequential(lib.nn.Linear(4, 6), lib.nn.BatchNorm1d(6), lib.nn.ReLU(), lib.nn.Linear(6, 2))
    x = lib.randn(16, 4)
    return model, x


def _averaging_calls(lib):
    model, x = _bn_model(lib)
    calls = []

    def recording_ema(averaged_list, current_list, num_averaged):
        calls.append(([str(t.dtype).split(".")[-1] for t in averaged_list], int(num_averaged)))
        lib.optim.swa_utils.get_ema_multi_avg_fn(0.5)(averaged_list, current_list, num_averaged)

    averaged = lib.optim.swa_utils.AveragedModel(model, multi_avg_fn=recording_ema, use_buffers=True)
    optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
        averaged.update_parameters(model)
    return calls, [t.detach().numpy().tolist() for t in averaged.state_dict().values()]


def test_averaged_model_calls_multi_avg_fn_once_per_dtype_group():
    """torch groups the averaged tensors by (device, dtype) and calls ``multi_avg_fn`` once per group,
    so a BatchNorm's int64 ``num_batches_tracked`` comes in a list of its own; chainrule passed one
    list mixing float32 and int64. The averaged values are torch's too. (The order of the groups is
    that of torch's hash map, not compared.)"""
    our_calls, ours = _averaging_calls(chainrule)
    their_calls, theirs = _averaging_calls(torch)
    assert sorted(our_calls) == sorted(their_calls)
    assert all(len(set(dtypes)) == 1 for dtypes, _ in our_calls)
    np = pytest.importorskip("numpy")
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):  # the trained weights agree to float32 rounding, the counts exactly
        np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                                   rtol=1e-5, atol=1e-6)


def test_swa_multi_avg_fn_on_integer_buffers_raises_torchs_error():
    """``get_swa_multi_avg_fn()`` with ``use_buffers=True`` reaches BatchNorm's int64 batch count: torch
    divides it by addcdiv and refuses with its RuntimeError; chainrule truncated silently."""
    results = []
    for lib in (chainrule, torch):
        model, x = _bn_model(lib)
        averaged = lib.optim.swa_utils.AveragedModel(model, multi_avg_fn=lib.optim.swa_utils.get_swa_multi_avg_fn(),
                                                     use_buffers=True)
        model(x)
        averaged.update_parameters(model)
        model(x)
        with pytest.raises(RuntimeError) as caught:
            averaged.update_parameters(model)
        results.append(str(caught.value))
    assert results[0] == results[1] and results[0].startswith("Integer division with addcdiv")


# ---------------------------------------------------------------- LambdaLR / MultiplicativeLR refusing a number
@pytest.mark.parametrize("scheduler", ["LambdaLR", "MultiplicativeLR"])
@pytest.mark.parametrize("lr_lambda", [0.9, [0.9], ["x"]])
def test_lr_lambda_that_is_not_a_function_is_refused_in_torchs_words(scheduler, lr_lambda):
    """``MultiplicativeLR(opt, 0.9)`` (a factor where a function goes): torch says "lr_lambda should be a
    function, but got float", and LambdaLR fails calling it ("'float' object is not callable");
    chainrule said it in words of its own. (chainrule's scheduler errors name the scheduler first.)"""
    messages = []
    for lib in (chainrule, torch):
        optimizer = lib.optim.SGD(lib.nn.Linear(2, 2).parameters(), lr=0.1)
        with pytest.raises(TypeError) as caught:
            getattr(lib.optim.lr_scheduler, scheduler)(optimizer, lr_lambda)
        messages.append(str(caught.value))
    assert messages[0] == f"{scheduler}: {messages[1]}"


# ---------------------------------------------------------------- global registration hooks
def _registration_log(lib):
    module_py = lib.nn.modules.module
    log = []

    def on_parameter(module, name, param):
        log.append(("param", type(module).__name__, name, tuple(param.shape)))
        if name == "bias":  # a replacement, as meta-device initialisers return one
            return lib.nn.Parameter(lib.full(tuple(param.shape), 7.0))
        return None

    def on_buffer(module, name, buffer):
        log.append(("buffer", type(module).__name__, name, None if buffer is None else str(buffer.dtype).split(".")[-1]))
        return buffer * 5 if name == "scale" else None  # a replacement

    def on_module(module, name, submodule):
        log.append(("module", type(module).__name__, name, type(submodule).__name__))

    handles = [module_py.register_module_parameter_registration_hook(on_parameter),
               module_py.register_module_buffer_registration_hook(on_buffer),
               module_py.register_module_module_registration_hook(on_module)]
    lib.manual_seed(0)
    net = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3))
    net.head = lib.nn.Linear(3, 1)
    net.register_buffer("scale", lib.ones(1))
    registered_scale = net.scale.tolist()
    net.scale = lib.full((1,), 2.0)
    for handle in handles:
        handle.remove()
    net.tail = lib.nn.Linear(1, 1)  # after remove(): not seen
    return log, registered_scale, net.scale.tolist(), type(net.head.bias).__name__


def test_global_registration_hooks_see_what_torchs_see():
    """``nn.modules.module.register_module_{parameter,buffer,module}_registration_hook`` were missing
    (AttributeError). torch calls them on every registration, by method or by assignment, and a
    non-None return replaces the value."""
    ours = _registration_log(chainrule)
    theirs = _registration_log(torch)
    assert ours == theirs
    assert ours[1:] == ([5.0], [10.0], "Parameter")


# ---------------------------------------------------------------- an inference tensor's _version
@pytest.mark.parametrize("inside", [False, True])
def test_reading_an_inference_tensors_version_raises_torchs_error(inside):
    """``x._version`` of a tensor made under ``torch.inference_mode()``: torch says "Inference tensors
    do not track version counter."; chainrule raised the saved-for-backward error instead."""
    messages = []
    for lib in (chainrule, torch):
        with lib.inference_mode():
            x = lib.ones(3)
        with lib.inference_mode(inside):
            with pytest.raises(RuntimeError) as caught:
                x._version  # noqa: B018  (the read is the test)
        messages.append(str(caught.value))
        assert lib.ones(3)._version == 0
    assert messages[0] == messages[1] == "Inference tensors do not track version counter."


def test_a_custom_function_saving_an_inference_tensor_still_raises_the_saved_error():
    """Saving an inference tensor with ``ctx.save_for_backward`` stays torch's "Inference tensors cannot
    be saved for backward" (the saved version is read apart from ``_version``)."""
    messages = []
    for lib in (chainrule, torch):
        class Mul(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                ctx.save_for_backward(a, b)
                return a * b

            @staticmethod
            def backward(ctx, grad):
                a, b = ctx.saved_tensors
                return grad * b, grad * a

        with lib.inference_mode():
            x = lib.ones(2)
        w = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError) as caught:
            Mul.apply(w, x).sum().backward()
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and messages[0].startswith("Inference tensors cannot be saved for backward")
