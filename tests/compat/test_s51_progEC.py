"""Gaps found around the session-51 programs (appnp_personalized_pagerank, painn_equivariant_messages,
graphormer_spatial_encoding), each compared with torch on the same inputs."""

import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")

# repeated indices (0, 1) and (1, 0), so coalescing sums two values at each
_INDICES = [[0, 1, 1, 0], [1, 0, 0, 1]]
_VALUES = [100, 120, 100, 1]
_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _coalesced(lib, dtype_name):
    dtype = getattr(lib, dtype_name)
    values = lib.tensor([True, False, True, True]) if dtype_name == "bool" else lib.tensor(_VALUES).to(dtype)
    coalesced = lib.sparse_coo_tensor(lib.tensor(_INDICES), values, (2, 2)).coalesce()
    return str(coalesced.dtype), str(coalesced.values().dtype), coalesced.indices().tolist(), \
        coalesced.values().tolist()


@pytest.mark.parametrize("dtype_name", _DTYPES)
def test_coalesce_sums_repeated_indices_in_the_values_dtype(dtype_name):
    # torch sums in the values' dtype: bool ORs, int8/uint8 wrap (100 + 120 is -36 in int8);
    # NumPy's add.reduceat summed bool and narrow ints in int64/uint64 and changed the dtype
    seen = _coalesced(chainrule, dtype_name)
    expected = _coalesced(torch, dtype_name)
    assert seen[:2] == tuple(s.replace("torch.", "chainrule.") for s in expected[:2])
    assert seen[2:] == expected[2:]
