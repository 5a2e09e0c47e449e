"""torch's __torch_dispatch__ layer against torch 2.13: TorchDispatchMode (what a logging mode sees
of small programs, forward and backward; a mode that changes results; nesting and the switches that
turn the layer off) and the aten overloads handed to handlers."""

import numpy as np
import pytest
import torch as real_torch

import chainrule
from tests._heap import frozen_heap

LIBRARIES = pytest.mark.parametrize("lib", [real_torch, chainrule], ids=["torch", "chainrule"])


def _logging_mode(lib):
    base = lib.utils._python_dispatch.TorchDispatchMode

    class Logging(base):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    return Logging()


def _without_detach(ops):
    # torch's autograd detaches the tensors it saves through a wrapper subclass too; chainrule shows a mode alone
    return [op for op in ops if op != "aten.detach.default"]


def _mlp_step(lib):
    F = lib.nn.functional
    lib.manual_seed(0)
    x = lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
    w = lib.tensor(np.linspace(-0.5, 0.7, 15, dtype=np.float32).reshape(5, 3), requires_grad=True)
    b = lib.tensor(np.linspace(0.1, -0.2, 5, dtype=np.float32), requires_grad=True)
    target = lib.tensor([0, 1, 2, 3])
    mode = _logging_mode(lib)
    with mode:
        loss = F.cross_entropy(F.relu(F.linear(x, w, b)), target)
        forward_ops = list(mode.ops)
        loss.backward()
    return loss.item(), w.grad.numpy(), b.grad.numpy(), forward_ops, mode.ops[len(forward_ops):]


def test_logging_mode_sees_an_mlp_step_as_torch_does():
    loss, w_grad, b_grad, forward_ops, backward_ops = _mlp_step(chainrule)
    t_loss, t_w_grad, t_b_grad, t_forward_ops, t_backward_ops = _mlp_step(real_torch)
    np.testing.assert_allclose(loss, t_loss, rtol=1e-6)
    np.testing.assert_allclose(w_grad, t_w_grad, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b_grad, t_b_grad, rtol=1e-5, atol=1e-7)
    # (the detaches: autograd saving relu's and _log_softmax's results for the backward)
    assert t_forward_ops == forward_ops == [
        "aten.t.default", "aten.addmm.default", "aten.relu.default", "aten.detach.default",
        "aten._log_softmax.default", "aten.detach.default", "aten.nll_loss_forward.default"]
    # the backward's ops: chainrule's rules run their own ops (relu's mask is applied on arrays,
    # torch's threshold_backward is not shown); the fused backward kernels are named as torch's
    for op in ("aten.nll_loss_backward.default", "aten._log_softmax_backward_data.default", "aten.mm.default"):
        assert op in t_backward_ops and op in backward_ops


def _conv_forward_ops(lib):
    lib.manual_seed(0)
    conv = lib.nn.Conv2d(2, 3, 3)
    x = lib.randn(1, 2, 5, 5)
    mode = _logging_mode(lib)
    with mode:
        out = lib.nn.functional.max_pool2d(conv(x).tanh(), 2).flatten(1).sum()
        forward_ops = list(mode.ops)
        out.backward()
    return forward_ops, mode.ops[len(forward_ops):]


def test_logging_mode_sees_a_conv_net_as_torch_does():
    forward_ops, backward_ops = _conv_forward_ops(chainrule)
    t_forward_ops, t_backward_ops = _conv_forward_ops(real_torch)
    assert forward_ops == t_forward_ops  # (tanh's saved result detached, as torch's autograd does)
    assert "aten.convolution_backward.default" in backward_ops
    assert "aten.convolution_backward.default" in t_backward_ops


@LIBRARIES
def test_views_operators_and_reductions_reach_the_mode(lib):
    x = lib.ones(4, 3)
    mode = _logging_mode(lib)
    with mode:
        lib.cat([x, x * x]).softmax(-1).sigmoid().sum(0)
        x[0]
        x[:, 1:]
        x + x  # the operator's unrecorded fast path steps aside while a mode is entered
    assert mode.ops == ["aten.mul.Tensor", "aten.cat.default", "aten._softmax.default", "aten.sigmoid.default",
                        "aten.sum.dim_IntList",
                        "aten.select.int", "aten.slice.Tensor", "aten.add.Tensor"]


def _in_place_program(lib):
    a = lib.tensor(np.linspace(-1, 1, 12).reshape(3, 4), dtype=lib.float32, requires_grad=True)
    mode = _logging_mode(lib)
    with mode:
        b = a * 2
        b.mul_(3)
        b[0].add_(1)
        b[:, 1:3]
        out = b.exp().mean()
        forward_ops = list(mode.ops)
        out.backward()
    return forward_ops, out.item(), a.grad.numpy()


def test_in_place_methods_reach_the_mode_and_stay_recorded():
    forward_ops, value, grad = _in_place_program(chainrule)
    t_forward_ops, t_value, t_grad = _in_place_program(real_torch)
    assert forward_ops == t_forward_ops == [
        "aten.mul.Tensor", "aten.mul_.Tensor", "aten.select.int", "aten.add_.Tensor", "aten.slice.Tensor",
        "aten.exp.default", "aten.detach.default", "aten.mean.default"]
    np.testing.assert_allclose(value, t_value, rtol=1e-6)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-6)


def _factory_calls(lib):
    calls = []

    class Record(lib.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            calls.append((str(func), repr(args), repr(sorted((k, str(v)) for k, v in (kwargs or {}).items()))))
            return func(*args, **(kwargs or {}))

    with Record():
        made = [lib.ones(2, 3, requires_grad=True), lib.zeros((2,), dtype=lib.float64), lib.full((2,), 3.0),
                lib.empty(1)]
    return calls, [(tuple(t.shape), str(t.dtype).rsplit(".", 1)[1], t.requires_grad, t.is_leaf) for t in made]


def test_factory_functions_reach_the_mode_as_torch_shows_them():
    calls, made = _factory_calls(chainrule)
    t_calls, t_made = _factory_calls(real_torch)
    assert [(name, args, kwargs.replace("chainrule.", "torch.")) for name, args, kwargs in calls] == t_calls
    assert [call[0] for call in calls] == ["aten.ones.default", "aten.zeros.default", "aten.full.default",
                                           "aten.empty.memory_format"]
    assert made == t_made


def _doubling_products(lib):
    class DoubleProducts(lib.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            return out * 2 if func == lib.ops.aten.mul.Tensor else out

    p = lib.tensor([1.0, 2.0, -3.0], requires_grad=True)
    with DoubleProducts():
        q = (p * p).sum()
        q.backward()  # the backward's products are doubled too
    return q.item(), p.grad.numpy(), q.grad_fn.name()


def test_a_mode_that_changes_results_changes_them_as_torch_does():
    value, grad, node = _doubling_products(chainrule)
    t_value, t_grad, t_node = _doubling_products(real_torch)
    assert value == t_value == 28.0
    np.testing.assert_array_equal(grad, t_grad)
    assert node == t_node == "SumBackward0"


@LIBRARIES
def test_autograd_records_above_the_mode(lib):
    x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    with _logging_mode(lib):
        y = (x.exp() * x).sin()
        (grad,) = lib.autograd.grad(y.sum(), x)
    assert y.grad_fn.name() == "SinBackward0" and y.requires_grad
    expected = np.cos(np.exp([0.5, -1.0, 2.0]) * [0.5, -1.0, 2.0]) * np.exp([0.5, -1.0, 2.0]) * (1 + np.array(
        [0.5, -1.0, 2.0]))
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-12)


def test_gradients_under_a_logging_mode_pass_gradcheck():
    x = chainrule.tensor([0.3, -1.2, 2.0], dtype=chainrule.float64, requires_grad=True)
    w = chainrule.tensor([[0.5, -0.1, 0.2], [1.0, 0.3, -0.7]], dtype=chainrule.float64, requires_grad=True)
    mode = _logging_mode(chainrule)
    with mode:
        assert chainrule.autograd.gradcheck(lambda x, w: (w @ x.exp()).tanh() * x.sum(), (x, w))
    assert "aten.tanh.default" in mode.ops


@LIBRARIES
def test_modes_nest_and_each_is_off_inside_its_own_handler(lib):
    dispatch = lib.utils._python_dispatch
    seen = []

    class Named(dispatch.TorchDispatchMode):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            current = dispatch._get_current_dispatch_mode()
            seen.append((self.name, str(func), None if current is None else current.name,
                         len(dispatch._get_current_dispatch_mode_stack())))
            return func(*args, **(kwargs or {}))

    outer, inner = Named("outer"), Named("inner")
    x = lib.ones(2)
    with outer, inner:
        assert dispatch._get_current_dispatch_mode() is inner
        assert dispatch._get_current_dispatch_mode_stack() == [outer, inner]
        lib.neg(x)
    assert seen == [("inner", "aten.neg.default", "outer", 1), ("outer", "aten.neg.default", None, 0)]
    assert dispatch._get_current_dispatch_mode() is None


@LIBRARIES
def test_the_switches_that_turn_the_layer_off(lib):
    dispatch = lib.utils._python_dispatch
    x = lib.tensor([1.0, 2.0])
    mode = _logging_mode(lib)
    with mode:
        with lib._C._DisableTorchDispatch():
            x.exp()
        with dispatch._disable_current_modes() as modes:
            assert modes == [mode]
            x.sin()
        with dispatch._pop_mode_temporarily() as popped:
            assert popped is mode and dispatch._get_current_dispatch_mode() is None
            x.cos()
        x.tanh()
    assert mode.ops == ["aten.tanh.default"]


@LIBRARIES
def test_the_overload_a_handler_gets(lib):
    got = {}

    class Keep(lib.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            got.setdefault("func", func)
            got.setdefault("types", types)
            return func(*args, **(kwargs or {}))

    a, b = lib.tensor([1.0, 2.0]), lib.tensor([3.0, 4.0])
    with Keep():
        lib.mul(a, b)
    func = got["func"]
    assert str(func) == "aten.mul.Tensor" and func.__name__ == "mul.Tensor" and func.name() == "aten::mul.Tensor"
    assert func == lib.ops.aten.mul.Tensor and hash(func) == hash(lib.ops.aten.mul.Tensor)
    assert {lib.ops.aten.mul.Tensor: "found"}[func] == "found"
    assert func.overloadpacket == lib.ops.aten.mul and str(func.overloadpacket) == "aten.mul"
    assert got["types"] == ()
    np.testing.assert_array_equal(func(a, b).numpy(), [3.0, 8.0])  # outside the mode: runs the op


@LIBRARIES
def test_the_helpers_for_wrapper_subclasses_on_plain_tensors(lib):
    dispatch = lib.utils._python_dispatch
    x = lib.tensor([1.0])
    assert not dispatch.is_traceable_wrapper_subclass(x)
    out = lib.tensor([2.0])
    assert dispatch.return_and_correct_aliasing(lib.ops.aten.add.Tensor, (x, x), {}, out) is out


@LIBRARIES
def test_a_wrapper_that_flattens_is_traceable_and_transformable(lib):
    dispatch = lib.utils._python_dispatch

    class Pair(lib.Tensor):
        @staticmethod
        def __new__(cls, first, second):
            wrapper = lib.Tensor._make_wrapper_subclass(cls, first.size(), dtype=first.dtype)
            wrapper.first, wrapper.second = first, second
            return wrapper

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

        def __tensor_flatten__(self):
            return ["first", "second"], None

        @staticmethod
        def __tensor_unflatten__(inner, context, outer_size, outer_stride):
            return Pair(inner["first"], inner["second"])

    pair = Pair(lib.tensor([1.0, 2.0]), lib.tensor([3.0, 4.0]))
    assert dispatch.is_traceable_wrapper_subclass(pair)
    doubled = dispatch.transform_subclass(pair, lambda name, inner: inner * 2)
    assert type(doubled) is Pair
    np.testing.assert_array_equal(doubled.second.numpy(), [6.0, 8.0])


def _flops_and_profile(lib):
    from importlib import import_module

    flop_counter = import_module(lib.__name__ + ".utils.flop_counter")
    a = lib.ones(8, 16, requires_grad=True)
    b = lib.ones(16, 4)
    mode = _logging_mode(lib)
    with mode, flop_counter.FlopCounterMode(display=False) as counter:
        lib.mm(a, b).sum().backward()
    with lib.profiler.profile() as prof, _logging_mode(lib):
        lib.mm(a, b)
    return counter.get_total_flops(), "aten.mm.default" in mode.ops, [e.name for e in prof.events()]


def test_flop_counter_and_profiler_inside_a_mode():
    flops, logged, events = _flops_and_profile(chainrule)
    t_flops, t_logged, t_events = _flops_and_profile(real_torch)
    assert flops == t_flops == 2 * (2 * 8 * 16 * 4)  # the product and its gradient for a
    assert logged and t_logged
    assert "aten::mm" in events and "aten::mm" in t_events


# ---------------------------------------------------------------- wrapper subclasses
def _logging_tensor_class(lib, log):
    from importlib import import_module

    tree_map = import_module(lib.__name__ + ".utils._pytree").tree_map

    class LoggingTensor(lib.Tensor):
        """torch's docs' wrapper: the values live in ``elem``; every op is logged and rewrapped."""

        @staticmethod
        def __new__(cls, elem, requires_grad=False):
            wrapper = lib.Tensor._make_wrapper_subclass(cls, elem.size(), dtype=elem.dtype,
                                                        requires_grad=requires_grad)
            wrapper.elem = elem
            return wrapper

        __torch_function__ = lib._C._disabled_torch_function_impl

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            def unwrap(e):
                return e.elem if isinstance(e, LoggingTensor) else e

            def wrap(e):
                return LoggingTensor(e) if isinstance(e, lib.Tensor) else e

            log.append(str(func))
            return tree_map(wrap, func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs or {})))

    return LoggingTensor


def _logging_tensor_program(lib):
    log = []
    LoggingTensor = _logging_tensor_class(lib, log)
    x = LoggingTensor(lib.tensor([1.0, -2.0, 3.0]), requires_grad=True)
    w = lib.tensor([0.5, 0.25, 2.0])
    y = (x * w).exp().relu().sum()
    forward_log = list(log)
    y.backward()
    return (type(y).__name__, y.elem.item(), y.grad_fn.name(), type(x.grad).__name__, x.grad.elem.numpy(),
            forward_log, log[len(forward_log):])


def test_a_logging_wrapper_subclass_sees_every_op_and_gets_its_gradient():
    name, value, node, grad_type, grad, forward_log, backward_log = _logging_tensor_program(chainrule)
    t_name, t_value, t_node, t_grad_type, t_grad, t_forward_log, t_backward_log = _logging_tensor_program(real_torch)
    assert name == t_name == "LoggingTensor" and node == t_node == "SumBackward0"
    np.testing.assert_allclose(value, t_value, rtol=1e-6)
    assert grad_type == t_grad_type == "LoggingTensor"
    np.testing.assert_allclose(grad, t_grad, rtol=1e-6)
    assert forward_log == _without_detach(t_forward_log)
    # each node reaches the wrapper as one backward op (torch shows the ops its formula runs)
    assert backward_log == ["aten.ones_like.default", "aten.sum_backward.default", "aten.threshold_backward.default",
                            "aten.exp_backward.default", "aten.mul_backward.default"]
    assert t_backward_log[0] == "aten.ones_like.default"  # the seed is made by the wrapper as well
    assert "aten.threshold_backward.default" in t_backward_log


def _mode_over_a_wrapper(lib):
    log = []
    LoggingTensor = _logging_tensor_class(lib, log)

    class Mode(lib.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            log.append(f"mode {func} {[kind.__name__ for kind in types]}")
            return func(*args, **(kwargs or {}))

    x = LoggingTensor(lib.tensor([1.0, -2.0, 3.0]), requires_grad=True)
    with Mode():
        y = (x * 2).sum()
    y.backward()
    return log, type(y).__name__, y.grad_fn.name(), type(x.grad).__name__, x.grad.elem.numpy()


def test_a_mode_sees_an_op_on_a_wrapper_before_the_wrapper_does():
    log, name, node, grad_type, grad = _mode_over_a_wrapper(chainrule)
    t_log, t_name, t_node, t_grad_type, t_grad = _mode_over_a_wrapper(real_torch)
    forward = ["mode aten.mul.Tensor ['LoggingTensor']", "aten.mul.Tensor",
               "mode aten.sum.default ['LoggingTensor']", "aten.sum.default"]
    assert log[:4] == t_log[:4] == forward
    assert (name, node, grad_type) == (t_name, t_node, t_grad_type) == ("LoggingTensor", "SumBackward0",
                                                                        "LoggingTensor")
    np.testing.assert_array_equal(grad, t_grad)


def _in_place_on_a_wrapper(lib):
    log = []
    LoggingTensor = _logging_tensor_class(lib, log)
    x = LoggingTensor(lib.tensor([1.0, -2.0, 3.0]))
    x.add_(1)
    x.mul_(lib.tensor([2.0, 2.0, 0.5]))
    return log, x.elem.numpy()


def test_in_place_methods_on_a_wrapper_go_to_its_handler():
    log, values = _in_place_on_a_wrapper(chainrule)
    t_log, t_values = _in_place_on_a_wrapper(real_torch)
    assert log == t_log == ["aten.add_.Tensor", "aten.mul_.Tensor"]
    np.testing.assert_array_equal(values, t_values)


def _scaled_tensor_program(lib):
    class Scaled(lib.Tensor):
        """A tensor stored as int8 values times one scale: every op sees the dequantized values."""

        @staticmethod
        def __new__(cls, values, scale, requires_grad=False):
            wrapper = lib.Tensor._make_wrapper_subclass(cls, values.size(), dtype=lib.float32,
                                                        requires_grad=requires_grad)
            wrapper.values, wrapper.scale = values, scale
            return wrapper

        __torch_function__ = lib._C._disabled_torch_function_impl

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            def dense(e):
                return e.values.float() * e.scale if isinstance(e, Scaled) else e

            return func(*[dense(a) for a in args], **{k: dense(v) for k, v in (kwargs or {}).items()})

    x = Scaled(lib.tensor([[3, -1], [2, 5]], dtype=lib.int8), 0.5, requires_grad=True)
    w = lib.tensor([[1.0, 2.0], [-1.0, 0.5]], requires_grad=True)
    y = lib.mm(x, w).tanh().sum()
    y.backward()
    return type(y).__name__, y.item(), w.grad.numpy(), type(x.grad).__name__, x.grad.numpy()


def test_a_scaled_wrapper_subclass_computes_and_differentiates_as_torch():
    name, value, w_grad, x_grad_type, x_grad = _scaled_tensor_program(chainrule)
    t_name, t_value, t_w_grad, t_x_grad_type, t_x_grad = _scaled_tensor_program(real_torch)
    assert name == t_name == "Tensor" and x_grad_type == t_x_grad_type == "Tensor"
    np.testing.assert_allclose(value, t_value, rtol=1e-6)
    np.testing.assert_allclose(w_grad, t_w_grad, rtol=1e-5)
    np.testing.assert_allclose(x_grad, t_x_grad, rtol=1e-5)


@LIBRARIES
def test_a_class_with_torch_dispatch_has_torch_function_disabled(lib):
    class Wrapper(lib.Tensor):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

    class Both(lib.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return super().__torch_function__(func, types, args, kwargs)

        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

    assert Wrapper.__torch_function__ is lib._C._disabled_torch_function_impl
    assert Both.__torch_function__ is not lib._C._disabled_torch_function_impl


@LIBRARIES
def test_make_wrapper_subclass_gives_the_metadata_asked_for(lib):
    class Wrapper(lib.Tensor):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

    w = lib.Tensor._make_wrapper_subclass(Wrapper, (2, 3), dtype=lib.float64, requires_grad=True)
    assert type(w) is Wrapper and tuple(w.shape) == (2, 3) and w.dtype == lib.float64
    assert w.requires_grad and w.is_leaf
    with pytest.raises(TypeError, match="Multiple dispatch failed for 'torch._ops.aten.neg.default'; all "
                       "__torch_dispatch__ handlers returned NotImplemented:\n\n  - tensor subclass <class"):
        lib.neg(w)


def test_ops_stop_looking_for_wrappers_once_none_is_alive():
    import gc

    from chainrule.autograd import function

    class Wrapper(chainrule.Tensor):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return NotImplemented

    with frozen_heap():  # (the collection below walks only what the test made)
        wrapper = chainrule.Tensor._make_wrapper_subclass(Wrapper, (2,))
        assert function.active_dispatch is not None
        del wrapper
        gc.collect()
    assert function.active_dispatch is None  # the hot path's one check again


def _comparisons_on_a_wrapper(lib):
    log = []
    LoggingTensor = _logging_tensor_class(lib, log)
    x = LoggingTensor(lib.tensor([1.0, -2.0, 3.0]))
    y = lib.tensor([1.0, 0.0, 5.0])
    results = [x > 0, x == y, lib.logical_and(x < 2, x.ne(-2.0))]
    return [type(r).__name__ for r in results], [r.elem.tolist() for r in results], log


def test_comparisons_reach_a_wrapper_as_torchs_aten_ops():
    # comparisons record no node; they reach the wrapper (so its values, not its placeholder, are compared)
    assert _comparisons_on_a_wrapper(chainrule) == _comparisons_on_a_wrapper(real_torch)
