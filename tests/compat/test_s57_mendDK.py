"""Session 57, lane mendDK: sparse layouts and memory formats (is_contiguous/clone/to refusals on COO,
CSR and CSC; *_like of a compressed tensor keeping its layout)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

_FORMATS = (None, "contiguous_format", "preserve_format", "channels_last", "channels_last_3d")


def _outcome(call):
    """What ``call`` gives, comparable across the two libraries: an exception's class and first line (torch's
    dispatcher list cut off), or the result's layout, dtype, requires_grad and values."""
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return type(error).__name__, str(error).split("\n")[0].split(" If you are a Facebook")[0]
    if not hasattr(result, "layout"):
        return ("value", result)
    layout = str(result.layout).split(".")[-1]
    dense = result if layout == "strided" else result.to_dense()
    return layout, str(result.dtype).split(".")[-1], result.requires_grad, dense.tolist()


def _sparse(lib, layout):
    dense = lib.tensor([[0.0, 1.0, 3.0], [2.0, 0.0, 5.0]])
    return dense.to_sparse() if layout == "coo" else getattr(dense, f"to_sparse_{layout}")()


def _format(lib, name):
    return {} if name is None else {"memory_format": getattr(lib, name)}


_METHODS = {
    "is_contiguous": lambda lib, t, kw: t.is_contiguous(**kw),
    "clone": lambda lib, t, kw: t.clone(**kw),
    "torch.clone": lambda lib, t, kw: lib.clone(t, **kw),
    "contiguous": lambda lib, t, kw: t.contiguous(**kw),
    "to_dtype": lambda lib, t, kw: t.to(lib.float64, **kw),
    "to_same": lambda lib, t, kw: t.to(lib.float32, **kw),
    "double": lambda lib, t, kw: t.double(**kw),
}


@pytest.mark.parametrize("layout", ["coo", "csr", "csc"])
@pytest.mark.parametrize("method", sorted(_METHODS))
def test_memory_format_methods_on_sparse_layouts(layout, method):
    seen = [[_outcome(lambda lib=lib, name=name: _METHODS[method](lib, _sparse(lib, layout), _format(lib, name)))
             for name in _FORMATS] for lib in (torch, chainrule)]
    assert seen[1] == seen[0]


def test_compressed_is_contiguous_refused_in_torchs_words():
    for layout, kind in (("csr", "CSR"), ("csc", "CSC")):
        with pytest.raises(RuntimeError, match=f"^Sparse {kind} tensors do not have is_contiguous$"):
            _sparse(chainrule, layout).is_contiguous()
    with pytest.raises(RuntimeError, match=r"^to\(options\): Csr only supports memory format Preserve, but got "
                                           "Contiguous instead.$"):
        _sparse(chainrule, "csr").to(chainrule.float64, memory_format=chainrule.contiguous_format)


_LIKE = {"zeros_like": (), "ones_like": (), "full_like": (2.5,), "randn_like": (), "rand_like": (), "randint_like": (3,),
         "empty_like": ()}


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("like", sorted(_LIKE))
def test_like_of_a_compressed_tensor_keeps_its_layout(layout, like):
    extras = ({}, {"dtype": "float64"}, {"dtype": "int32"}, {"layout": "strided"}, {"requires_grad": True})
    seen = []
    for lib in (torch, chainrule):
        cases = []
        for name in _FORMATS:
            for extra in extras:
                kw = {key: getattr(lib, value) if key in ("dtype", "layout") else value for key, value in extra.items()}

                def call(lib=lib, kw=kw, name=name):
                    lib.manual_seed(3)
                    result = getattr(lib, like)(_sparse(lib, layout), *_LIKE[like], **kw, **_format(lib, name))
                    if like == "empty_like":  # (its values are torch's uninitialised memory: only the pattern)
                        return ("pattern", str(result.layout).split(".")[-1], result._nnz(), result.requires_grad)
                    return result

                cases.append(_outcome(call))
        seen.append(cases)
    assert seen[1] == seen[0]
    if like == "randn_like":  # the samples themselves: torch's normal_ on the values, from the same seed
        assert np.array_equal(seen[1][0][3], seen[0][0][3])
