"""Device error labels and small edges, session 35 (lane mendC), each checked against torch 2.13.

A case is a function of the library (``torch`` or ``chainrule``); what a user sees of it (its
value, or its error's type and message) must be torch's. torch here has no GPU: on the stand-in
'cuda' device chainrule's error must be torch's CPU one with the device's names in it."""

from __future__ import annotations

import warnings

import pytest

import chainrule
from chainrule._backend import use_standin_cuda

torch = pytest.importorskip("torch")


def outcome(case, lib, on_standin_cuda=False):
    """What ``case(lib)`` shows a user: ("ok", its value as lists or a plain value) or ("error", the
    exception's type, its message), with the warnings it gave (category and message) last."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if on_standin_cuda:
                with use_standin_cuda():
                    result = case(lib)
            else:
                result = case(lib)
            if isinstance(result, (lib.Tensor, tuple, list)):
                result = [r.tolist() if isinstance(r, lib.Tensor) else r for r in result] \
                    if isinstance(result, (tuple, list)) else (str(result.dtype).split(".")[-1], result.tolist())
            shown = ("ok", result)
        except Exception as error:  # the error is part of what is compared
            shown = ("error", type(error).__name__, str(error))
    return (*shown, [(w.category.__name__, str(w.message)) for w in caught])


# --- 1. a mixed-device error names torch's op, not the explainer's label -------------------------

BINARY_OPS = ["add", "sub", "maximum", "minimum", "fmax", "fmin"]


@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("order", ["cuda, cpu", "cpu, cuda"])
def test_a_binary_op_across_devices_names_torchs_op(op, order):
    def case(lib):
        on_device, on_host = lib.tensor([1.0, 2.0], device="cuda"), lib.tensor([1.0, 3.0])
        return getattr(lib, op)(*((on_device, on_host) if order == "cuda, cpu" else (on_host, on_device)))

    _, kind, message, _ = outcome(case, chainrule, on_standin_cuda=True)
    assert kind == "RuntimeError"
    assert message.startswith("Expected all tensors to be on the same device, but found at least two devices, ")
    assert message.endswith(f"(when checking the arguments of {getattr(torch, op).__name__})")



# composites, named after themselves, not after the first op they are built from
COMPOSITES = {"rsub": 2, "floor_divide": 2, "ldexp": 2, "logaddexp2": 2, "float_power": 2, "dist": 2, "vdot": 2, "lerp": 3, "addcmul": 3, "addcdiv": 3}


@pytest.mark.parametrize("op", COMPOSITES)
@pytest.mark.parametrize("host_position", [0, 1])
def test_a_composite_across_devices_names_itself(op, host_position):
    def case(lib):
        operands = [lib.full((2,), 1.5, device="cuda") for _ in range(COMPOSITES[op])]
        operands[host_position] = lib.full((2,), 1.5)
        return getattr(lib, op)(*operands)

    _, kind, message, _ = outcome(case, chainrule, on_standin_cuda=True)
    assert kind == "RuntimeError"
    assert message.startswith("Expected all tensors to be on the same device, but found at least two devices, ")
    assert message.endswith(f"(when checking the arguments of {op})")

# --- 2. on the device, a kernel's dtype error names the device's kernel --------------------------

# (op, dtype of the operands, torch's CPU kernel, its CUDA kernel: aten/src/ATen/native/cuda's
# CompareKernels.cu, BinaryBitwiseOpsKernels.cu, BinaryShiftOpsKernels.cu, UnaryOpsKernel.cu)
KERNEL_DTYPE_CASES = [
    *[(op, "complex64", f"{op}_cpu", "compare_cuda") for op in ("lt", "le", "gt", "ge")],
    *[(op, "float8_e4m3fn", f"{op}_cpu", "compare_cuda") for op in ("lt", "ge")],
    *[(op, "float32", f"{op}_cpu", f"{op}_cuda") for op in ("bitwise_and", "bitwise_or", "bitwise_xor")],
    ("bitwise_left_shift", "float32", "lshift_cpu", "lshift_cuda"),
    ("bitwise_right_shift", "float64", "rshift_cpu", "rshift_cuda"),
    ("bitwise_not", "float32", "bitwise_not_cpu", "bitwise_not_cuda"),
]


def _kernel_dtype_case(op, dtype, device, other_shape=(3,)):
    def case(lib):
        a = lib.ones(3).to(getattr(lib, dtype)).to(device)
        if op == "bitwise_not":
            return a.bitwise_not()
        return getattr(lib, op)(a, lib.ones(other_shape).to(getattr(lib, dtype)).to(device))
    return case


@pytest.mark.parametrize("op, dtype, cpu_kernel, cuda_kernel", KERNEL_DTYPE_CASES)
def test_a_kernel_dtype_error_names_the_kernel_of_the_device(op, dtype, cpu_kernel, cuda_kernel):
    on_cpu = outcome(_kernel_dtype_case(op, dtype, "cpu"), torch)
    assert on_cpu[:2] == ("error", "NotImplementedError") and cpu_kernel in on_cpu[2]
    assert outcome(_kernel_dtype_case(op, dtype, "cpu"), chainrule) == on_cpu
    on_device = outcome(_kernel_dtype_case(op, dtype, "cuda"), chainrule, on_standin_cuda=True)
    assert on_device == (*on_cpu[:2], on_cpu[2].replace(cpu_kernel, cuda_kernel), on_cpu[3])


@pytest.mark.parametrize("op, dtype", [("lt", "complex64"), ("ge", "float8_e4m3fn"), ("bitwise_and", "float32")])
def test_a_kernel_dtype_error_comes_after_the_broadcast_check(op, dtype):
    """TensorIterator broadcasts the operands before it dispatches to a kernel."""
    case = _kernel_dtype_case(op, dtype, "cpu", other_shape=(4,))
    assert outcome(case, chainrule) == outcome(case, torch)


# --- 3. small edges ------------------------------------------------------------------------------

def assert_as_torch(case):
    assert outcome(case, chainrule) == outcome(case, torch)


@pytest.mark.parametrize("layer", ["GRU", "RNN"])
@pytest.mark.parametrize("hx", ["a 1-tuple", "a list", "an int"])
@pytest.mark.parametrize("batched", [True, False])
def test_an_rnn_given_a_state_that_is_no_tensor_raises_torchs_attribute_error(layer, hx, batched):
    def case(lib):
        lib.manual_seed(0)
        state = lib.zeros(1, 1, 3) if batched else lib.zeros(1, 3)
        given = {"a 1-tuple": (state,), "a list": [state], "an int": 3}[hx]
        return getattr(lib.nn, layer)(2, 3)(lib.zeros(4, 1, 2) if batched else lib.zeros(4, 2), given)[0]
    assert_as_torch(case)



@pytest.mark.parametrize("length, index", [(0, -1), (0, -2), (0, 0), (3, -1), (3, -3), (3, -4), (3, 0), (3, 1), (3, 3)])
def test_module_list_insert_at_a_negative_index_raises_torchs_key_error(length, index):
    def case(lib):
        modules = lib.nn.ModuleList([lib.nn.Linear(1, 1), lib.nn.ReLU(), lib.nn.Tanh()][:length])
        modules.insert(index, lib.nn.Sigmoid())
        return [type(m).__name__ for m in modules]
    assert_as_torch(case)


@pytest.mark.parametrize("batch_shape, reinterpreted", [((0, 3), 1), ((0, 3), 2), ((2, 0), 1), ((2, 0, 3), 1),
                                                        ((2, 3), 1), ((4, 2, 3), 2)])
@pytest.mark.parametrize("method", ["log_prob", "entropy", "kl"])
def test_independent_sums_its_rightmost_dims_as_torch(batch_shape, reinterpreted, method):
    """torch sums by a reshape to (..., -1), ambiguous (an error) for a batch with no elements."""
    def case(lib):
        d = lib.distributions
        def independent(loc):
            return d.Independent(d.Normal(lib.full(batch_shape, loc), lib.ones(batch_shape)), reinterpreted)
        if method == "log_prob":
            return independent(0.0).log_prob(lib.full(batch_shape, 0.5))
        if method == "entropy":
            return independent(0.0).entropy()
        return d.kl_divergence(independent(0.0), independent(1.0))
    assert_as_torch(case)


PRODUCT_SHAPES = {"empty batch": ((0, 2, 3), (0, 3, 4)), "no rows": ((2, 0, 3), (2, 3, 4)),
                  "no columns": ((2, 2, 3), (2, 3, 0)), "empty inner dim": ((2, 2, 0), (2, 0, 4)),
                  "full": ((2, 2, 3), (2, 3, 4)), "bad inner dim": ((2, 2, 3), (2, 4, 4))}
PRODUCT_DTYPES = [("float64", "float32"), ("float32", "float64"), ("int64", "float32"), ("float32", "bool"),
                  ("bool", "int64"), ("bool", "bool"), ("int32", "int64")]


@pytest.mark.parametrize("op", ["bmm", "matmul"])
@pytest.mark.parametrize("shapes", PRODUCT_SHAPES.values(), ids=PRODUCT_SHAPES.keys())
@pytest.mark.parametrize("dtypes", PRODUCT_DTYPES, ids="-".join)
def test_a_batched_product_with_nothing_to_compute_has_mat2s_dtype(op, shapes, dtypes):
    """torch's bmm returns before its kernel (where dtypes are checked) when the result is empty or
    the inner dim is: zeros of mat2's dtype, whatever input's."""
    def case(lib):
        return getattr(lib, op)(*(lib.zeros(shape, dtype=getattr(lib, dtype)) for shape, dtype in zip(shapes, dtypes)))
    assert_as_torch(case)


@pytest.mark.parametrize("op", ["bmm", "matmul"])
def test_the_gradient_of_an_empty_mixed_dtype_product_has_its_inputs_dtype(op):
    def case(lib):
        a = lib.zeros(2, 2, 0, dtype=lib.float64, requires_grad=True)
        getattr(lib, op)(a, lib.ones(2, 0, 4)).sum().backward()
        return a.grad
    assert_as_torch(case)


PRODUCT_OPERAND_SHAPES = [((2, 3), (3, 4)), ((2, 2, 3), (2, 3, 4)), ((3,), (3,)), ((2, 3), (3,)), ((2, 2, 3), (3,))]


@pytest.mark.parametrize("op", ["matmul", "mm", "bmm", "mv", "dot"])
@pytest.mark.parametrize("shapes", PRODUCT_OPERAND_SHAPES, ids=str)
@pytest.mark.parametrize("out_shape, out_dtype", [((5, 5), "float32"), ((2, 4), "float64"), ((2, 4), "int64")])
@pytest.mark.parametrize("requiring_grad", ["input", "other", "out"])
def test_a_product_with_out_refuses_autograd_before_its_kernel_checks(op, shapes, out_shape, out_dtype,
                                                                      requiring_grad):
    """torch's autograd layer refuses an out= call before the kernel checks shapes or dtypes."""
    def case(lib):
        a = lib.ones(shapes[0], requires_grad=requiring_grad == "input")
        b = lib.ones(shapes[1], requires_grad=requiring_grad == "other")
        out = lib.zeros(out_shape, dtype=getattr(lib, out_dtype), requires_grad=requiring_grad == "out")
        return getattr(lib, op)(a, b, out=out)
    assert_as_torch(case)


@pytest.mark.parametrize("op", ["matmul", "mm"])
def test_a_product_with_out_under_no_grad_checks_its_out_as_torch(op):
    def case(lib):
        a, b = lib.ones(2, 3, requires_grad=True), lib.ones(3, 4)
        with lib.no_grad():
            return getattr(lib, op)(a, b, out=lib.zeros(5, 5, dtype=lib.float64))
    assert_as_torch(case)


EINSUM_CASES = {
    "ij,jk->ik": [(2, 3), (3, 4)], "i,i->": [(3,), (3,)], "ij,j->i": [(2, 3), (3,)], "ij,kl->": [(2, 3), (3, 4)],
    "ij,kl->ijkl": [(2, 3), (3, 4)], "bij,bjk->bik": [(2, 2, 3), (2, 3, 4)], "i,j->ij": [(2,), (3,)],
    "ij,jk,kl->il": [(2, 3), (3, 4), (4, 5)], "ii->i": [(3, 3)], "ij->": [(2, 3)], "ij,ij->": [(2, 3), (2, 3)],
    "ij,ij->i": [(2, 3), (2, 3)], "ij,jk->i": [(2, 3), (3, 4)], "ij,jk->k": [(2, 3), (3, 4)],
}


@pytest.mark.parametrize("equation", EINSUM_CASES)
@pytest.mark.parametrize("dtypes", [("bool", "bool", "bool"), ("bool", "float32", "bool"), ("float32", "bool", "bool"),
                                    ("int64", "bool", "int64"), ("bool", "int64", "int64")], ids="-".join)
def test_einsum_of_bool_tensors_refuses_a_contraction_as_torch(equation, dtypes):
    """torch contracts a shared label with bmm, which has no bool kernel; a label summed first
    counts in int64, and a broadcast product needs no bmm."""
    def case(lib):
        return lib.einsum(equation, *(lib.ones(shape, dtype=getattr(lib, dtype))
                                      for shape, dtype in zip(EINSUM_CASES[equation], dtypes)))
    assert_as_torch(case)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32"])
@pytest.mark.parametrize("value", [-1, -2, -255, -256, -65535, -65536, -2**32 + 1, -2**32, 255, 256, [-2, 3], [[-1], [-256]],
                                   -2.0, [-1, 2.5], [-1, -2.0]], ids=str)
@pytest.mark.parametrize("maker", ["new_tensor", "tensor", "full"])
def test_a_negative_int_wraps_into_an_unsigned_dtype_down_to_minus_its_max(dtype, value, maker):
    """c10's overflow check lets a negative int down to -max into an unsigned type, wrapped."""
    def case(lib):
        target = getattr(lib, dtype)
        if maker == "new_tensor":
            return lib.tensor([1], dtype=target).new_tensor(value)
        if maker == "tensor":
            return lib.tensor(value, dtype=target)
        return lib.full((2,), value, dtype=target) if isinstance(value, int) else lib.tensor(0)
    assert_as_torch(case)


MESHGRID_REFUSED = {
    "zeros": lambda lib: lib.zeros(2, 3), "arange": lambda lib: lib.arange(6).reshape(2, 3),
    "fractions": lambda lib: lib.tensor([[1.5, -2.25], [3, 4]]), "wide range": lambda lib: lib.tensor([[1e-5, 1], [100, 2]]),
    "3-d": lambda lib: lib.arange(8.0).reshape(2, 2, 2), "4-d": lambda lib: lib.ones(2, 1, 2, 2, dtype=lib.int32),
    "empty": lambda lib: lib.zeros(0, 3), "bool": lambda lib: lib.ones(2, 3, dtype=lib.bool),
    "big ints": lambda lib: lib.tensor([[1e10, 1]]), "float64": lambda lib: lib.zeros(2, 3, dtype=lib.float64),
    "signed ints": lambda lib: lib.tensor([[-1, 10], [3, 200]]), "scaled": lambda lib: lib.tensor([[1e6, 2.5e6], [3e6, 4.5e6]]),
    "small": lambda lib: lib.tensor([[0.001, 0.002], [0.003, 0.0045]]), "nan and inf": lambda lib: lib.tensor([[float("nan"), 1.5], [float("inf"), 2]]),
    "many columns": lambda lib: lib.arange(30.0).reshape(1, 30) / 7,
}


@pytest.mark.parametrize("refused", MESHGRID_REFUSED.values(), ids=MESHGRID_REFUSED.keys())
@pytest.mark.parametrize("position", [0, 1])
def test_meshgrid_prints_a_tensor_of_more_dims_as_torch(refused, position):
    """torch's message prints the tensor as its C++ operator<< does."""
    def case(lib):
        bad = refused(lib)
        tensors = [lib.zeros(3, dtype=bad.dtype)]
        tensors.insert(position, bad)
        return lib.meshgrid(*tensors, indexing="ij")
    assert_as_torch(case)


def test_meshgrid_checks_every_dtype_before_any_dims():
    def case(lib):
        return lib.meshgrid(lib.zeros(3), lib.zeros(2, 3, dtype=lib.int64), indexing="ij")
    assert_as_torch(case)


def _ctc_double_backward_node(lib):
    log_probs = lib.randn(5, 1, 3).log_softmax(2).requires_grad_()
    loss = lib.nn.functional.ctc_loss(log_probs, lib.tensor([[1, 2]]), lib.tensor([5]), lib.tensor([2]))
    (grad,) = lib.autograd.grad(loss, log_probs, create_graph=True)
    return grad.grad_fn


NOT_IMPLEMENTED_NODES = {
    "bernoulli(x, p)": lambda lib: lib.bernoulli(lib.full((3,), 0.5, requires_grad=True), 0.3).grad_fn,
    "ctc_loss's gradient": _ctc_double_backward_node,
}


@pytest.mark.parametrize("build", NOT_IMPLEMENTED_NODES.values(), ids=NOT_IMPLEMENTED_NODES.keys())
def test_a_node_with_no_derivative_has_torchs_full_name(build):
    def case(lib):
        node = build(lib)
        return [type(node).__name__, node.name()]
    assert_as_torch(case)


@pytest.mark.parametrize("build", [lambda lib: lib.bernoulli(lib.full((3,), 0.5, requires_grad=True)),
                                   lambda lib: lib.nn.functional.ctc_loss(
                                       lib.randn(5, 1, 3).log_softmax(2).requires_grad_(), lib.tensor([[1, 2]]),
                                       lib.tensor([5]), lib.tensor([2]), reduction="none")],
                         ids=["bernoulli(x)", "ctc_loss"])
def test_bernoulli_and_ctc_loss_nodes_are_named_as_torch(build):
    assert_as_torch(lambda lib: build(lib).grad_fn.name())


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"])
def test_torch_save_and_load_of_a_float8_tensor_round_trips_as_torchs(dtype):
    """torch 2.13 saves and loads float8 tensors (only plain pickle.loads of one fails in torch)."""
    import io

    def case(lib):
        buffer = io.BytesIO()
        lib.save(lib.tensor([0.5, 1.0, 2.0, 448.0 if dtype == "float8_e4m3fn" else 4.0]).to(getattr(lib, dtype)), buffer)
        buffer.seek(0)
        loaded = lib.load(buffer)
        return [str(loaded.dtype).split(".")[-1], loaded.float().tolist()]
    assert_as_torch(case)
