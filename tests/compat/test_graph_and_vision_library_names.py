"""The torch names PyTorch Geometric 2.8 and kornia 0.9 reach for, compared with torch 2.13: at import
(``torch.__config__``, ``torch.torch``, ``torch.futures``, ``torch.utils.dlpack``, ``torch._tensor_str``,
``torch.nn.modules.instancenorm``, ``torch._subclasses.fake_tensor``, ``torch.SymInt``) and on kornia's
paths (``torch.complex32`` in every warp's dtype check, ``is_autocast_enabled`` asked for mps and xpu,
``torch._assert_async``, ``torch._C._are_functorch_transforms_active``). The libraries themselves are
not needed (docs/compatibility-trials.md, session 14)."""

import importlib
import pickle
import threading

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(path):
    return importlib.import_module("torch." + path), importlib.import_module("chainrule." + path)


def _raised(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except Exception as error:  # the type and words are what is compared
        return type(error), str(error)
    return None


# ---------------------------------------------------------------- import-time names

def test_config_show_has_torchs_build_settings_line_and_parallel_info_its_sections():
    for lib in (torch, chainrule):
        text = lib.__config__.show()
        assert text.endswith("\n") and "  - Build settings: " in text and "USE_MKL=" in text
        info = lib.__config__.parallel_info()
        assert info.startswith("ATen/Parallel:\n\tat::get_num_threads() : ")
        assert "Environment variables:\n\tOMP_NUM_THREADS : " in info and "ATen parallel backend: " in info
    # PyTorch Geometric's test at import: chainrule links no MKL of its own
    assert "USE_MKL=OFF" in chainrule.__config__.show()


def test_torch_dot_torch_is_the_package_itself():
    assert torch.torch is torch
    assert chainrule.torch is chainrule


def test_dlpack_module_round_trips_and_names_the_device_codes():
    theirs, ours = _both("utils.dlpack")
    assert {k: int(v) for k, v in theirs.DLDeviceType.__members__.items()} == \
        {k: int(v) for k, v in ours.DLDeviceType.__members__.items()}
    x = chainrule.arange(6.0).reshape(2, 3)
    y = ours.from_dlpack(ours.to_dlpack(x))
    x[0, 0] = 10.0  # y shares x's memory, as torch's does
    assert y[0, 0].item() == 10.0 and y.shape == (2, 3)
    from_torch = ours.from_dlpack(torch.arange(4, dtype=torch.int32))
    assert from_torch.dtype is chainrule.int32 and from_torch.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("make", [
    lambda lib: lib.arange(3), lambda lib: lib.tensor([[0.6898, -0.3657], [-0.2513, -0.1907]]),
    lambda lib: lib.zeros(0), lambda lib: lib.zeros(2, 0), lambda lib: lib.tensor(3.5),
    lambda lib: lib.arange(2000.0), lambda lib: lib.tensor([1e-8, 1e6]), lambda lib: lib.tensor([True, False]),
])
def test_tensor_str_formats_the_body_as_torchs(make):
    ours, theirs = make(chainrule), make(torch)
    for indent in (0, 4, 9):
        assert chainrule._tensor_str._tensor_str(ours, indent) == torch._tensor_str._tensor_str(theirs, indent)
    assert chainrule._tensor_str._str(ours).replace("chainrule.", "torch.") == torch._tensor_str._str(theirs)


def test_tensor_str_print_options_are_the_ones_set_printoptions_changes():
    assert chainrule._tensor_str.PRINT_OPTS.precision == torch._tensor_str.PRINT_OPTS.precision == 4
    with chainrule._tensor_str.printoptions(precision=2):
        assert chainrule._tensor_str.PRINT_OPTS.precision == 2
        assert chainrule._tensor_str._tensor_str(chainrule.tensor([1.23456]), 0) == "[1.23]"
    assert chainrule._tensor_str.get_printoptions()["precision"] == 4


def test_instance_norm_base_is_importable_from_torchs_module_path_and_subclassable():
    theirs, ours = _both("nn.modules.instancenorm")
    assert {n for n in dir(theirs) if "InstanceNorm" in n} <= {n for n in dir(ours) if "InstanceNorm" in n}
    assert issubclass(ours.InstanceNorm2d, ours._InstanceNorm) and ours._InstanceNorm is \
        chainrule.nn.modules.normalization._InstanceNorm

    def subclass(base):  # a subclass that fills in torch's two hooks: unbatched (channels, length) only
        class Norm(base):
            def _check_input_dim(self, input):
                if input.dim() != 2:
                    raise ValueError(f"expected 2D input (got {input.dim()}D input)")

            def _get_no_batch_dim(self):
                return 2
        return Norm(3, affine=True)

    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    a, b = subclass(theirs._InstanceNorm), subclass(ours._InstanceNorm)
    np.testing.assert_allclose(b(chainrule.tensor(x)).detach().numpy(), a(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert _raised(lambda: b(chainrule.ones(2, 3, 4))) == _raised(lambda: a(torch.ones(2, 3, 4)))


@pytest.mark.parametrize("cls, shape", [("InstanceNorm1d", (2, 4, 5)), ("InstanceNorm1d", (4, 5)),
                                        ("InstanceNorm2d", (2, 4, 3, 3)), ("InstanceNorm3d", (4, 2, 2, 2))])
def test_instance_norm_checks_the_feature_size_as_torch(cls, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    with pytest.raises(ValueError) as theirs:
        getattr(torch.nn, cls)(3, affine=True)(torch.tensor(x))
    with pytest.raises(ValueError) as ours:
        getattr(chainrule.nn, cls)(3, affine=True)(chainrule.tensor(x))
    assert str(ours.value) == str(theirs.value)
    with pytest.warns(UserWarning) as their_warning:
        expected = getattr(torch.nn, cls)(3)(torch.tensor(x))
    with pytest.warns(UserWarning) as our_warning:
        got = getattr(chainrule.nn, cls)(3)(chainrule.tensor(x))
    assert str(our_warning[0].message) == str(their_warning[0].message)
    # stack level 2, as torch's: the Module's call machinery (nn/modules/module.py) in both
    assert our_warning[0].filename.endswith("nn/modules/module.py") and their_warning[0].filename.endswith(
        "nn/modules/module.py")
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError) as theirs:
        getattr(torch.nn, cls)(3)(torch.ones(4))
    with pytest.raises(ValueError) as ours:
        getattr(chainrule.nn, cls)(3)(chainrule.ones(4))
    assert str(ours.value) == str(theirs.value)


def test_is_fake_answers_false_for_eager_values_as_torch_does():
    theirs, ours = _both("_subclasses.fake_tensor")
    for make in (lambda lib: lib.ones(2), lambda lib: lib.empty(2, device="meta"), lambda lib: 3,
                 lambda lib: None):
        assert ours.is_fake(make(chainrule)) is theirs.is_fake(make(torch)) is False


def test_symbolic_size_types_exist_and_plain_numbers_are_not_instances():
    for name in ("SymInt", "SymFloat", "SymBool"):
        ours, theirs = getattr(chainrule, name), getattr(torch, name)
        assert isinstance(ours, type) and isinstance(theirs, type)
        for value in (3, 2.5, True, chainrule.tensor(1)):
            assert not isinstance(value, ours)
    # kornia's pyrdown: isinstance(height, (int, torch.SymInt)) on a plain size
    assert isinstance(4, (int, chainrule.SymInt))


# ---------------------------------------------------------------- torch.futures

@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_future_result_callbacks_and_chaining_as_torchs(lib):
    f = lib.futures.Future()
    calls = []
    chained = f.then(lambda fut: fut.wait() * 2)
    f.add_done_callback(lambda fut: calls.append(fut.value()))
    assert not f.done()
    f.set_result(5)
    assert f.done() and f.wait() == 5 and f.value() == 5 and chained.wait() == 10 and calls == [5]
    late = []
    f.add_done_callback(lambda fut: late.append(1))  # already completed: runs at once
    assert late == [1]
    assert _raised(f.set_result, 6)[0] is RuntimeError


def test_future_errors_as_torchs():
    outcomes = []
    for lib in (torch, chainrule):
        failed = lib.futures.Future()
        failed.set_exception(ValueError("bad"))
        chained_source = lib.futures.Future()
        chained = chained_source.then(lambda fut: 1 / 0)
        chained_source.set_result(1)
        error_type, message = _raised(chained.wait)
        outcomes.append((_raised(failed.wait), _raised(failed.value), error_type,
                         message.split("\n")[0].startswith("Got the following error when running the callback: "
                                                           "ZeroDivisionError: division by zero")))
    assert outcomes[0] == outcomes[1]
    assert outcomes[1][0] == (ValueError, "bad") and outcomes[1][3]


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_collect_all_and_wait_all_as_torchs(lib):
    a, b = lib.futures.Future(), lib.futures.Future()
    both = lib.futures.collect_all([a, b])
    a.set_result(1)
    assert not both.done()
    b.set_result(2)
    assert both.done() and [f.value() for f in both.wait()] == [1, 2]
    assert lib.futures.wait_all([a, b]) == [1, 2]
    failed = lib.futures.Future()
    failed.set_exception(ValueError("x"))
    assert _raised(lib.futures.wait_all, [a, failed]) == (ValueError, "x")


def test_future_wait_blocks_until_another_thread_completes_it():
    f = chainrule.futures.Future()
    worker = threading.Timer(0.05, lambda: f.set_result("done"))
    worker.start()
    assert f.wait() == "done"
    worker.join()


# ---------------------------------------------------------------- names on kornia's paths

def test_complex32_carries_torchs_fields_and_has_no_storage_here():
    ours, theirs = chainrule.complex32, torch.complex32
    assert chainrule.chalf is ours and str(ours) == "chainrule.complex32"
    for field in ("itemsize", "is_floating_point", "is_signed", "is_complex"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert pickle.loads(pickle.dumps(ours)) is ours and chainrule._dtype.to_dtype("complex32") is ours
    # kornia's warp dtype check: a membership test against a tuple that lists it
    assert chainrule.float32 in (chainrule.float16, chainrule.float32, chainrule.complex32)
    assert chainrule.float32 != ours and ours == chainrule.complex32
    with pytest.raises(NotImplementedError, match=r"not implemented for 'ComplexHalf'"):
        chainrule.zeros(2, dtype=ours)


@pytest.mark.parametrize("other", ["bool", "uint8", "int64", "uint16", "float16", "bfloat16", "float32", "float64",
                                   "complex32", "complex64", "complex128", "float8_e4m3fn"])
def test_complex32_promotes_as_torchs(other):
    def promoted(lib, first, second):
        try:
            return str(lib.promote_types(first, second)).split(".")[1]
        except RuntimeError as error:
            return type(error), str(error)

    assert promoted(chainrule, chainrule.complex32, getattr(chainrule, other)) == \
        promoted(torch, torch.complex32, getattr(torch, other))
    assert promoted(chainrule, getattr(chainrule, other), chainrule.complex32) == \
        promoted(torch, getattr(torch, other), torch.complex32)


@pytest.mark.parametrize("device_type", ["mps", "xpu", "hpu", "ipu", "xla", "mtia", "maia", "privateuseone"])
def test_autocast_state_of_devices_chainrule_does_not_run_on_is_off_with_torchs_dtype(device_type):
    # kornia asks is_autocast_enabled for cpu, cuda, mps and xpu in turn before every augmentation
    assert chainrule.is_autocast_enabled(device_type) is torch.is_autocast_enabled(device_type) is False
    assert str(chainrule.get_autocast_dtype(device_type)).split(".")[1] == \
        str(torch.get_autocast_dtype(device_type)).split(".")[1]


def test_autocast_state_still_refuses_a_device_torch_has_no_autocast_for():
    with pytest.raises(RuntimeError):
        torch.is_autocast_enabled("meta")
    with pytest.raises(RuntimeError, match="is_autocast_enabled"):
        chainrule.is_autocast_enabled("meta")


@pytest.mark.parametrize("make, message", [
    (lambda lib: lib.tensor(True), None), (lambda lib: lib.tensor(1.0), None),
    (lambda lib: lib.tensor(float("nan")), None), (lambda lib: lib.tensor([[2]]), None),
    (lambda lib: lib.tensor(0), None), (lambda lib: lib.tensor([0.0]), "boom"),
    (lambda lib: lib.tensor(0j), None), (lambda lib: lib.tensor([]), None), (lambda lib: lib.tensor([1, 1]), "m"),
])
def test_assert_async_passes_and_fails_as_torchs(make, message):
    def call(lib):
        args = (make(lib),) if message is None else (make(lib), message)
        return _raised(lambda: lib._assert_async(*args))

    assert call(chainrule) == call(torch)


def test_assert_async_refuses_a_non_tensor_as_torch():
    assert _raised(lambda: chainrule._assert_async(3)) == _raised(lambda: torch._assert_async(3))


def test_functorch_transforms_are_never_active_around_plain_tensors():
    assert chainrule._C._are_functorch_transforms_active() is torch._C._are_functorch_transforms_active() is False
    # inside chainrule's vmap the function sees plain slices: a data-dependent check runs as in eager
    seen = []

    def f(x):
        seen.append((chainrule._C._are_functorch_transforms_active(), type(x) is chainrule.Tensor))
        return x * 2

    chainrule.vmap(f)(chainrule.ones(3, 2))
    assert seen and all(active is False and plain for active, plain in seen)


# ---------------------------------------------------------------- index-format conversions and sparse flags

@pytest.mark.parametrize("indices, size, out_int32", [
    ([0, 0, 2, 3, 3, 3, 5], 7, False), ([0, 0, 2, 3, 3, 3, 5], 6, True), ([], 3, False), ([1, 1], 3, False),
    ([0, 1, 2], 0, False),
])
def test_coo_to_csr_row_pointers_as_torchs(indices, size, out_int32):
    # PyTorch Geometric's index2ptr (every sampler's CSC/CSR build)
    for dtype in ("int64", "int32"):
        ours = chainrule._convert_indices_from_coo_to_csr(
            chainrule.tensor(indices, dtype=getattr(chainrule, dtype)), size, out_int32=out_int32)
        theirs = torch._convert_indices_from_coo_to_csr(
            torch.tensor(indices, dtype=getattr(torch, dtype)), size, out_int32=out_int32)
        assert ours.tolist() == theirs.tolist() and str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("out_int32", [False, True])
def test_csr_to_coo_indices_as_torchs(transpose, out_int32):
    crow, col = [0, 2, 2, 5, 6], [0, 1, 0, 1, 2, 2]
    ours = chainrule._convert_indices_from_csr_to_coo(chainrule.tensor(crow), chainrule.tensor(col),
                                                      out_int32=out_int32, transpose=transpose)
    theirs = torch._convert_indices_from_csr_to_coo(torch.tensor(crow), torch.tensor(col), out_int32=out_int32,
                                                    transpose=transpose)
    assert ours.tolist() == theirs.tolist() and str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]


@pytest.mark.parametrize("values, dtype", [([[0, 1]], "int64"), ([0.0, 1.0], "float32")])
def test_index_conversions_refuse_what_torch_refuses(values, dtype):
    ours = _raised(chainrule._convert_indices_from_coo_to_csr, chainrule.tensor(values, dtype=getattr(chainrule, dtype)),
                   3)
    theirs = _raised(torch._convert_indices_from_coo_to_csr, torch.tensor(values, dtype=getattr(torch, dtype)), 3)
    assert ours == theirs and ours is not None
    floats = [0.0, 1.0]
    assert _raised(chainrule._convert_indices_from_csr_to_coo, chainrule.tensor(floats), chainrule.tensor([0.0])) == \
        _raised(torch._convert_indices_from_csr_to_coo, torch.tensor(floats), torch.tensor([0.0]))


def test_coalesced_flag_is_set_in_place_and_unchecked_as_torchs():
    import warnings
    outcomes = []
    for lib in (chainrule, torch):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note that sparse invariant checks are off
            a = lib.sparse_coo_tensor(lib.tensor([[1, 0], [0, 1]]), lib.tensor([1.0, 2.0]), (2, 2))
        before = _raised(a.indices)
        same = a._coalesced_(True) is a
        # the promise is not checked: the indices stay in the given (unsorted) order
        outcomes.append((before[0], same, a.is_coalesced(), a.indices().tolist(), a._coalesced_(False).is_coalesced()))
    assert outcomes[0] == outcomes[1]


# ---------------------------------------------------------------- state-dict load hooks (kornia's MKDDescriptor)

def _net(lib):
    lib.manual_seed(0)
    net = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.Linear(3, 1))
    net[0].register_buffer("scale", lib.ones(3))
    return net


@pytest.mark.parametrize("with_module", [False, True])
def test_load_pre_hook_fills_a_missing_entry_before_the_module_reads_it(with_module):
    results = []
    for lib in (torch, chainrule):
        net, calls = _net(lib), []

        def fill(*args, lib=lib, calls=calls):
            state_dict, prefix = args[-7], args[-6]
            calls.append((len(args), prefix, sorted(state_dict)))
            state_dict.setdefault(prefix + "scale", lib.full((3,), 2.0))

        handle = net[0]._register_load_state_dict_pre_hook(fill, with_module=with_module)
        source = {k: v for k, v in _net(lib).state_dict().items() if not k.endswith("scale")}
        result = net.load_state_dict(source)
        results.append((str(result), calls, net[0].scale.tolist()))
        handle.remove()
        net.load_state_dict(dict(source, **{"0.scale": lib.zeros(3)}))
        assert net[0].scale.tolist() == [0.0, 0.0, 0.0] and len(calls) == 1  # removed: not called again
    assert results[0] == results[1] and results[1][2] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("lib", [torch, chainrule], ids=["torch", "chainrule"])
def test_public_load_pre_hook_gets_the_module_first(lib):
    net, seen = _net(lib), []
    net[1].register_load_state_dict_pre_hook(lambda module, *rest: seen.append((module, rest[1])))
    net.load_state_dict(_net(lib).state_dict())
    assert seen == [(net[1], "1.")]


def test_load_post_hook_may_clear_missing_keys_and_must_return_nothing():
    outcomes = []
    for lib in (torch, chainrule):
        net = _net(lib)
        partial = {k: v for k, v in _net(lib).state_dict().items() if k != "1.bias"}
        seen = []

        def forgive(module, keys, seen=seen):
            seen.append((type(module).__name__, list(keys.missing_keys), list(keys.unexpected_keys)))
            keys.missing_keys.clear()

        handle = net.register_load_state_dict_post_hook(forgive)
        result = net.load_state_dict(partial)
        handle.remove()
        net.register_load_state_dict_post_hook(lambda module, keys: "not None")
        error = _raised(net.load_state_dict, _net(lib).state_dict())
        outcomes.append((str(result), seen, error[0], error[1].split(",")[0]))
    assert outcomes[0] == outcomes[1] and outcomes[1][1] == [("Sequential", ["1.bias"], [])]
