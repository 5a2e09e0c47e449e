"""Session 21's printing trial (tools/torch_repr_trial.py): what users see printed, against torch."""

import pytest

import chainrule


def _torch():
    return pytest.importorskip("torch")


def test_optimizer_repr_leaves_an_empty_line_between_param_groups():
    weight, bias = chainrule.nn.Linear(2, 2).parameters()
    optimizer = chainrule.optim.SGD([{"params": [weight], "momentum": 0.5}, {"params": [bias]}], lr=0.1)
    text = repr(optimizer)
    assert text.startswith("SGD (\nParameter Group 0\n    dampening: 0\n")
    assert "    weight_decay: 0\n\nParameter Group 1\n" in text
    assert text.endswith("    weight_decay: 0\n)")


def test_optimizer_repr_matches_torch_with_groups():
    torch = _torch()

    def build(lib):
        weight, bias = lib.nn.Linear(2, 2).parameters()
        return lib.optim.AdamW([{"params": [weight]}, {"params": [bias], "lr": 1e-2, "weight_decay": 0.0}], lr=1e-3)

    assert repr(build(chainrule)) == repr(build(torch))


def test_linalg_slogdet_result_is_named_linalg_slogdet_and_slogdet_keeps_its_name():
    a = chainrule.tensor([[2.0, 1.0], [1.0, 3.0]])
    assert repr(chainrule.linalg.slogdet(a)) == (
        "chainrule.return_types.linalg_slogdet(\nsign=tensor(1.),\nlogabsdet=tensor(1.6094))")
    assert type(chainrule.slogdet(a)).__name__ == "slogdet"
    sign, logabsdet = chainrule.linalg.slogdet(a)
    assert float(sign) == 1.0


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64", "float8_e4m3fn", "float8_e5m2",
                                  "float8_e4m3fnuz", "float8_e5m2fnuz"])
def test_finfo_repr_matches_torch(name):
    torch = _torch()
    assert repr(chainrule.finfo(getattr(chainrule, name))) == repr(torch.finfo(getattr(torch, name)))


def test_finfo_of_float8_reports_a_resolution_of_one():
    assert chainrule.finfo(chainrule.float8_e4m3fn).resolution == 1.0
    assert chainrule.finfo(chainrule.float8_e5m2fnuz).eps == 0.125


@pytest.mark.parametrize("name", ["bool", "float32", "complex64"])
def test_iinfo_refuses_bool_and_floating_dtypes_with_type_error(name):
    with pytest.raises(TypeError, match="iinfo"):
        chainrule.iinfo(getattr(chainrule, name))


def test_format_of_a_0d_tensor_uses_its_number_only_for_plain_tensors_with_values():
    assert format(chainrule.tensor(2.71828), ".3f") == "2.718"
    assert f"{chainrule.tensor(42):>5}" == "   42"
    parameter = chainrule.nn.Parameter(chainrule.tensor(2.5))
    assert format(parameter, "") == "Parameter containing:\ntensor(2.5000, requires_grad=True)"
    with pytest.raises(TypeError, match="unsupported format string passed to Parameter.__format__"):
        format(parameter, ".2f")
    assert format(chainrule.empty((), device="meta"), "") == "tensor(..., device='meta', size=())"


def test_parameter_of_a_users_class_prints_wrapped_in_parameter():
    class MyTensor(chainrule.Tensor):
        pass

    class MyParameter(chainrule.nn.Parameter):
        pass

    assert repr(MyParameter(chainrule.ones(2), requires_grad=False)) == (
        "Parameter containing:\nParameter(MyParameter([1., 1.]))")
    assert repr(chainrule.nn.Parameter(chainrule.ones(2).as_subclass(MyTensor))) == (
        "Parameter(MyTensor([1., 1.], requires_grad=True))")
    assert repr(chainrule.nn.Parameter(chainrule.ones(2))) == "Parameter containing:\ntensor([1., 1.], requires_grad=True)"
    assert repr(chainrule.nn.LazyLinear(3).weight) == "<UninitializedParameter>"


def test_dual_tensor_prints_its_tangent_inside_its_level_only():
    forward_ad = chainrule.autograd.forward_ad
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(chainrule.tensor([1.0, 2.0]), chainrule.tensor([0.5, 0.25]))
        assert repr(dual) == "tensor([1., 2.], tangent=tensor([0.5000, 0.2500]))"
        assert repr(dual * 2) == "tensor([2., 4.], tangent=tensor([1.0000, 0.5000]))"
        assert repr(forward_ad.unpack_dual(dual).primal) == "tensor([1., 2.])"
    assert repr(dual) == "tensor([1., 2.])"


def test_public_types_print_under_the_package_name():
    assert repr(type(chainrule.zeros(1))) == "<class 'chainrule.Tensor'>"
    assert repr(chainrule.Size) == "<class 'chainrule.Size'>"
    assert repr(type(chainrule.float32)) == "<class 'chainrule.dtype'>"
    assert repr(type(chainrule.device("cpu"))) == "<class 'chainrule.device'>"
    assert repr(type(chainrule.strided)) == "<class 'chainrule.layout'>"


def test_public_types_still_pickle_and_a_subclass_still_finds_its_own_slots():
    import pickle

    from chainrule._subclass_copy import own_slots

    for value in (chainrule.Size([2, 3]), chainrule.float64, chainrule.device("cpu"), chainrule.strided):
        assert pickle.loads(pickle.dumps(value)) == value

    class Tagged(chainrule.Tensor):
        __slots__ = ("tag",)

    assert own_slots(Tagged) == ["tag"]


def test_generator_is_chainrule_c_generator_and_still_pickles():
    import pickle

    generator = chainrule.Generator().manual_seed(3)
    assert repr(type(generator)) == "<class 'chainrule._C.Generator'>"
    assert repr(generator).startswith("<chainrule._C.Generator object at 0x")
    assert chainrule._C.Generator is chainrule.Generator
    assert pickle.loads(pickle.dumps(generator)).initial_seed() == 3
