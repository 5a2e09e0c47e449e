"""Session 33, lane progAP: what the wav2vec 2.0, Temporal Fusion Transformer and DenseNet programs
found different from torch 2.13, each checked against torch on the same inputs."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- the legacy constructors given a tensor
# fairseq's GradMultiply returns ``x.new(x)`` from its forward: torch's legacy constructor given a
# tensor returns an alias (the same memory and version counter, on the graph as AliasBackward0, in the
# tensor's own dtype), where chainrule made a detached copy in the default dtype.


def _legacy_report(make_alias, lib):
    """What a user can see of ``make_alias(lib, source)``: its values and dtype, its grad_fn, whether a
    write through it shows in the source, the versions, and the gradient that reaches the source."""
    source = lib.arange(6.0).view(2, 3).requires_grad_(True)
    through = source * 1
    alias = make_alias(lib, through)
    report = {"values": alias.tolist(), "dtype": str(alias.dtype).split(".")[-1], "type": type(alias).__name__,
              "grad_fn": type(alias.grad_fn).__name__, "stride": alias.stride()}
    (alias * lib.arange(6.0).view(alias.shape)).sum().backward()
    report["grad"] = source.grad.tolist()
    with lib.no_grad():
        plain = lib.arange(4).view(2, 2)
        aliased = make_alias(lib, plain) if make_alias is not _float_tensor else make_alias(lib, plain.float())
        aliased[0, 0] = 7
        report["plain"] = (aliased.tolist(), str(aliased.dtype).split(".")[-1], aliased._version)
        report["written through"] = plain.tolist() if make_alias is not _float_tensor else None
    return report


def _float_tensor(lib, t):
    return lib.FloatTensor(t)


class _Subclass:
    """A user subclass without __init__ of its own, made per library."""

    classes: dict = {}

    @classmethod
    def of(cls, lib):
        if lib not in cls.classes:
            cls.classes[lib] = type("MyTensor", (lib.Tensor,), {})
        return cls.classes[lib]


_LEGACY_CASES = {
    "x.new(x)": lambda lib, t: t.new(t),
    "Tensor(t)": lambda lib, t: lib.Tensor(t),
    "subclass(t)": lambda lib, t: _Subclass.of(lib)(t),
    "FloatTensor(t)": _float_tensor,
    "x.new(a strided slice)": lambda lib, t: t.new(t.t()),
}


@pytest.mark.parametrize("case", _LEGACY_CASES)
def test_legacy_constructor_given_a_tensor_is_torchs_alias(case):
    make = _LEGACY_CASES[case]
    assert _legacy_report(make, chainrule) == _legacy_report(make, torch)


@pytest.mark.parametrize("other", ["long", "double"])
def test_new_given_a_tensor_of_another_dtype_is_torchs_type_error(other):
    def outcome(lib):
        try:
            lib.ones(2).new(lib.ones(2, dtype=getattr(lib, other)))
        except TypeError as error:
            return str(error)
        return "no error"

    assert outcome(chainrule) == outcome(torch)

