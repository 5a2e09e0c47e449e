"""Session 44, lane progBS: what the VICReg/SimSiam, HiFi-GAN and stacked-hourglass programs (and the
edges of their idioms) found different from torch 2.13, each checked against torch on the same inputs."""

import sys
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- weight_norm's deprecation warning
# torch deprecates WeightNorm.apply (typing_extensions' @deprecated, stacklevel 1), so the warning
# names apply's caller: a line of the library when it comes through nn.utils.weight_norm (shown once
# per process under the default filters: HiFi-GAN's generator calls weight_norm from dozens of
# lines and torch prints one warning), the user's line when apply is called directly. chainrule
# warned from weight_norm at the user's line: once per call site, and never from apply.

def _weight_norm_calls(lib, how):
    weight_norm = lib.nn.utils.weight_norm
    if how == "three call sites":
        weight_norm(lib.nn.Linear(2, 2))
        weight_norm(lib.nn.Conv1d(2, 2, 3))
        weight_norm(lib.nn.ConvTranspose1d(2, 2, 4, 2, padding=1))
    elif how == "a loop":
        for _ in range(4):
            weight_norm(lib.nn.Conv1d(2, 2, 3, dilation=3, padding=3))
    elif how == "WeightNorm.apply directly":
        hook_class = sys.modules[lib.__name__ + ".nn.utils.weight_norm"].WeightNorm
        for _ in range(2):
            hook_class.apply(lib.nn.Linear(2, 2), "weight", 0)
    elif how == "a second hook on one weight":
        layer = weight_norm(lib.nn.Linear(2, 2))
        with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks on the same parameter weight"):
            weight_norm(layer)


@pytest.mark.parametrize("how", ["three call sites", "a loop", "WeightNorm.apply directly",
                                 "a second hook on one weight"])
@pytest.mark.parametrize("action", ["default", "always"])
def test_weight_norm_deprecation_warns_as_often_and_where_torch_does(how, action):
    seen = {}
    for lib in (torch, chainrule):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter(action)
            _weight_norm_calls(lib, how)
        seen[lib.__name__] = [(w.category, str(w.message), w.filename == __file__) for w in caught]
    assert seen["torch"], "torch warned nothing: the comparison would be empty"
    assert seen["chainrule"] == seen["torch"]


# ---------------------------------------------------------------- Distribution.sample_n's deprecation
# Probing the other @deprecated spellings torch warns about (beside weight_norm's): sample_n warned
# nothing here. torch warns FutureWarning at the caller's line before sampling, once per line under
# the default filters; the samples are sample((n,))'s.

@pytest.mark.parametrize("build", [lambda lib: lib.distributions.Normal(lib.zeros(2), 1.0),
                                   lambda lib: lib.distributions.Categorical(logits=lib.zeros(3))],
                         ids=["Normal", "Categorical"])
def test_sample_n_warns_and_samples_as_torch(build):
    seen = {}
    for lib in (torch, chainrule):
        dist = build(lib)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            lib.manual_seed(0)
            first = dist.sample_n(4)
            for _ in range(2):
                dist.sample_n(1)
        lib.manual_seed(0)
        again = dist.sample((4,))
        assert lib.equal(first, again)
        seen[lib.__name__] = (tuple(first.shape), str(first.dtype).split(".")[-1],
                              [(w.category, str(w.message), w.filename == __file__, w.lineno) for w in caught])
    assert seen["torch"][2], "torch warned nothing: the comparison would be empty"
    assert seen["chainrule"] == seen["torch"]


# ---------------------------------------------------------------- two deprecated names that were missing
# The same probe found torch.nn.modules.rnn.apply_permutation (old RNN code's hidden-state reordering)
# and torch._utils.is_compiling (older libraries' compile guard) missing: AttributeError here.

def test_apply_permutation_reorders_and_warns_as_torch():
    seen = {}
    for lib in (torch, chainrule):
        rnn_module = sys.modules[lib.__name__ + ".nn.modules.rnn"]
        hidden = lib.arange(24.0).view(2, 3, 4)
        permutation = lib.tensor([2, 0, 1])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            by_default = rnn_module.apply_permutation(hidden, permutation)
            along_2 = rnn_module.apply_permutation(hidden, lib.tensor([3, 1]), dim=2)
        seen[lib.__name__] = (by_default.tolist(), along_2.tolist(),
                              [(w.category, str(w.message), w.filename == __file__) for w in caught])
    assert seen["torch"][2], "torch warned nothing: the comparison would be empty"
    assert seen["chainrule"] == seen["torch"]


def test_utils_is_compiling_answers_and_warns_as_torch():
    seen = {}
    for lib in (torch, chainrule):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            answer = lib._utils.is_compiling()
        seen[lib.__name__] = (answer, [(w.category, str(w.message), w.filename == __file__) for w in caught])
    assert seen["torch"][1], "torch warned nothing: the comparison would be empty"
    assert seen["chainrule"] == seen["torch"]


# ---------------------------------------------------------------- where deprecation warnings point
# Probing the warnings raised with a fixed stacklevel: torch.range's and torch.frombuffer's (of a
# read-only buffer) named chainrule's argument parser, where torch names the user's line (the
# parser's wrapper frame sits between the user and the function); torch.chain_matmul warned nothing,
# where torch warns once a process (TORCH_WARN_ONCE; every call under set_warn_always(True)).

WARNING_CASES = {
    "range": lambda lib: lib.range(0, 3),
    "range with step and dtype": lambda lib: lib.range(0, 3, 0.5, dtype=lib.float64),
    "frombuffer of bytes": lambda lib: lib.frombuffer(b"abcd", dtype=lib.uint8),
    "chain_matmul": lambda lib: lib.chain_matmul(lib.eye(2), 2 * lib.eye(2)),
}


@pytest.mark.parametrize("case", sorted(WARNING_CASES))
def test_deprecation_warnings_name_the_users_line_as_torch(case):
    seen = {}
    for lib in (torch, chainrule):
        previous = lib.is_warn_always_enabled()
        lib.set_warn_always(True)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = WARNING_CASES[case](lib)
        finally:
            lib.set_warn_always(previous)
        seen[lib.__name__] = (result.tolist(), [(w.category, str(w.message), w.filename == __file__) for w in caught])
    assert seen["torch"][1], "torch warned nothing: the comparison would be empty"
    if case == "chain_matmul":  # torch's points into its torch/functional.py, chainrule's at the caller
        seen = {name: (values, [entry[:2] for entry in found]) for name, (values, found) in seen.items()}
    assert seen["chainrule"] == seen["torch"]


# ---------------------------------------------------------------- capturable=True with no gradients
# Found by the same warnings probe: torch checks capturable's devices over the parameters that have a
# gradient, so a CPU step before any backward (a scheduler warm-up, an empty first accumulation) is a
# no-op; chainrule raised the AssertionError for every parameter.

@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "ASGD", "NAdam", "RAdam", "Rprop", "Adadelta",
                                  "RMSprop"])
@pytest.mark.parametrize("foreach", [None, True])
def test_capturable_step_without_gradients_is_a_no_op_as_torch(name, foreach):
    seen = {}
    for lib in (torch, chainrule):
        param = lib.nn.Parameter(lib.ones(2))
        options = {"capturable": True} if foreach is None else {"capturable": True, "foreach": foreach}
        optimizer = getattr(lib.optim, name)([param], **options)
        optimizer.step()
        first = (param.tolist(), len(optimizer.state))
        param.grad = lib.ones(2)
        with pytest.raises(AssertionError) as raised:
            optimizer.step()
        seen[lib.__name__] = (first, str(raised.value).split(". (")[0].rstrip("."))
    assert seen["chainrule"] == seen["torch"]
