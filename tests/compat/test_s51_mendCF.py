"""Lane mendCF (session 51): inference tensors' detach and view(dtype), sparse compressed layouts,
torch's type names in Python-level errors -- each checked against torch on the same calls."""
import pytest
import torch

import chainrule


def _outcome(call):
    try:
        value = call()
    except Exception as error:  # noqa: BLE001 (the error is the outcome compared)
        return type(error).__name__, str(error)
    if isinstance(value, (torch.Tensor, chainrule.Tensor)):
        return "value", value.tolist()
    return "value", value


def _inference_ones(lib):
    with lib.inference_mode():
        return lib.ones(3)


def _detach_written(lib):
    x = _inference_ones(lib)
    d = x.detach()
    d.mul_(2)
    return d.is_inference(), d._version, x.tolist(), d.detach().add_(1).tolist(), d._version


def _detach_under_no_grad(lib):
    d = _inference_ones(lib).detach()
    with lib.no_grad():
        d.add_(1)
    return d.tolist()


def _detach_saved(lib):
    a = lib.ones(3, requires_grad=True)
    return (a * _inference_ones(lib).detach()).sum()


def _detach_in_inference_mode(lib):
    x = _inference_ones(lib)
    with lib.inference_mode():
        d = x.detach()
    return d.add_(1)


def _view_dtype(lib, dtype_name):
    x = _inference_ones(lib)
    v = x.view(getattr(lib, dtype_name))
    v.add_(1)
    return v.is_inference(), v._is_view(), v._version, v.view(-1).is_inference(), x.tolist()


def _view_dtype_inside(lib):
    x = _inference_ones(lib)
    with lib.inference_mode():
        v = x.view(lib.int32)
    return v.is_inference(), _outcome(lambda: v.add_(1))


def _view_dtype_saved(lib):
    a = lib.ones(3, requires_grad=True)
    (a * _inference_ones(lib).view(lib.float32)).sum().backward()
    return a.grad


INFERENCE_CASES = {
    "detach_written": _detach_written,
    "detach_under_no_grad": _detach_under_no_grad,
    "detach_saved": _detach_saved,
    "detach_requires_grad": lambda lib: _inference_ones(lib).detach().requires_grad_(),
    "detach_view_written": lambda lib: _inference_ones(lib).detach().view(3).add_(1),
    "detach_view_is_inference": lambda lib: _inference_ones(lib).detach().view(3).is_inference(),
    "detach_is_view": lambda lib: _inference_ones(lib).detach()._is_view(),
    "detach_in_inference_mode": _detach_in_inference_mode,
    "inference_write_refused": lambda lib: _inference_ones(lib).add_(1),
    "view_int32": lambda lib: _view_dtype(lib, "int32"),
    "view_float32": lambda lib: _view_dtype(lib, "float32"),
    "view_dtype_inside": _view_dtype_inside,
    "view_dtype_saved": _view_dtype_saved,
}


@pytest.mark.parametrize("case", sorted(INFERENCE_CASES))
def test_inference_detach_and_view_dtype_as_torch(case):
    make = INFERENCE_CASES[case]
    assert _outcome(lambda: make(chainrule)) == _outcome(lambda: make(torch))


# ---------------------------------------------------------------- torch's C type names in errors
def _type_name_objects(lib):
    return {
        "dtype": lib.float32, "float16": lib.float16, "bfloat16": lib.bfloat16, "qint8": lib.qint8,
        "Size": lib.Size([2]), "layout": lib.strided, "memory_format": lib.contiguous_format,
        "Generator": lib.Generator(), "finfo": lib.finfo(lib.float32), "iinfo": lib.iinfo(lib.int32),
        "device": lib.device("cpu"),
    }


_READ_ONLY = ("dtype", "float16", "bfloat16", "qint8", "Size", "layout", "memory_format", "Generator", "finfo",
              "iinfo")
_TYPE_NAME_CASES = {
    **{f"{kind}.foo": (kind, lambda o: o.foo) for kind in _READ_ONLY + ("device",)},
    **{f"{kind}.foo=1": (kind, lambda o: setattr(o, "foo", 1)) for kind in _READ_ONLY},
    **{f"del {kind}.foo": (kind, lambda o: delattr(o, "foo")) for kind in _READ_ONLY},
    "dtype.is_signed=": ("dtype", lambda o: setattr(o, "is_signed", True)),
    "del dtype.is_signed": ("dtype", lambda o: delattr(o, "is_signed")),
    "dtype.to_real=": ("dtype", lambda o: setattr(o, "to_real", 1)),
    "Size.numel=": ("Size", lambda o: setattr(o, "numel", 1)),
    "Generator.device=": ("Generator", lambda o: setattr(o, "device", 1)),
    "finfo.bits=": ("finfo", lambda o: setattr(o, "bits", 3)),
    "del finfo.bits": ("finfo", lambda o: delattr(o, "bits")),
    "iinfo.max=": ("iinfo", lambda o: setattr(o, "max", 3)),
    "hash finfo": ("finfo", hash),
    "hash iinfo": ("iinfo", hash),
    "dtype type()": ("dtype", lambda o: type(o)()),
    "float16 type()": ("float16", lambda o: type(o)()),
    "layout type()": ("layout", lambda o: type(o)()),
    "memory_format type()": ("memory_format", lambda o: type(o)()),
    "float16 type": ("float16", lambda o: (type(o).__module__.split(".")[1:], type(o).__qualname__)),
    "device <": ("device", lambda o: o < o),
    "device >=": ("device", lambda o: o >= o),
    "device ==": ("device", lambda o: o == o),
}


@pytest.mark.parametrize("case", sorted(_TYPE_NAME_CASES))
def test_type_names_in_errors_as_torch(case):
    kind, call = _TYPE_NAME_CASES[case]
    got = _outcome(lambda: call(_type_name_objects(chainrule)[kind]))
    expected = _outcome(lambda: call(_type_name_objects(torch)[kind]))
    assert got == expected


def test_type_name_changes_keep_pickling_copying_and_reprs():
    import copy
    import pickle

    for value in (chainrule.float32, chainrule.bfloat16, chainrule.strided, chainrule.channels_last):
        assert pickle.loads(pickle.dumps(value)) is value
        assert copy.deepcopy(value) is value
    size, device = chainrule.Size([2, 3]), chainrule.device("cpu", 0)
    assert (pickle.loads(pickle.dumps(size)), copy.copy(device)) == (size, device)
    assert type(pickle.loads(pickle.dumps(size))) is chainrule.Size
    info = copy.deepcopy(chainrule.finfo(chainrule.float16))
    assert (info.eps, info.dtype, repr(info)) == (torch.finfo(torch.float16).eps, "float16",
                                                 repr(torch.finfo(torch.float16)))
    generator = copy.deepcopy(chainrule.Generator().manual_seed(3))
    assert generator.initial_seed() == 3 and generator.device == chainrule.device("cpu")
    assert repr(chainrule.contiguous_format).endswith("contiguous_format")


def test_subclasses_of_the_c_types_take_attributes_as_torchs_do():
    for lib in (chainrule, torch):
        class Seeded(lib.Generator):
            pass

        generator = Seeded()
        generator.note = "kept"
        assert generator.note == "kept"
        with pytest.raises(AttributeError, match="'Seeded' object has no attribute 'other'"):
            _ = generator.other
