"""Leftovers of earlier lanes (lane mendDB, session 54), each compared with torch on the same inputs: sparse
sums over a dim with keepdim, the reductions torch has no sparse kernel for, a compressed tensor's COO form,
function forms and parser refusals naming a compressed tensor as torch's ``Tensor``."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta"),
              pytest.mark.filterwarnings("ignore:Sparse CSC tensor support is in beta")]

_MATRIX = [[0.0, 1.5, 0.0, -2.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 4.25]]
_CUBE = (np.arange(24.0).reshape(2, 3, 4) * (np.arange(24).reshape(2, 3, 4) % 5 != 0)).tolist()


def _sparse(lib, layout: str, values=_MATRIX, sparse_dim=None, dtype="float32"):
    tensor = values if isinstance(values, lib.Tensor) else lib.tensor(values, dtype=getattr(lib, dtype))
    if layout == "coo":
        return tensor.to_sparse() if sparse_dim is None else tensor.to_sparse(sparse_dim)
    return getattr(tensor, f"to_sparse_{layout}")()


def _outcome(lib, call):
    """The result's layout, dtype, shape, stored parts and grad_fn name, or the error's type and first line."""
    try:
        result = call(lib)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return type(error).__name__, str(error).split(" This could be because")[0].splitlines()[0]
    if isinstance(result, tuple):
        return tuple(_outcome(lib, lambda _, item=item: item) for item in result)
    if not isinstance(result, lib.Tensor):
        return repr(result)
    layout = str(result.layout).rpartition(".")[2]
    if layout == "sparse_csr":
        parts = [result.crow_indices().tolist(), result.col_indices().tolist(), result.values().tolist()]
    elif layout == "sparse_csc":
        parts = [result.ccol_indices().tolist(), result.row_indices().tolist(), result.values().tolist()]
    elif layout == "sparse_coo":
        parts = [result.sparse_dim(), result._indices().tolist(), result._values().tolist(), result.is_coalesced()]
    else:
        parts = result.tolist()
    return (layout, str(result.dtype).rpartition(".")[2], list(result.shape), parts,
            None if result.grad_fn is None else result.grad_fn.name())


_SUMS = {
    **{f"csr.sum({dim}, keepdim=True)": lambda lib, dim=dim: _sparse(lib, "csr").sum(dim, keepdim=True)
       for dim in (0, 1, -1, (0, 1))},
    "csr.sum(1, keepdim=True, dtype=float64)": lambda lib: _sparse(lib, "csr").sum(1, keepdim=True, dtype=lib.float64),
    "int csr.sum(1, keepdim=True)": lambda lib: _sparse(lib, "csr", dtype="int32").sum(1, keepdim=True),
    "torch.sum(csr, 0, True)": lambda lib: lib.sum(_sparse(lib, "csr"), 0, True),
    **{f"coo({sparse_dim}).sum({dim}, keepdim=True)": lambda lib, dim=dim, sparse_dim=sparse_dim: _sparse(
        lib, "coo", _CUBE, sparse_dim).sum(dim, keepdim=True)
       for sparse_dim in (1, 2, 3) for dim in (0, 2, -1, (1, 2), (0, 1), (0, 1, 2))},
    "int coo.sum(1)": lambda lib: _sparse(lib, "coo", dtype="int32").sum(1),
    "int coo.sum(1, keepdim=True)": lambda lib: _sparse(lib, "coo", dtype="int32").sum(1, keepdim=True),
}


@pytest.mark.parametrize("name", sorted(_SUMS))
def test_sparse_sum_over_dims_with_keepdim(name):
    """torch's CSR sum over a dim stays CSR (an entry for each line that stores any), its COO one is the sum
    unsqueezed at the dims summed (uncoalesced); before, both were dense; an integer sum is int64."""
    assert _outcome(chainrule, _SUMS[name]) == _outcome(torch, _SUMS[name])


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_sparse_sum_with_keepdim_records_a_sum_whose_backward_torch_refuses(layout):
    def call(lib):
        x = lib.tensor(_MATRIX, requires_grad=True)
        total = _sparse(lib, layout, x).sum(1, keepdim=True)
        try:
            total.to_dense().sum().backward()
        except RuntimeError as error:
            # (a COO input's node below is chainrule's SparseMaskBackward0 where torch's is ToSparseBackward1:
            # sparse.py's _in_graph, left alone)
            below = total.grad_fn.next_functions[0][0].name() if layout == "csr" else None
            return total.grad_fn.name(), below, str(error)
        return "no error"

    assert call(chainrule) == call(torch)


_REDUCTIONS = [("prod", ()), ("prod", (1,)), ("prod", (0, True)), ("max", (1,)), ("max", (1, True)), ("min", (0,)),
               ("std", (1,)), ("var", ()), ("any", ()), ("any", (1,)), ("all", ()), ("all", (1,)), ("median", ()),
               ("median", (1,)), ("mean", (1, True)), ("mean", ((0, 1),)), ("logsumexp", (1,)), ("cumsum", (1,)),
               ("cumprod", (0,)), ("cummax", (0,)), ("cummin", (1,)), ("logcumsumexp", (1,)), ("nansum", ()),
               ("nanmean", ()), ("count_nonzero", ()), ("count_nonzero", (1,)), ("amin", ()), ("argmin", ()),
               ("amax", (1,)), ("argmax", (1,)), ("aminmax", ()), ("mode", ()), ("kthvalue", (1,)), ("topk", (1,)),
               ("sort", ()), ("argsort", ()), ("msort", ()), ("nonzero", ()), ("logical_not", ()),
               ("logical_not_", ())]


@pytest.mark.parametrize("layout", ["coo", "csr", "csc"])
def test_sparse_reductions_torch_has_no_kernel_for(layout):
    """Refused in torch's words (the kernel its dispatcher names, or the compressed output it cannot make),
    the method and the function alike; before, most answered densely (and csr.logical_not_() changed nothing)."""
    for name, args in _REDUCTIONS:
        forms = [lambda lib, name=name, args=args: getattr(_sparse(lib, layout), name)(*args)]
        if hasattr(torch, name):
            forms.append(lambda lib, name=name, args=args: getattr(lib, name)(_sparse(lib, layout), *args))
        for call in forms:
            assert _outcome(chainrule, call) == _outcome(torch, call), (name, args)


_CONVERSIONS = {
    "csc.to_sparse()": lambda lib: _sparse(lib, "csc").to_sparse(),
    "csr.to_sparse()": lambda lib: _sparse(lib, "csr").to_sparse(),
    "csc.to_sparse(2)": lambda lib: _sparse(lib, "csc").to_sparse(2),
    "csr.to_sparse(1)": lambda lib: _sparse(lib, "csr").to_sparse(1),
    "csc.to_sparse_coo()": lambda lib: _sparse(lib, "csc").to_sparse_coo(),
    "csc.to_sparse(layout=sparse_coo)": lambda lib: _sparse(lib, "csc").to_sparse(layout=lib.sparse_coo),
    "csr with explicit zeros .to_sparse()": lambda lib: lib.sparse_csr_tensor([0, 2, 3], [0, 2, 1], [0.0, 5.0, 6.0],
                                                                              (2, 3)).to_sparse(),
    "csc with explicit zeros .to_sparse()": lambda lib: lib.sparse_csr_tensor([0, 2, 3], [0, 2, 1], [0.0, 5.0, 6.0],
                                                                              (2, 3)).t().to_sparse(),
    "torch.flatten(csr)": lambda lib: lib.flatten(_sparse(lib, "csr")),
    "torch.flatten(csc, 0, 1)": lambda lib: lib.flatten(_sparse(lib, "csc"), 0, 1),
    "torch.diag(csr)": lambda lib: lib.diag(_sparse(lib, "csr")),
    "torch.diag(csc, 1)": lambda lib: lib.diag(_sparse(lib, "csc"), 1),
    "torch.sort(csr)": lambda lib: lib.sort(_sparse(lib, "csr")),
}


@pytest.mark.parametrize("name", sorted(_CONVERSIONS))
def test_compressed_to_coo_and_function_forms(name):
    """A compressed matrix's COO form keeps its stored entries in its order (CSC's column-major: uncoalesced),
    explicit zeros too; torch.flatten/diag/sort of one refuse as its methods do (before: dense answers)."""
    assert _outcome(chainrule, _CONVERSIONS[name]) == _outcome(torch, _CONVERSIONS[name])


@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_compressed_to_coo_gradient(layout):
    def call(lib):
        x = lib.tensor(_MATRIX, requires_grad=True)
        coo = _sparse(lib, layout, x).to_sparse()
        (coo * 2).to_dense().mul(lib.arange(12.0).reshape(3, 4)).sum().backward()
        return coo.grad_fn.name(), coo.grad_fn.next_functions[0][0].name(), x.grad.tolist()

    assert call(chainrule) == call(torch)


_PARSED = {
    f"{form} {layout}": (form, layout) for layout in ("csr", "csc", "coo")
    for form in ("torch.eq(s, None)", "s.eq(None)", "torch.lt(s, 'a')", "torch.ge(None, s)", "s.ne_(None)",
                 "torch.add(s, None)", "s.add(None)", "s.sub(None)", "torch.sub(s, None)", "s == None")
}


@pytest.mark.parametrize("name", sorted(_PARSED))
def test_parser_refusals_name_a_sparse_tensor_as_torch(name):
    """torch's argument parser refuses what is no tensor or number before any sparse kernel, naming the
    sparse tensor ``Tensor`` (before: SparseCSRTensor, or the COO kernel's NotImplementedError)."""
    form, layout = _PARSED[name]

    def call(lib):
        s = _sparse(lib, layout)
        return eval(form, {"torch": lib, "s": s})  # noqa: S307 - the fixed forms above

    assert _outcome(chainrule, call) == _outcome(torch, call)


def _graph(tensor) -> list:
    """The names of the nodes reachable from ``tensor``'s grad_fn, breadth first."""
    names, seen, queue = [], set(), [tensor.grad_fn]
    while queue:
        node = queue.pop(0)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.name().replace("torch::autograd::", ""))
        queue.extend(next_node for next_node, _ in node.next_functions)
    return names


def _normalized(lib, op: str, affine: str, input_grad: bool):
    generator = torch.Generator().manual_seed(5)
    x = lib.tensor(torch.randn(2, 4, 3, generator=generator).tolist(), requires_grad=input_grad)
    parameter = lib.tensor(torch.randn(4 if op == "group_norm" else 3, generator=generator).tolist(),
                           requires_grad=True)
    if op == "group_norm":
        return lib.nn.functional.group_norm(x, 2, **{affine: parameter}), x, parameter
    return lib.nn.functional.rms_norm(x, (3,), parameter if affine == "weight" else None), x, parameter


@pytest.mark.parametrize(("op", "affine", "input_grad"), [
    ("group_norm", "weight", True), ("group_norm", "weight", False), ("group_norm", "bias", True),
    ("group_norm", "bias", False), ("rms_norm", "weight", True), ("rms_norm", "none", True)])
def test_weight_only_norms_record_torch_graph(op, affine, input_grad):
    """group_norm with a weight or a bias alone is torch's one NativeGroupNormBackward0 over input and parameter
    (before: a second node and a view above it); rms_norm's eps is added as a Scalar (AddBackward1) to x.pow(2)'s
    mean (before: AddBackward0 over x * x)."""
    assert _graph(_normalized(chainrule, op, affine, input_grad)[0]) == _graph(
        _normalized(torch, op, affine, input_grad)[0])


def test_weight_only_group_norm_and_rms_norm_gradients():
    def grads(lib, op):
        out, x, parameter = _normalized(lib, op, "weight", True)
        (out * 0.5).sum().backward()  # (a gradient tensor given, torch's first backward imports sympy: 2 s)
        return x.grad.tolist(), parameter.grad.tolist()

    for op in ("group_norm", "rms_norm"):
        for mine, expected in zip(grads(chainrule, op), grads(torch, op)):
            np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("affine", ["", "weight", "bias", "weight bias"])
@pytest.mark.parametrize("input_grad", [True, False])
def test_instance_norm_without_running_statistics_records_torch_graph(affine, input_grad):
    """at::instance_norm's composition: the output viewed back over one NativeBatchNormBackward0 of the input
    viewed as (1, N·C, *), the parameters repeated per sample (before: MulBackward0/AddBackward0 over the
    normalisation); the values and gradients are torch's."""
    def call(lib):
        generator = torch.Generator().manual_seed(9)
        x = lib.tensor(torch.randn(2, 3, 5, generator=generator).tolist(), requires_grad=input_grad)
        parameters = {name: lib.tensor(torch.randn(3, generator=generator).tolist(), requires_grad=True)
                      for name in affine.split()}
        out = lib.nn.functional.instance_norm(x, **parameters)
        if out.grad_fn is None:
            return None
        (out * lib.arange(30.0).reshape(2, 3, 5)).sum().backward()
        return _graph(out), out.tolist(), [t.grad.tolist() for t in (x, *parameters.values()) if t.grad is not None]

    ours, theirs = call(chainrule), call(torch)
    if theirs is None:
        assert ours is None
        return
    assert ours[0] == theirs[0]
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)
    for mine, expected in zip(ours[2], theirs[2]):
        np.testing.assert_allclose(mine, expected, rtol=1e-4, atol=1e-5)
