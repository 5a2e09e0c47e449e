"""Fixes found while writing the progQ programs (hf_gpt2_conv1d, neural_cellular_automata,
jem_energy_langevin, autoformer_decomposition, lightning_style_trainer), each against torch."""

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, fn):
    """(exception type name, message) or ('ok', shape) of ``fn(lib)``."""
    try:
        result = fn(lib)
    except Exception as error:  # noqa: BLE001 - the type itself is compared
        return type(error).__name__, str(error)
    return "ok", tuple(result.shape)


ADDMM_CASES = {
    # HF's Conv1D adds a (nf,) bias to x.view(-1, nx) @ weight: other inputs are refused in expand's words
    "input_with_more_dims": lambda t: t.addmm(t.ones(2, 2, 3), t.ones(2, 4), t.ones(4, 3)),
    "input_too_wide": lambda t: t.addmm(t.ones(4), t.ones(2, 4), t.ones(4, 3)),
    "input_square_wrong_rows": lambda t: t.addmm(t.ones(3, 3), t.ones(2, 4), t.ones(4, 3)),
    "mat1_vector": lambda t: t.addmm(t.ones(3), t.ones(4), t.ones(4, 3)),
    "mat2_vector": lambda t: t.addmm(t.ones(3), t.ones(2, 4), t.ones(4)),
    "mat1_3d": lambda t: t.addmm(t.ones(3), t.ones(2, 4, 1), t.ones(4, 3)),
    "shapes_do_not_multiply": lambda t: t.addmm(t.ones(3), t.ones(2, 4), t.ones(5, 3)),
    "column_bias_broadcasts": lambda t: t.addmm(t.ones(2, 1), t.ones(2, 4), t.ones(4, 3)),
    "scalar_bias_broadcasts": lambda t: t.addmm(t.ones(()), t.ones(2, 4), t.ones(4, 3)),
    "method_form": lambda t: t.ones(2, 2, 3).addmm(t.ones(2, 4), t.ones(4, 3)),
}


@pytest.mark.parametrize("case", sorted(ADDMM_CASES))
def test_addmm_checks_and_expands_input_as_torch(case):
    fn = ADDMM_CASES[case]
    assert _outcome(chainrule, fn) == _outcome(torch, fn)


def test_addmm_values_and_gradients_with_a_bias_vector():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((6,), (5, 4), (4, 6))]
    results = []
    for lib in (torch, chainrule):
        bias, x, w = (lib.tensor(a, requires_grad=True) for a in arrays)
        out = lib.addmm(bias, x, w, beta=0.5, alpha=2.0)
        (out * out).sum().backward()
        results.append([out.detach().numpy(), bias.grad.numpy(), x.grad.numpy(), w.grad.numpy()])
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


EXPAND_DTYPES = ["float32", "float64", "float16", "bool", "int64", "int32", "int8", "uint8", "bfloat16",
                 "complex64", "complex128"]


@pytest.mark.parametrize("dtype", EXPAND_DTYPES)
def test_expand_with_too_few_sizes_names_the_tensor_as_torch(dtype):
    # torch prints the legacy torch.FloatTensor where one exists, else CPUBoolType, CPUComplexFloatType...
    def fn(t):
        return t.zeros(2, 2, 3, dtype=getattr(t, dtype)).expand(2, 3)

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize("dtype", ["float32", "bool", "complex64"])
def test_setitem_value_with_too_many_dims_names_it_as_torch(dtype):
    def fn(t):
        target = t.zeros(2, 3, dtype=getattr(t, dtype))
        target[0] = t.zeros(2, 2, 3, dtype=getattr(t, dtype))
        return target

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize("mode", [1, 0, None, 1.0, "yes", np.bool_(True)], ids=repr)
def test_set_grad_enabled_takes_only_a_bool(mode):
    def fn(t):
        with t.set_grad_enabled(mode):
            pass
        return t.ones(1)

    assert _outcome(chainrule, fn) == _outcome(torch, fn)
    assert chainrule.is_grad_enabled()


def test_set_grad_enabled_with_a_tensor_refused_as_torch():
    ours = _outcome(chainrule, lambda t: t.set_grad_enabled(t.tensor(True)))
    theirs = _outcome(torch, lambda t: t.set_grad_enabled(t.tensor(True)))
    assert ours == theirs
    assert chainrule.is_grad_enabled()


@pytest.mark.parametrize("mode", [True, False])
def test_set_grad_enabled_bool_still_switches(mode):
    x = chainrule.ones(2, requires_grad=True)
    with chainrule.autograd.set_grad_enabled(mode):
        y = x * 2
    assert y.requires_grad is mode
    assert chainrule.is_grad_enabled()


@pytest.mark.parametrize("dtype", ["int64", "float32", "int32", "float64"])
def test_where_names_a_non_bool_condition_dtype_as_torch(dtype):
    def fn(t):
        return t.where(t.zeros(2, dtype=getattr(t, dtype)), t.ones(2), t.zeros(2))

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


FFT_CASES = {
    "irfft_n0": lambda t: t.fft.irfft(t.ones(3, dtype=t.complex64), n=0),
    "fft_n0": lambda t: t.fft.fft(t.ones(3), n=0),
    "rfftn_s0": lambda t: t.fft.rfftn(t.ones(3), s=[0]),
    "irfft2_s0": lambda t: t.fft.irfft2(t.ones(3, 3, dtype=t.complex64), s=[0, 2]),
    "hfft_n0": lambda t: t.fft.hfft(t.ones(3, dtype=t.complex64), n=0),
    "rfft_bad_norm": lambda t: t.fft.rfft(t.ones(4), norm="bad"),
    "ifft_bad_norm": lambda t: t.fft.ifft(t.ones(4), norm="x"),
}


@pytest.mark.parametrize("case", sorted(FFT_CASES))
def test_fft_argument_errors_in_torch_words(case):
    fn = FFT_CASES[case]
    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize(("source", "target"), [("float32", "float16"), ("float32", "bfloat16"),
                                                ("float64", "float16"), ("float64", "bfloat16"),
                                                ("float64", "float32")])
def test_float_cast_beyond_range_gives_inf_without_a_warning(source, target):
    # HF code casts masks holding finfo(float32).min (or 1e10) to half precision: torch says nothing
    values = [3e38, -3e38, 1e10, 1.5] if source == "float32" else [1e300, -1e300, 1e10, 1.5]
    expected = torch.tensor(values, dtype=getattr(torch, source)).to(getattr(torch, target))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = chainrule.tensor(values, dtype=getattr(chainrule, source)).to(getattr(chainrule, target))
        where = chainrule.where(chainrule.tensor([True, False]), chainrule.ones(2, dtype=chainrule.float16),
                                chainrule.tensor(1e10))
    np.testing.assert_array_equal(ours.float().numpy(), expected.float().numpy())
    assert where.dtype == chainrule.float16
    assert where.tolist() == torch.where(torch.tensor([True, False]), torch.ones(2, dtype=torch.float16),
                                         torch.tensor(1e10)).tolist()


INFO_CASES = {
    "finfo_int32": lambda t: t.finfo(t.int32),
    "finfo_bool": lambda t: t.finfo(t.bool),
    "finfo_name": lambda t: t.finfo("float32"),
    "finfo_numpy_type": lambda t: t.finfo(np.float32),
    "finfo_numpy_dtype": lambda t: t.finfo(np.dtype("float32")),
    "finfo_number": lambda t: t.finfo(3),
    "iinfo_bool": lambda t: t.iinfo(t.bool),
    "iinfo_float32": lambda t: t.iinfo(t.float32),
    "iinfo_complex64": lambda t: t.iinfo(t.complex64),
    "iinfo_python_float": lambda t: t.iinfo(float),
    "iinfo_name": lambda t: t.iinfo("int32"),
}


@pytest.mark.parametrize("case", sorted(INFO_CASES))
def test_finfo_iinfo_refusals_in_torch_words(case):
    fn = INFO_CASES[case]
    assert _outcome(chainrule, lambda t: fn(t).bits) == _outcome(torch, lambda t: fn(t).bits)


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "bfloat16", "complex64", "complex128",
                                  "float8_e4m3fn", None, "python_float"])
def test_finfo_fields_and_dtype_name_as_torch(name):
    def info(t):
        if name is None:
            return t.finfo()
        return t.finfo(float if name == "python_float" else getattr(t, name))

    ours, theirs = info(chainrule), info(torch)
    # torch's finfo.dtype is the name as a str ('float32' for complex64 too)
    assert ours.dtype == theirs.dtype and isinstance(ours.dtype, str)
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, field) == getattr(theirs, field), field


@pytest.mark.parametrize("name", ["int8", "uint8", "int16", "int32", "int64", "python_int"])
def test_iinfo_fields_and_dtype_name_as_torch(name):
    def info(t):
        return t.iinfo(int if name == "python_int" else getattr(t, name))

    ours, theirs = info(chainrule), info(torch)
    assert (ours.dtype, ours.bits, ours.min, ours.max) == (theirs.dtype, theirs.bits, theirs.min, theirs.max)
    assert isinstance(ours.dtype, str)


POOL_CASES = {
    "avg_pool1d": lambda t: t.nn.functional.avg_pool1d(t.ones(1, 2, 3), 5),
    "avg_pool1d_unbatched": lambda t: t.nn.functional.avg_pool1d(t.ones(2, 3), 5),
    "lp_pool1d": lambda t: t.nn.functional.lp_pool1d(t.ones(1, 2, 3), 2, 5),
    "avg_pool2d": lambda t: t.nn.functional.avg_pool2d(t.ones(1, 2, 3, 3), 5),
    "AvgPool1d_module": lambda t: t.nn.AvgPool1d(kernel_size=7, stride=1, padding=0)(t.ones(4, 3, 5)),
}


@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pool_output_too_small_message_as_torch(case):
    # Autoformer's moving_avg: an AvgPool1d kernel longer than the padded series
    fn = POOL_CASES[case]
    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize("form", ["tensors", "numbers", "method", "grad"])
def test_where_takes_a_uint8_condition_with_torchs_deprecation_warning(form):
    def run(t):
        condition = t.tensor([2, 0, 1], dtype=t.uint8)
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        if form == "tensors":
            out = t.where(condition, x, t.zeros(3))
        elif form == "numbers":
            out = t.where(condition, 1.0, 0.0)
        elif form == "method":
            out = x.where(condition, -1.0)
        else:
            t.where(condition, x * x, 0.0).sum().backward()
            out = x.grad
        return out.detach().numpy()

    results = []
    for lib in (torch, chainrule):
        previous = lib.is_warn_always_enabled()
        lib.set_warn_always(True)  # TORCH_WARN_ONCE would stay silent after an earlier test's warning
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                values = run(lib)
        finally:
            lib.set_warn_always(previous)
        results.append((values, [(w.category, str(w.message)) for w in caught]))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    assert results[1][1] == results[0][1]
    assert results[0][1], "torch warned"


LEGACY_CASES = {
    "float_size": (2, 3.0),
    "none_size": (2, None),
    "list_size": (2, [3]),
    "str_third": (2, 3, "a"),
    "float_data": (2.0,),
    "str_data": ("a",),
    "dict_data": ({2: 1},),
    "tensor_first_size": "tensor(2), 3",
    "tensor_one_element_size": "2, tensor([3])",
    "tensor_two_element_size": "2, tensor([3, 4])",
    "bool_second_size": (2, True),
    "plain_sizes": (2, 3),
}


@pytest.mark.parametrize("case", sorted(LEGACY_CASES))
def test_legacy_constructor_sizes_and_refusals_as_torch(case):
    # JEM's replay buffer: t.FloatTensor(bs, n_ch, im_sz, im_sz).uniform_(-1, 1)
    spec = LEGACY_CASES[case]

    def fn(t):
        if isinstance(spec, str):
            args = eval(f"({spec},)", {"tensor": t.tensor})  # noqa: S307 - the case's own literal
        else:
            args = spec
        return t.FloatTensor(*args)

    assert _outcome(chainrule, fn) == _outcome(torch, fn)


@pytest.mark.parametrize("shape, sizes", [
    ((2, 2), (3, 3)), ((2, 2, 2), (3, 2, 3)), ((2, 3), (-1, 4)), ((2, 1, 3), (5, 3, 4, 2)),
    ((2, 2), (-1, 2, 3)), ((2, 2), (-2, 2, 3)), ((1, 2), (4, -1, 5)),
])
def test_expand_reports_the_last_mismatching_dim_as_torch(shape, sizes):
    # torch's infer_expand_geometry walks the dims from the last: with several mismatches (or a
    # negative leading size beside one) its message names the last
    def call(lib):
        try:
            return tuple(lib.zeros(shape).expand(*sizes).shape)
        except RuntimeError as error:
            return str(error)

    assert call(chainrule) == call(torch)


def test_add_a_product_ops_name_a_bool_input_as_expand_does():
    # addr's input check shares expand's geometry and words: a bool tensor is CPUBoolType there
    def call(lib):
        try:
            lib.addr(lib.ones(2, 2, 2, dtype=lib.bool), lib.ones(2, dtype=lib.bool), lib.ones(2, dtype=lib.bool))
        except RuntimeError as error:
            return str(error)

    assert call(chainrule) == call(torch)
