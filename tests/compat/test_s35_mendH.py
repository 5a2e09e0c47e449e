"""Session 35, lane mendH: leftovers from the day's lanes, each call made on torch 2.13 and on
chainrule with the same arguments and compared (values, or the exception's type and message)."""

import warnings

import numpy as np
import pytest

import chainrule
from tests._fresh_process import batched

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    """What ``call(lib)`` gives: ("ok", value as an array) or ("raised", type name, message)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call(lib)
    except Exception as error:
        return "raised", type(error).__name__, str(error)
    if hasattr(result, "detach"):
        result = result.detach().numpy()
    return "ok", np.asarray(result)


def assert_as_torch(call):
    """``call(lib)`` gives on chainrule what it gives on torch: the same values, or the same
    exception class and message."""
    expected, actual = _outcome(torch, call), _outcome(chainrule, call)
    assert expected[0] == actual[0], (expected, actual)
    if expected[0] == "raised":
        assert expected[1:] == actual[1:]
    else:
        np.testing.assert_array_equal(actual[1], expected[1])


# ---- 1. "(position N)" where nn.functional passes a bad argument on positionally

def _x(lib):
    return lib.ones(2, 3, 4)


def _m(lib):
    return lib.ones(2, 3)


def _labels(lib):
    return lib.zeros(2, dtype=lib.long)


@pytest.mark.parametrize("call", [
    lambda lib: lib.nn.functional.batch_norm(_x(lib), None, None, None, None, True, "a"),
    lambda lib: lib.nn.functional.batch_norm(_x(lib), None, None, training=True, momentum="a"),
    lambda lib: lib.nn.functional.batch_norm(_x(lib), None, None, training=True, eps="a"),
    lambda lib: lib.nn.functional.batch_norm(_x(lib), lib.zeros(3), lib.ones(3), eps="a"),
    lambda lib: lib.nn.functional.layer_norm(_x(lib), (4,), None, None, "a"),
    lambda lib: lib.nn.functional.layer_norm(_x(lib), (4,), eps="a"),
    lambda lib: lib.nn.functional.group_norm(_x(lib), 1, eps="a"),
    lambda lib: lib.nn.functional.instance_norm(_x(lib), None, None, None, None, True, "a"),
    lambda lib: lib.nn.functional.instance_norm(_x(lib), eps="a"),
    lambda lib: lib.nn.functional.pad(_x(lib), (1, 1), "constant", "a"),
    lambda lib: lib.nn.functional.pad(_x(lib), (1, 1), value=lib.ones(1)),
    lambda lib: lib.nn.functional.poisson_nll_loss(_m(lib), _m(lib), eps="a"),
    lambda lib: lib.nn.functional.hinge_embedding_loss(_m(lib), _m(lib), "a"),
    lambda lib: lib.nn.functional.cosine_embedding_loss(_m(lib), _m(lib), lib.ones(2), "a"),
    lambda lib: lib.nn.functional.multi_margin_loss(_m(lib), _labels(lib), 1, "a"),
    lambda lib: lib.nn.functional.multi_margin_loss(_m(lib), _labels(lib), margin=lib.ones(1)),
    lambda lib: lib.nn.functional.multi_margin_loss(_m(lib), _labels(lib), margin=lib.tensor(2.0)),
    lambda lib: lib.nn.functional.multi_margin_loss(_m(lib), _labels(lib), margin=2),
    lambda lib: lib.nn.functional.margin_ranking_loss(_m(lib), _m(lib), _m(lib), lib.ones(1)),
    lambda lib: lib.nn.functional.margin_ranking_loss(_m(lib), _m(lib), _m(lib), lib.tensor(1.0, requires_grad=True)),
    lambda lib: lib.nn.functional.margin_ranking_loss(_m(lib), _m(lib), _m(lib), "a"),
    lambda lib: lib.nn.functional.margin_ranking_loss(_m(lib), -_m(lib), _m(lib), lib.tensor(0.5)),
    lambda lib: lib.nn.functional.pixel_shuffle(lib.ones(1, 4, 2, 2), 2.0),
    lambda lib: lib.nn.functional.pixel_unshuffle(lib.ones(1, 4, 2, 2), 2.0),
    lambda lib: lib.nn.functional.channel_shuffle(lib.ones(1, 4, 2, 2), 2.0),
    lambda lib: lib.nn.functional.cosine_similarity(_m(lib), _m(lib), 1.5),
    lambda lib: lib.nn.functional.cosine_similarity(_m(lib), _m(lib), 1, "a"),
])
def test_functional_refusals_give_the_position_torch_passes_on(call):
    assert_as_torch(call)


@pytest.mark.parametrize("call", [
    lambda lib: lib.layer_norm(_x(lib), (4,), eps="a"),
    lambda lib: lib.layer_norm(_x(lib), (4,), None, None, "a"),
    lambda lib: lib.layer_norm(_x(lib), 4),
    lambda lib: lib.batch_norm(_x(lib), None, None, None, None, True, momentum="a", eps=0.1, cudnn_enabled=False),
    lambda lib: lib.batch_norm(_x(lib), None, None, None, None, True, 0.1),
    lambda lib: lib.batch_norm(_x(lib), None, None, None, None, True, 0.1, 1e-5, False),
    lambda lib: lib.native_batch_norm(_x(lib), None, None, None, None, True, "a", 0.1),
    lambda lib: lib.instance_norm(_x(lib), None, None, None, None, True, 0.1, "a", False),
    lambda lib: lib.group_norm(_x(lib), 3.0),
    lambda lib: lib.hinge_embedding_loss(_m(lib), _m(lib), margin="a"),
    lambda lib: lib.hinge_embedding_loss(_m(lib), _m(lib), 1.0, "mean"),
    lambda lib: lib.cosine_embedding_loss(_m(lib), _m(lib), lib.ones(2), margin="a"),
    lambda lib: lib.poisson_nll_loss(_m(lib), _m(lib), True, False, eps="a", reduction=1),
    lambda lib: lib.poisson_nll_loss(_m(lib), _m(lib), True, False),
    lambda lib: lib.margin_ranking_loss(_m(lib), _m(lib), _m(lib), margin=lib.ones(1)),
    lambda lib: lib.margin_ranking_loss(_m(lib), _m(lib), _m(lib), lib.tensor(0.5), 2),
])
def test_top_level_norms_and_losses_parse_as_torch(call):
    assert_as_torch(call)


# ---- 2. keywords to a method of no arguments; the parser's words for random_ and randint_like

def _generator(lib):
    generator = lib.Generator()
    generator.manual_seed(0)
    return generator


@pytest.mark.parametrize("call", [
    lambda lib: lib.ones(2, 3).abs(a=1),
    lambda lib: lib.ones(2, 3).abs(x=1),
    lambda lib: lib.ones(2, 3).abs(b=1),
    lambda lib: lib.ones(2, 3).abs_(a=1),
    lambda lib: lib.ones(2, 3).neg(a=1),
    lambda lib: lib.ones(2, 3).t(a=1),
    lambda lib: lib.ones(2, 3).sum(axis=0),
    lambda lib: lib.abs(a=lib.ones(2, 3)),
    lambda lib: lib.ones(2, 3).add(x2=lib.ones(2, 3)),
])
def test_numpy_input_names_never_fill_self(call):
    assert_as_torch(call)


@pytest.mark.parametrize("call", [
    lambda lib: lib.ones(2, 3).random_(1.5, generator=_generator(lib)),
    lambda lib: lib.ones(2, 3).random_("a", generator=_generator(lib)),
    lambda lib: lib.ones(2, 3).random_(1, 2, 3, generator=_generator(lib)),
    lambda lib: lib.ones(2, 3).random_(to=1.5, generator=_generator(lib)),
    lambda lib: lib.ones(2, 3).random_(1.0, 5.0, generator=_generator(lib)),
    lambda lib: lib.Tensor.random_(lib.ones(2, 3), 1.5, generator=_generator(lib)),
    lambda lib: lib.ones(2, 3).random_(5, generator=_generator(lib)).lt(5).all(),
    lambda lib: lib.randint_like(lib.ones(2, 3), 5.5, generator=_generator(lib)),
    lambda lib: lib.randint_like(lib.ones(2, 3), 1.5, 5, generator=_generator(lib)),
])
def test_random_refusals_list_torch_overloads(call):
    assert_as_torch(call)


# ---- 3. one warn-once flag for every deprecated overload, with torch's C++ source suffix

_DEPRECATED_CALLS = {"add": "lib.add(x, 2, x)", "sub": "lib.sub(x, 2, x)", "addcmul": "lib.addcmul(x, 1, x, x)",
                     "addmm": "lib.addmm(1, x, x, x)", "Tensor.addmm": "x.addmm(1, x, x)", "Tensor.add": "x.add(2, x)"}


_CALL_SEQUENCES = [("add", "addmm"), ("addmm", "add"), ("Tensor.addmm", "Tensor.add"), ("addcmul", "addmm", "sub")]


def _warning_scripts(module: str) -> dict[str, str]:
    """For each sequence of calls, a script that runs them first thing in its process and prints the
    warnings they gave."""
    return {str(calls): (f"import warnings\nimport {module} as lib\nx = lib.ones(2, 2)\n"
                         "with warnings.catch_warnings(record=True) as caught:\n    warnings.simplefilter('always')\n"
                         + "".join(f"    {_DEPRECATED_CALLS[call]}\n" for call in calls)
                         + "print(repr([str(w.message) for w in caught]))")
            for calls in _CALL_SEQUENCES}


_warnings_in_fresh_processes = batched(_warning_scripts)


@pytest.mark.parametrize("calls", _CALL_SEQUENCES, ids=str)
def test_deprecated_overloads_share_torchs_one_warning(calls):
    expected = eval(_warnings_in_fresh_processes("torch")[str(calls)].output())
    assert len(expected) == 1
    assert eval(_warnings_in_fresh_processes("chainrule")[str(calls)].output()) == expected


# ---- 4. torch's top-level max pools: an implicit stride is taken, return_indices is not

def _planes(lib):
    return lib.tensor(np.arange(32.0, dtype=np.float32).reshape(1, 2, 4, 4) % 7)


@pytest.mark.parametrize("call", [
    lambda lib: lib.max_pool2d(_planes(lib), 2),
    lambda lib: lib.max_pool2d(_planes(lib), 2, None),
    lambda lib: lib.max_pool2d(_planes(lib), 2, ()),
    lambda lib: lib.max_pool2d(_planes(lib), kernel_size=2, ceil_mode=True),
    lambda lib: lib.max_pool2d(_planes(lib), 2, return_indices=True),
    lambda lib: lib.max_pool2d(_planes(lib), 2, 2, 0, 1, False, True),
    lambda lib: lib.max_pool2d(_planes(lib), "a"),
    lambda lib: lib.max_pool1d(_planes(lib)[0], 2, return_indices=True),
    lambda lib: lib.max_pool3d(_planes(lib)[None], 2, return_indices=True),
    lambda lib: lib.max_pool1d_with_indices(_planes(lib)[0], 2)[1],
    lambda lib: lib.nn.functional.max_pool2d(_planes(lib), 2, return_indices=True)[1],
])
def test_top_level_max_pools_take_torchs_signature(call):
    assert_as_torch(call)


# ---- 5. out= lists of split_copy/unbind_copy; dequantize of a list with no quantized tensor

def _written_outs(lib, call, outs):
    """``call(lib, outs)``'s result (None in torch) with the out tensors it wrote."""
    returned = call(lib, outs)
    assert returned is None
    return lib.cat([o.reshape(-1).double() for o in outs])


@pytest.mark.parametrize("call", [
    lambda lib: _written_outs(lib, lambda L, o: L.split_copy(L.arange(4.0), 2, out=o), [lib.empty(2), lib.empty(2)]),
    lambda lib: _written_outs(lib, lambda L, o: L.split_copy(L.arange(4.0), 2, 0, out=o),
                              (lib.empty(2, dtype=lib.long), lib.empty(2))),
    lambda lib: _written_outs(lib, lambda L, o: L.unbind_copy(L.arange(4.0).reshape(2, 2), out=o),
                              [lib.empty(2), lib.empty(2)]),
    lambda lib: _written_outs(lib, lambda L, o: L.split_with_sizes_copy(L.arange(4.0), [1, 3], out=o),
                              [lib.empty(1), lib.empty(3)]),
    lambda lib: lib.split_copy(lib.arange(4.0), 2, out=[lib.empty(2)]),
    lambda lib: lib.unbind_copy(lib.ones(2, 2), out=[lib.empty(2)]),
    lambda lib: lib.split_with_sizes_copy(lib.arange(4.0), [1, 3], out=[lib.empty(1)]),
    lambda lib: lib.split_copy(lib.arange(4.0), 2, out=[lib.empty(3), lib.empty(2)]),
    lambda lib: lib.split_copy(lib.arange(4.0), 2)[1],
])
def test_list_out_of_the_copy_variants(call):
    assert_as_torch(call)


@pytest.mark.parametrize("call", [lambda lib: lib.dequantize([lib.ones(2)]), lambda lib: lib.dequantize([])])
def test_dequantize_of_a_list_without_quantized_tensors_has_no_kernel(call):
    # torch goes on to list where each backend's kernel was registered: its first sentence is compared
    refusals = []
    for lib in (torch, chainrule):
        with pytest.raises(NotImplementedError) as refusal:
            call(lib)
        refusals.append(str(refusal.value).split(". ")[0])
    assert refusals[0] == refusals[1]


@pytest.mark.parametrize("call", [
    lambda lib: lib.dequantize(lib.ones(2)),
    lambda lib: lib.cat(lib.dequantize([lib.quantize_per_tensor(lib.ones(2), 0.1, 0, lib.quint8), lib.ones(2)])),
    lambda lib: type(lib.dequantize((lib.quantize_per_tensor(lib.ones(2), 0.1, 0, lib.quint8),))) is tuple,
])
def test_dequantize_of_a_list_dispatches_as_torch(call):
    assert_as_torch(call)


# ---- 6. the bfloat16 NaN torch's CPU conversions write

_NAN_BITS = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FC00001, 0x7FFFFFFF, 0xFFFFFFFF,
                      0x7FA00000, 0x3F800000, 0x7F800000], dtype=np.uint32)


def _bfloat16_bits(lib, make):
    pytest.importorskip("ml_dtypes")
    floats = lib.from_numpy(_NAN_BITS.view(np.float32).copy())
    return make(lib, floats).view(lib.int16)


@pytest.mark.parametrize("make", [
    lambda lib, f: f.to(lib.bfloat16),
    lambda lib, f: f.bfloat16(),
    lambda lib, f: f.reshape(2, 5).to(lib.bfloat16),
    lambda lib, f: f[::2].to(lib.bfloat16),
    lambda lib, f: f.reshape(2, 5).t().to(lib.bfloat16),
    lambda lib, f: f.double().to(lib.bfloat16),
    lambda lib, f: f.half().to(lib.bfloat16),
    lambda lib, f: lib.full((2,), float("nan"), dtype=lib.bfloat16),
    lambda lib, f: lib.tensor([float("nan")], dtype=lib.bfloat16),
], ids=["to", "method", "2-d", "strided", "transposed", "from float64", "from float16", "full", "tensor"])
def test_nan_to_bfloat16_has_torchs_bits(make):
    assert_as_torch(lambda lib: _bfloat16_bits(lib, make))


@pytest.mark.parametrize("out_requires_grad", [False, True])
@pytest.mark.parametrize("name", ["split_copy", "unbind_copy"])
def test_list_out_of_copy_variants_is_written_outside_autograd(name, out_requires_grad):
    # torch's out kernel writes each piece without a node: the outs stay leaves (one that requires
    # grad included) and no graph reaches them from the input
    def run(lib):
        x = lib.from_numpy(np.arange(12.0, dtype=np.float32).reshape(4, 3)).requires_grad_()
        shape = (2, 3) if name == "split_copy" else (3,)
        count = 2 if name == "split_copy" else 4
        outs = [lib.zeros(shape, requires_grad=out_requires_grad and i == 0) for i in range(count)]
        args = (2,) if name == "split_copy" else ()
        try:  # (torch refuses unbind_copy's out= under autograd, split_copy's it writes)
            returned = getattr(lib, name)(x, *args, out=outs)
        except RuntimeError as error:
            returned = str(error)
        return returned, [(o.requires_grad, o.grad_fn is None, o.detach().numpy().tolist()) for o in outs]

    assert run(chainrule) == run(torch)
