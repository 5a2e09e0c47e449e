"""Session 32, lane mend: review mends of session 31's work, each checked against torch on the same
inputs (torch 2.13 CPU here; the device orders below were seen on torch 2.11 with CUDA on an H200)."""

import numpy as np
import pytest

import chainrule
from chainrule._backend import use_standin_cuda

torch = pytest.importorskip("torch")

# the integer kernels that call the array module themselves (ops.elementwise._kernel_arrays)
INTEGER_OPS = {
    "floor_divide": lambda m, x, y: x // y, "div_trunc": lambda m, x, y: m.div(x, y, rounding_mode="trunc"),
    "remainder": lambda m, x, y: x % y, "fmod": lambda m, x, y: m.fmod(x, y),
    "left_shift": lambda m, x, y: x << y, "right_shift": lambda m, x, y: x >> y,
    "bitwise_left_shift": lambda m, x, y: m.bitwise_left_shift(x, y),
    "gcd": lambda m, x, y: m.gcd(x, y), "lcm": lambda m, x, y: m.lcm(x, y),
}
LEFT = np.array([12, -7, 9, 30, 5], dtype=np.int64)
RIGHT = np.array([8, 3, -4], dtype=np.int64)


def _error(call):
    with pytest.raises(RuntimeError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("op", sorted(INTEGER_OPS))
def test_shapes_that_do_not_broadcast_raise_torchs_error(op):
    # the shifts passed NumPy's ValueError on as "bitwise_left_shift: operands could not be
    # broadcast together with shapes (5,) (3,) "; torch says which sizes differ, as the others did
    call = INTEGER_OPS[op]
    expected = _error(lambda: call(torch, torch.tensor(LEFT), torch.tensor(RIGHT)))
    assert _error(lambda: call(chainrule, chainrule.tensor(LEFT), chainrule.tensor(RIGHT))) == expected
    assert expected == "The size of tensor a (5) must match the size of tensor b (3) at non-singleton dimension 0"


@pytest.mark.parametrize("op", sorted(set(INTEGER_OPS) - {"gcd", "lcm"}))
def test_on_the_device_the_broadcast_error_comes_before_the_device_error(op):
    # torch's TensorIterator computes the shape before the device (CUDA torch: a cuda:0 tensor of 5
    # and a CPU tensor of 3 raise the size error for the shifts too, which raised the device error)
    call = INTEGER_OPS[op]
    expected = _error(lambda: call(torch, torch.tensor(LEFT), torch.tensor(RIGHT)))
    with use_standin_cuda():
        try:
            assert _error(lambda: call(chainrule, chainrule.tensor(LEFT, device="cuda"), chainrule.tensor(RIGHT))) == expected
            assert _error(lambda: call(chainrule, chainrule.tensor(LEFT), chainrule.tensor(RIGHT, device="cuda"))) == expected
            same_shape = chainrule.tensor(LEFT[::-1].copy())
            message = _error(lambda: call(chainrule, chainrule.tensor(LEFT, device="cuda"), same_shape))
            assert message.startswith("Expected all tensors to be on the same device, but found at least two devices, "
                                      "cuda:0 and cpu!")
            joined = call(chainrule, chainrule.tensor(LEFT, device="cuda"), chainrule.tensor(3))  # a 0-d CPU operand joins
            assert joined.device.type == "cuda"
            np.testing.assert_array_equal(joined.cpu().numpy(), call(torch, torch.tensor(LEFT), torch.tensor(3)).numpy())
        finally:
            chainrule.set_default_device(None)


BOOL_SHIFTS = {
    "tensor << tensor": lambda m, t: t << t, "tensor >> 0-d tensor": lambda m, t: t >> m.tensor(True),
    "tensor << True": lambda m, t: t << True, "True << tensor": lambda m, t: True << t,
    "bitwise_right_shift(True, tensor)": lambda m, t: m.bitwise_right_shift(True, t),
    "bitwise_left_shift out=int64": lambda m, t: m.bitwise_left_shift(t, t, out=m.empty(2, dtype=m.int64)),
}


@pytest.mark.parametrize("case", sorted(BOOL_SHIFTS))
def test_shifting_bools_by_bools_is_refused_as_torch_refuses_it(case):
    # two bools promote to bool, which torch's shift kernels have no instance for; chainrule
    # shifted them as int64 ([True, False] << [True, False] gave [2, 0])
    call = BOOL_SHIFTS[case]
    with pytest.raises(NotImplementedError) as expected:
        call(torch, torch.tensor([True, False]))
    with pytest.raises(NotImplementedError) as got:
        call(chainrule, chainrule.tensor([True, False]))
    assert str(got.value) == str(expected.value)


def test_a_bool_tensor_shifted_by_an_integer_is_shifted_in_the_promoted_dtype():
    for call in (lambda m, t: t << 1, lambda m, t: t << m.tensor(2), lambda m, t: 5 >> t):
        expected = call(torch, torch.tensor([True, False]))
        got = call(chainrule, chainrule.tensor([True, False]))
        assert str(got.dtype).split(".")[1] == str(expected.dtype).split(".")[1] == "int64"
        np.testing.assert_array_equal(got.numpy(), expected.numpy())


# ---------------------------------------------------------------- full backward hooks' grad_input
class _TwoInputs:
    """A module of (x, y, k) for either library: x * y * k + y."""

    @staticmethod
    def make(module):
        class TwoInputs(module.nn.Module):
            def forward(self, x, y, k=2.0):
                return x * y * k + y

        return TwoInputs()


def _hooked_backwards(module, x_requires_grad: bool, y_requires_grad: bool, times: int = 2):
    layer = _TwoInputs.make(module)
    seen = []

    def hook(_, grad_input, grad_output):
        seen.append(tuple(None if g is None else g.clone() for g in grad_input) + (grad_input,))

    layer.register_full_backward_hook(hook)
    x = module.tensor([1.0, 2.0], requires_grad=x_requires_grad)
    y = module.tensor([3.0, 4.0], requires_grad=y_requires_grad)
    out = layer(x, y, 3.0)
    for _ in range(times):
        out.sum().backward(retain_graph=True)
    return seen


@pytest.mark.parametrize("requires_grad", [(True, False), (False, True), (True, True)])
def test_full_backward_hooks_get_fresh_zeros_for_an_input_that_needs_no_gradient(requires_grad):
    # torch's grad_input holds zeros, not None, for a tensor input that needs no gradient while
    # another does, new ones on each backward: they are observable, so chainrule builds them too
    expected = _hooked_backwards(torch, *requires_grad)
    got = _hooked_backwards(chainrule, *requires_grad)
    assert len(got) == len(expected) == 2
    for ours, theirs in zip(got, expected):
        assert len(ours[-1]) == len(theirs[-1]) == 3 and ours[2] is None and theirs[2] is None
        for a, b in zip(ours[:2], theirs[:2]):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        for a, b in zip(ours[-1][:2], theirs[-1][:2]):
            assert a.requires_grad is b.requires_grad is False
    zeros_at = {(True, False): 1, (False, True): 0}.get(requires_grad, 0)  # (both: x's gradient)
    assert got[0][-1][zeros_at] is not got[1][-1][zeros_at]
    assert expected[0][-1][zeros_at] is not expected[1][-1][zeros_at]


def test_only_backward_pre_hooks_build_no_zeros_and_change_no_gradient(monkeypatch):
    # with no full hook nobody sees grad_input: its zeros were built and dropped on each backward
    from chainrule.nn.modules import module as module_file

    made = []
    real_zeros = module_file.zeros
    monkeypatch.setattr(module_file, "zeros", lambda *a, **k: made.append(a) or real_zeros(*a, **k))
    results = {}
    for library in (torch, chainrule):
        layer = _TwoInputs.make(library)
        grad_outputs = []
        layer.register_full_backward_pre_hook(lambda _, grad_output, seen=grad_outputs: seen.append(grad_output))
        x = library.tensor([1.0, 2.0], requires_grad=True)
        layer(x, library.tensor([3.0, 4.0]), 3.0).sum().backward()
        results[library] = (x.grad.numpy(), grad_outputs[0][0].numpy(), str(x.grad_fn))
    np.testing.assert_array_equal(results[chainrule][0], results[torch][0])
    np.testing.assert_array_equal(results[chainrule][1], results[torch][1])
    assert made == []
    layer = _TwoInputs.make(chainrule)
    layer.register_full_backward_hook(lambda *_: None)
    layer(chainrule.tensor([1.0, 2.0], requires_grad=True), chainrule.tensor([3.0, 4.0])).sum().backward()
    assert made == [((2,),)]  # a full hook: the one untracked input's zeros, once


KEPT_BY_HOOKS = {
    "full hook's grad_input": lambda layer, kept: layer.register_full_backward_hook(
        lambda _, grad_input, grad_output: kept.append(grad_input[0])),
    "full hook's grad_output": lambda layer, kept: layer.register_full_backward_hook(
        lambda _, grad_input, grad_output: kept.append(grad_output[0])),
    "pre-hook's grad_output": lambda layer, kept: layer.register_full_backward_pre_hook(
        lambda _, grad_output: kept.append(grad_output[0])),
}


@pytest.mark.parametrize("scale", [None, 3.0])
@pytest.mark.parametrize("case", sorted(KEPT_BY_HOOKS))
def test_a_gradient_a_module_hook_kept_is_not_the_leafs_grad_accumulated_later(case, scale):
    # the leaf's .grad stole the array the hook had been handed, so the second backward's
    # in-place accumulation into x.grad rewrote what the hook kept ([2, 5] became [4, 10]);
    # torch's AccumulateGrad copies a gradient someone else still holds
    results = {}
    for library in (torch, chainrule):
        class Layer(library.nn.Module):
            def forward(self, a):
                return a + 1.0 if scale is None else a * scale

        layer, kept = Layer(), []
        KEPT_BY_HOOKS[case](layer, kept)
        x = library.tensor([1.0, 2.0], requires_grad=True)
        out = layer(x) * library.tensor([2.0, 5.0])
        out.sum().backward(retain_graph=True)
        out.sum().backward()
        results[library] = [k.numpy().copy() for k in kept] + [x.grad.numpy().copy()]
    assert len(results[chainrule]) == len(results[torch]) == 3
    for ours, theirs in zip(results[chainrule], results[torch]):
        np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------- gcd/lcm's device check
# torch 2.11 with CUDA (an H200), by hand: gcd and lcm check devices in their generated CUDA
# wrapper before anything else, in these words, for a 0-d CPU tensor too; the same shapes and
# dtypes on one device reach the kernel's own checks
GCD_ON_CUDA = {
    ("gcd", "cuda 5", "cpu 0-d"): "but got other is on cpu, different from other tensors on cuda:0 "
                                  "(when checking argument in method wrapper_CUDA_gcd)",
    ("gcd", "cpu 0-d", "cuda 5"): "but got other is on cuda:0, different from other tensors on cpu "
                                  "(when checking argument in method wrapper_CUDA_gcd)",
    ("lcm", "cuda 5", "cpu 0-d"): "but got other is on cpu, different from other tensors on cuda:0 "
                                  "(when checking argument in method wrapper_CUDA_lcm)",
    ("gcd", "cuda 5", "cpu 3"): "but got other is on cpu, different from other tensors on cuda:0 "
                                "(when checking argument in method wrapper_CUDA_gcd)",
    ("gcd", "cuda 5 float", "cpu 5 float"): "but got other is on cpu, different from other tensors on cuda:0 "
                                            "(when checking argument in method wrapper_CUDA_gcd)",
}


def _operand(module, spec: str, device_name=None):
    where, *rest = spec.split()
    if rest[0] == "0-d":
        value = module.tensor(3)
    else:
        value = module.arange(1, int(rest[0]) + 1)
    if rest[-1] == "float":
        value = value.float()
    return value.to(device_name or where)


@pytest.mark.parametrize("case", sorted(GCD_ON_CUDA))
def test_gcd_and_lcm_refuse_a_cpu_operand_on_cuda_in_torchs_words(case):
    op, left, right = case
    with use_standin_cuda():
        try:
            message = _error(lambda: getattr(chainrule, op)(_operand(chainrule, left), _operand(chainrule, right)))
        finally:
            chainrule.set_default_device(None)
    assert message == "Expected all tensors to be on the same device, " + GCD_ON_CUDA[case]


@pytest.mark.parametrize("op", ["gcd", "lcm"])
def test_gcd_and_lcm_on_one_device_keep_their_own_checks(op):
    # the same operands all on the CPU: torch's own error or value, here and (one device) on the stand-in
    for left, right in (("cpu 5", "cpu 3"), ("cpu 5 float", "cpu 5 float"), ("cpu 5", "cpu 0-d")):
        theirs = getattr(torch, op)
        try:
            expected = theirs(_operand(torch, left), _operand(torch, right)).numpy()
        except (RuntimeError, NotImplementedError) as error:
            expected = (type(error), str(error))
        for device_name in ("cpu", "cuda"):
            with use_standin_cuda():
                try:
                    got = getattr(chainrule, op)(_operand(chainrule, left, device_name),
                                                 _operand(chainrule, right, device_name)).cpu().numpy()
                except (RuntimeError, NotImplementedError) as error:
                    got = (type(error), str(error))
                finally:
                    chainrule.set_default_device(None)
            if isinstance(expected, tuple):  # (on CUDA torch names its gcd_cuda kernel: the type only)
                assert (got if device_name == "cpu" else got[0]) == (expected if device_name == "cpu" else expected[0])
            else:
                np.testing.assert_array_equal(got, expected)


def test_gcd_and_lcm_refuse_a_number_or_none_as_other_in_torchs_words():
    for op in ("gcd", "lcm"):
        for other in (None, 2):
            with pytest.raises(TypeError) as expected:
                getattr(torch, op)(torch.tensor([4]), other)
            with pytest.raises(TypeError) as got:
                getattr(chainrule, op)(chainrule.tensor([4]), other)
            assert str(got.value) == str(expected.value)


# comparisons and bitwise and/or/xor on a device call NumPy's ufunc themselves: they checked the
# device first; torch's TensorIterator (seen on CUDA torch 2.11) checks the shapes first
DEVICE_UFUNC_OPS = {
    "and": lambda m, x, y: x & y, "xor": lambda m, x, y: x ^ y, "eq": lambda m, x, y: x == y,
    "lt": lambda m, x, y: x < y, "logical_and": lambda m, x, y: m.logical_and(x, y),
}


@pytest.mark.parametrize("op", sorted(DEVICE_UFUNC_OPS))
def test_comparisons_and_bitwise_ops_on_the_device_check_shapes_before_devices(op):
    call = DEVICE_UFUNC_OPS[op]
    expected = _error(lambda: call(torch, torch.tensor(LEFT), torch.tensor(RIGHT)))
    with use_standin_cuda():
        try:
            assert _error(lambda: call(chainrule, chainrule.tensor(LEFT, device="cuda"), chainrule.tensor(RIGHT))) == expected
            message = _error(lambda: call(chainrule, chainrule.tensor(LEFT, device="cuda"), chainrule.tensor(LEFT)))
            assert message.startswith("Expected all tensors to be on the same device, but found at least two devices, "
                                      "cuda:0 and cpu!")
            joined = call(chainrule, chainrule.tensor(LEFT, device="cuda"), chainrule.tensor(9))  # a 0-d CPU operand joins
            assert joined.device.type == "cuda"
            np.testing.assert_array_equal(joined.cpu().numpy(), call(torch, torch.tensor(LEFT), torch.tensor(9)).numpy())
        finally:
            chainrule.set_default_device(None)
