"""Session 34, lane progAS: what the CPC, GFlowNet and layer-wise-lr-decay fine-tuning programs
(and the edges of their idioms) found different from torch 2.13, each checked against torch on the
same inputs."""

import math
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- event constraints on an empty batch
# A distribution whose parameter is checked per event (Categorical's logits, MultivariateNormal's loc,
# Dirichlet's concentration) flattens the event dims by reshape(batch + (-1,)): with a zero-size batch
# the -1 is ambiguous and torch raises its reshape RuntimeError; chainrule let NumPy's ValueError out.

EMPTY_BATCH_CONSTRUCTORS = {
    "Categorical(logits)": lambda lib: lib.distributions.Categorical(logits=lib.zeros(0, 3)),
    "Categorical(logits) 3-d": lambda lib: lib.distributions.Categorical(logits=lib.zeros(2, 0, 3)),
    "OneHotCategorical(logits)": lambda lib: lib.distributions.OneHotCategorical(logits=lib.zeros(0, 3)),
    "Multinomial(logits)": lambda lib: lib.distributions.Multinomial(3, logits=lib.zeros(0, 3)),
    "Dirichlet": lambda lib: lib.distributions.Dirichlet(lib.ones(0, 3)),
    "MultivariateNormal": lambda lib: lib.distributions.MultivariateNormal(lib.zeros(0, 2), lib.eye(2)),
    "RelaxedOneHotCategorical": lambda lib: lib.distributions.RelaxedOneHotCategorical(
        lib.tensor(0.5), logits=lib.zeros(0, 3)),
}


@pytest.mark.parametrize("name", sorted(EMPTY_BATCH_CONSTRUCTORS))
def test_an_event_constraint_on_an_empty_batch_raises_torchs_reshape_error(name):
    build = EMPTY_BATCH_CONSTRUCTORS[name]
    with pytest.raises(RuntimeError) as expected:
        build(torch)
    with pytest.raises(RuntimeError) as got:
        build(chainrule)
    # chainrule's constructors prefix the class and its arguments; torch's words follow unchanged
    assert str(got.value).endswith(str(expected.value))
    assert "cannot reshape tensor of 0 elements" in str(got.value)


@pytest.mark.parametrize("shape, validate", [((2, 0), None), ((0, 3), False)])
def test_no_error_without_an_ambiguous_reshape_or_without_validation(shape, validate):
    # an empty event with a non-empty batch reshapes unambiguously; validate_args=False checks nothing
    got = chainrule.distributions.Categorical(logits=chainrule.zeros(*shape), validate_args=validate)
    expected = torch.distributions.Categorical(logits=torch.zeros(*shape), validate_args=validate)
    assert tuple(got.batch_shape) == tuple(expected.batch_shape)


# ---------------------------------------------------------------- nn.init on tensors it cannot fill
# torch's init functions fill by calling Tensor.uniform_/normal_ (and QR for orthogonal_), so they
# inherit those refusals: an integer or bool tensor, b < a, a negative std, a half-precision QR, a
# complex comparison. chainrule's init functions drew the values themselves and cast them into the
# tensor: silently zeros or +-1 in an integer tensor, or NumPy's own errors.

def _outcome(call):
    try:
        result = call()
    except Exception as error:  # the type and the words are what is compared
        return type(error).__name__, str(error)
    return "filled", str(result.dtype).split(".")[-1]


INIT_CALLS = {
    "uniform_": lambda lib, x: lib.nn.init.uniform_(x),
    "normal_": lambda lib, x: lib.nn.init.normal_(x),
    "trunc_normal_ wide": lambda lib, x: lib.nn.init.trunc_normal_(x, std=0.02),
    "trunc_normal_ narrow": lambda lib, x: lib.nn.init.trunc_normal_(x, a=0.0, b=0.1),
    "xavier_uniform_": lambda lib, x: lib.nn.init.xavier_uniform_(x),
    "xavier_normal_": lambda lib, x: lib.nn.init.xavier_normal_(x),
    "kaiming_uniform_": lambda lib, x: lib.nn.init.kaiming_uniform_(x),
    "kaiming_normal_": lambda lib, x: lib.nn.init.kaiming_normal_(x),
    "orthogonal_": lambda lib, x: lib.nn.init.orthogonal_(x),
    "sparse_": lambda lib, x: lib.nn.init.sparse_(x, 0.5),
}


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool", "float16", "bfloat16", "complex64"])
@pytest.mark.parametrize("name", sorted(INIT_CALLS))
def test_init_functions_refuse_what_tensor_fills_refuse(name, dtype):
    init = INIT_CALLS[name]
    expected = _outcome(lambda: init(torch, torch.empty(3, 4, dtype=getattr(torch, dtype))))
    got = _outcome(lambda: init(chainrule, chainrule.empty(3, 4, dtype=getattr(chainrule, dtype))))
    assert got == expected


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.nn.init.uniform_(x, 2.0, 1.0),
    lambda lib, x: lib.nn.init.normal_(x, std=-1.0),
    lambda lib, x: lib.nn.init.sparse_(x, 0.5, std=-1.0),
])
def test_init_functions_check_their_bounds_before_filling(call):
    expected = _outcome(lambda: call(torch, torch.full((3, 3), 7.0)))
    assert expected[0] == "RuntimeError"
    target = chainrule.full((3, 3), 7.0)
    assert _outcome(lambda: call(chainrule, target)) == expected
    assert bool((target == 7.0).all())


def test_init_on_a_float_tensor_still_draws_torchs_values():
    torch.manual_seed(5)
    expected = torch.nn.init.trunc_normal_(torch.empty(4, 5), std=0.02)
    chainrule.manual_seed(5)
    got = chainrule.nn.init.trunc_normal_(chainrule.empty(4, 5), std=0.02)
    assert got.tolist() == expected.tolist()


# ---------------------------------------------------------------- torch.normal with an integer tensor
# The samples take the mean tensor's dtype (the std tensor's when the mean is a float): torch has no
# kernel that draws normals into integers and raises; chainrule returned rounded normals.

@pytest.mark.parametrize("make", [
    lambda lib: lib.normal(lib.zeros(2, dtype=lib.long), 1.0),
    lambda lib: lib.normal(0.0, lib.ones(2, dtype=lib.long)),
    lambda lib: lib.normal(lib.zeros(2, dtype=lib.long), lib.ones(2, dtype=lib.long)),
    lambda lib: lib.normal(lib.zeros(2, dtype=lib.bool), lib.ones(2)),
    lambda lib: lib.normal(lib.zeros(2), lib.ones(2, dtype=lib.long)),
    lambda lib: lib.normal(lib.zeros(2, dtype=lib.float64), lib.ones(2)),
])
def test_normal_refuses_integer_samples_as_torch(make):
    assert _outcome(lambda: make(chainrule)) == _outcome(lambda: make(torch))


# ---------------------------------------------------------------- matmul's dtype and shape errors
# CPC's scores go through bmm/einsum. torch's matmul words a mismatch in the kernel it reaches (dot;
# mv as addmv; mm; bmm's 'expected scalar type Float but found Double') and checks shapes before
# dtypes (dot aside); a batch on the right of a matrix or vector folds transposed only when the left
# operand requires grad. chainrule named every dtype mismatch in mm's words, before the shapes.

LEFT = {1: (4,), 2: (3, 4), 3: (2, 3, 4), 4: (2, 2, 3, 4)}
RIGHT = {1: (4,), 2: (4, 3), 3: (2, 4, 3), 4: (2, 2, 4, 3)}


@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("int64", "float32"), ("float16", "float32")])
@pytest.mark.parametrize("left", [1, 2, 3, 4])
@pytest.mark.parametrize("right", [1, 2, 3, 4])
def test_matmul_names_a_dtype_mismatch_in_its_kernels_words(left, right, dtypes):
    def call(lib):
        return lib.matmul(lib.ones(*LEFT[left], dtype=getattr(lib, dtypes[0])),
                          lib.ones(*RIGHT[right], dtype=getattr(lib, dtypes[1])))
    assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("left_grad, right_grad", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("left, right", [((5,), (2, 4, 3)), ((3, 5), (2, 4, 3)), ((3, 4), (2, 4, 3)),
                                         ((4,), (2, 4, 3)), ((2, 3, 5), (2, 4, 3)), ((3, 5), (4,)),
                                         ((2, 3, 5), (4, 3)), ((5,), (4,))])
def test_matmul_checks_shapes_before_dtypes_and_folds_as_torch(left, right, left_grad, right_grad, dtype):
    def call(lib):
        return lib.matmul(lib.ones(*left, requires_grad=left_grad),
                          lib.ones(*right, dtype=getattr(lib, dtype), requires_grad=right_grad))
    assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))


@pytest.mark.parametrize("call", [
    lambda lib: lib.bmm(lib.ones(2, 3, 5), lib.ones(2, 4, 3, dtype=lib.float64)),
    lambda lib: lib.bmm(lib.ones(2, 3, 4), lib.ones(3, 4, 3, dtype=lib.float64)),
    lambda lib: lib.bmm(lib.ones(1, 3, 4, dtype=lib.complex64), lib.ones(1, 4, 3)),
    lambda lib: lib.mv(lib.ones(3, 5), lib.ones(4, dtype=lib.float64)),
    lambda lib: lib.mv(lib.ones(3, 4, dtype=lib.float64), lib.ones(4)),
    lambda lib: lib.matmul(lib.ones(2, 3, 4, dtype=lib.bool), lib.ones(2, 4, 3)),
    lambda lib: lib.ones(1, 3, 4) @ lib.ones(1, 4, 3, dtype=lib.float64),
])
def test_bmm_and_mv_word_their_own_mismatches(call):
    assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))


# ---------------------------------------------------------------- einsum's argument errors
# A subscript repeated within one operand (a diagonal) needs equal sizes there, size 1 included:
# torch says which operand; chainrule let NumPy's ValueError out or called it a broadcast. And torch's
# Python wrapper refuses a call without operands by a ValueError before anything else.

@pytest.mark.parametrize("equation, shapes", [
    ("ii->", [(2, 3)]), ("ii->", [(1, 3)]), ("ii->i", [(3, 1)]), ("iji", [(2, 3, 1)]),
    ("ij,ii->", [(1, 2), (2, 3)]), ("ii,i->", [(3, 1), (2,)]), ("ij,jj->", [(2, 3), (3, 1)]),
    ("i,ii->", [(2,), (3, 3)]), ("ii", [(1, 1)]), ("ii->i", [(3, 3)]),
])
def test_einsum_repeated_subscripts_need_equal_sizes_as_torch(equation, shapes):
    def call(lib):
        return lib.einsum(equation, *[lib.arange(float(math.prod(s))).reshape(s) for s in shapes]).tolist()
    assert _outcome_value(lambda: call(chainrule)) == _outcome_value(lambda: call(torch))


@pytest.mark.parametrize("call", [
    lambda lib: lib.einsum("ij"),
    lambda lib: lib.einsum(lib.ones(2)),
    lambda lib: lib.einsum("ij", []),
])
def test_einsum_without_operands_is_a_value_error(call):
    assert _outcome(lambda: call(chainrule)) == _outcome(lambda: call(torch))


def _outcome_value(call):
    try:
        return "value", call()
    except Exception as error:  # the type and the words are what is compared
        return type(error).__name__, str(error)


# ---------------------------------------------------------------- scatter's size message
# The GFlowNet moves states by scatter_add. torch 2.13's scatter family words an index too large for
# self or src in one message ('Expected index [2, 2] to be no larger than self [2, 3] apart from
# dimension 1 and to be no larger size than src [2, 1]'); gather keeps the older per-dimension one.

@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("index, src_shape", [([[0, 1], [1, 0]], (2, 1)), ([[0], [1], [0]], (3, 1)),
                                              ([[0, 1, 0, 1]], (1, 4)), ([[0, 1]], (2, 1)), ([[0, 1]], None)])
@pytest.mark.parametrize("op", ["scatter_add", "scatter", "scatter_reduce", "scatter_", "gather"])
def test_scatter_words_an_oversized_index_as_torch(op, index, src_shape, dim):
    def call(lib):
        x, idx = lib.zeros(2, 3), lib.tensor(index)
        if op == "gather":
            return lib.gather(x, dim, idx)
        src = 1.0 if src_shape is None else lib.ones(*src_shape)
        if op == "scatter_reduce":
            return x.scatter_reduce(dim, idx, src if src_shape else lib.ones(1, 2), "sum")
        return getattr(x, op)(dim, idx, src) if op != "scatter_add" or src_shape else x.scatter_add(dim, idx, x)
    assert _outcome_value(lambda: call(chainrule).tolist()) == _outcome_value(lambda: call(torch).tolist())


# ---------------------------------------------------------------- Distribution.expand's refusal
# torch's families expand their parameters (or their inner distribution's) to the new batch shape
# and let Tensor.expand refuse in its own words; chainrule's base raised a message of its own.
# Categorical.param_shape is a torch.Size, as torch's.

FAMILIES = {
    "Categorical": lambda lib: lib.distributions.Categorical(logits=lib.zeros(2, 3)),
    "Categorical(probs)": lambda lib: lib.distributions.Categorical(probs=lib.ones(2, 3) / 3),
    "Normal": lambda lib: lib.distributions.Normal(lib.zeros(2), lib.ones(2)),
    "MultivariateNormal": lambda lib: lib.distributions.MultivariateNormal(lib.zeros(2, 3), lib.eye(3)),
    "Independent": lambda lib: lib.distributions.Independent(lib.distributions.Normal(lib.zeros(2, 3), 1.0), 1),
    "OneHotCategorical": lambda lib: lib.distributions.OneHotCategorical(logits=lib.zeros(2, 3)),
    "Beta": lambda lib: lib.distributions.Beta(lib.ones(2), lib.ones(2)),
    "Multinomial": lambda lib: lib.distributions.Multinomial(3, logits=lib.zeros(2, 3)),
}


@pytest.mark.parametrize("batch_shape", [(4, 3), (3,), (), (2, 1), (1,), (4, 2)])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_expand_refuses_in_tensor_expands_words(family, batch_shape):
    def call(lib):
        expanded = FAMILIES[family](lib).expand(batch_shape)
        return tuple(expanded.batch_shape), tuple(expanded.event_shape)
    assert _outcome_value(lambda: call(chainrule)) == _outcome_value(lambda: call(torch))


def test_categorical_param_shape_is_a_size():
    got = chainrule.distributions.Categorical(logits=chainrule.zeros(2, 3)).param_shape
    expected = torch.distributions.Categorical(logits=torch.zeros(2, 3)).param_shape
    assert type(got).__name__ == type(expected).__name__ == "Size"
    assert tuple(got) == tuple(expected)


# ---------------------------------------------------------------- cartesian_prod and meshgrid
# The GFlowNet lists every grid state by torch.cartesian_prod, which torch builds on meshgrid: its
# refusals are meshgrid's ('meshgrid expects all tensors to have the same dtype', '... a non-empty
# TensorList'), and it takes tensors only, not one list of them as meshgrid does.

@pytest.mark.parametrize("call", [
    lambda lib: lib.cartesian_prod(),
    lambda lib: lib.cartesian_prod(lib.arange(2), lib.tensor([0.5])),
    lambda lib: lib.cartesian_prod([lib.zeros(2)]),
    lambda lib: lib.cartesian_prod((lib.zeros(2), lib.zeros(3))),
    lambda lib: lib.meshgrid(lib.arange(2), lib.tensor([0.5]), indexing="ij"),
    lambda lib: lib.meshgrid([lib.zeros(2), lib.zeros(3)], indexing="ij"),
    lambda lib: lib.cartesian_prod(lib.arange(2), lib.arange(3)),
])
def test_cartesian_prod_refuses_in_meshgrids_words(call):
    def run(lib):
        result = call(lib)
        return [r.tolist() for r in result] if isinstance(result, tuple) else result.tolist()
    got, expected = _outcome_value(lambda: run(chainrule)), _outcome_value(lambda: run(torch))
    # chainrule's argument errors name the op first ("cartesian_prod(): expected Tensor ..."); torch's words follow
    assert got[0] == expected[0] and (got[1] == expected[1] or got[1].endswith("(): " + expected[1]))


# ---------------------------------------------------------------- random fills on the meta device
# A meta tensor has no storage: torch's trunc_normal_/orthogonal_/sparse_ return it untouched, its
# meta uniform_ checks no dtype, and its meta normal_ refuses an integer dtype in words of its own.

@pytest.mark.parametrize("dtype", ["int64", "bool", "float32"])
@pytest.mark.parametrize("fill", ["normal_", "uniform_", "trunc_normal_", "orthogonal_", "xavier_uniform_",
                                  "kaiming_normal_", "sparse_", "Tensor.normal_", "Tensor.uniform_"])
def test_random_fills_of_a_meta_tensor_as_torch(fill, dtype):
    def call(lib):
        x = lib.empty(3, 3, dtype=getattr(lib, dtype), device="meta")
        if fill.startswith("Tensor."):
            result = getattr(x, fill[len("Tensor."):])()
        elif fill == "sparse_":
            result = lib.nn.init.sparse_(x, 0.5)
        else:
            result = getattr(lib.nn.init, fill)(x)
        return tuple(result.shape), result.is_meta, result is x
    assert _outcome_value(lambda: call(chainrule)) == _outcome_value(lambda: call(torch))


# ---------------------------------------------------------------- randperm into a small dtype
# torch refuses a permutation whose largest value its dtype cannot hold (n - 1 beyond an integer
# dtype's maximum, n beyond 2049 in half precision), before drawing; chainrule wrapped the values.

@pytest.mark.parametrize("dtype, n", [("int8", 128), ("int8", 129), ("uint8", 257), ("int16", 32769),
                                      ("float16", 2049), ("float16", 2050), ("bfloat16", 258), ("int32", 5)])
def test_randperm_refuses_values_its_dtype_cannot_hold(dtype, n):
    def call(lib):
        lib.manual_seed(0)
        try:
            drawn = sorted(lib.randperm(n, dtype=getattr(lib, dtype)).tolist())
        except RuntimeError as error:
            drawn = str(error)
        return drawn, lib.rand(2).tolist()  # and the stream is where torch's is
    assert call(chainrule) == call(torch)


# ---------------------------------------------------------------- randint into a small dtype
# torch's randint fills a new tensor by random_, which refuses bounds its integral dtype cannot hold
# ('to - 1 is out of bounds for signed char', 'from is out of bounds for unsigned char'); chainrule
# checked bool's upper bound only and wrapped the rest.

@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "bool"])
@pytest.mark.parametrize("bounds", [(-128, 128), (-129, 0), (0, 256), (0, 257), (-1, 1), (0, 2), (0, 3),
                                    (2**31 - 1, 2**31)])
def test_randint_refuses_bounds_its_dtype_cannot_hold(dtype, bounds):
    def call(lib):
        lib.manual_seed(0)
        return lib.randint(*bounds, (3,), dtype=getattr(lib, dtype)).tolist()
    assert _outcome_value(lambda: call(chainrule)) == _outcome_value(lambda: call(torch))


# ---------------------------------------------------------------- random_/randint into a floating dtype
# torch refuses bounds beyond a floating dtype's finite range ('to - 1 is out of bounds for c10::Half')
# and warns past its exact integers, ±2**digits; chainrule drew infinities or inexact integers silently.

@pytest.mark.parametrize("which", ["randint", "random_"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("bounds", [(0, 70000), (0, 4096), (-70000, 0), (0, 2**25), (0, 100)])
def test_random_integers_in_a_floating_dtype_refuse_and_warn_as_torch(which, dtype, bounds):
    def call(lib):
        lib.manual_seed(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if which == "randint":
                    lib.randint(*bounds, (2,), dtype=getattr(lib, dtype))
                else:
                    lib.zeros(2, dtype=getattr(lib, dtype)).random_(*bounds)
                outcome = "drawn"
            except RuntimeError as error:
                outcome = str(error)
        return outcome, [(w.category.__name__, str(w.message)) for w in caught]
    got = call(chainrule)
    assert got == call(torch)
