"""Bugs found by the s24 programs (tests/programs/ppo_continuous, pointnet, char_rnn_classify,
mixture_density, fx_conv_bn_fusion), each checked against torch."""

import pytest

import chainrule
import chainrule.nn.functional as F

torch = pytest.importorskip("torch")


def _calls(module_namespace, body):
    """The (name, args after the first, kwargs) of every call_function node of body traced by fx."""

    class Model(module_namespace.nn.Module):
        def forward(self, x):
            return body(module_namespace.nn.functional, x)

    graph = module_namespace.fx.symbolic_trace(Model()).graph
    return [(node.target.__name__, tuple(map(str, node.args[1:])), dict(node.kwargs))
            for node in graph.nodes if node.op == "call_function"]


BODIES = {
    "relu": lambda F, x: F.relu(x),
    "relu_inplace_positional": lambda F, x: F.relu(x, True),
    "dropout": lambda F, x: F.dropout(x, 0.1),
    "softmax": lambda F, x: F.softmax(x, 1),
    "log_softmax_keyword": lambda F, x: F.log_softmax(x, dim=-1),
    "max_pool2d": lambda F, x: F.max_pool2d(x, 2),
    "max_pool2d_keywords": lambda F, x: F.max_pool2d(x, kernel_size=3, stride=2, padding=1),
    "layer_norm": lambda F, x: F.layer_norm(x, (4,)),
    "leaky_relu": lambda F, x: F.leaky_relu(x, 0.2),
    "hardtanh": lambda F, x: F.hardtanh(x, -2.0),
    "adaptive_avg_pool2d": lambda F, x: F.adaptive_avg_pool2d(x, 1),
    "batch_norm": lambda F, x: F.batch_norm(x, None, None, training=True),
    "interpolate": lambda F, x: F.interpolate(x, scale_factor=2),
    "normalize": lambda F, x: F.normalize(x),
    "pad": lambda F, x: F.pad(x, (1, 1)),
    "mse_loss": lambda F, x: F.mse_loss(x, x),
    "cross_entropy": lambda F, x: F.cross_entropy(x, x, label_smoothing=0.1),
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_fx_records_functional_calls_as_torch_spells_them(case):
    # torch's nn.functional hands __torch_function__ the leading arguments positionally and the rest
    # as keywords with their values, defaults included: fx records F.relu(x) as relu(x, inplace=False)
    assert _calls(chainrule, BODIES[case]) == _calls(torch, BODIES[case])


def test_fx_code_of_a_relu_names_its_inplace_flag_as_torch_does():
    def code(namespace):
        class Model(namespace.nn.Module):
            def forward(self, x):
                return namespace.nn.functional.relu(x)

        return namespace.fx.symbolic_trace(Model()).code

    assert code(chainrule) == code(torch)
    assert "torch.nn.functional.relu(x, inplace = False)" in code(chainrule)


def test_a_function_mode_sees_torch_spelling_of_a_functional_call():
    def seen(namespace):
        calls = []

        class Recorder(namespace.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if getattr(func, "__name__", None) == "softmax" and "functional" in func.__module__:
                    calls.append((len(args), dict(kwargs)))
                return func(*args, **kwargs)

        x = namespace.ones(2, 3)
        with Recorder():
            out = namespace.nn.functional.softmax(x, 1)
        return calls, out.sum().item()

    assert seen(chainrule) == seen(torch)
    assert seen(chainrule)[0] == [(1, {"dim": 1, "_stacklevel": 3, "dtype": None})]


def test_respelled_call_still_computes_the_same_values_and_errors():
    x = chainrule.tensor([[-1.0, 2.0], [3.0, -4.0]])

    class Passthrough(chainrule.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with Passthrough():
        assert F.leaky_relu(x, 0.5).tolist() == [[-0.5, 2.0], [3.0, -2.0]]
        assert F.max_pool2d(x[None], 2).tolist() == [[[3.0]]]
        # a call the op refuses is handed on as written and refused by the op, as outside the mode
        with pytest.raises(TypeError):
            F.relu(x, True, True)


def test_fx_traces_functional_sigmoid_and_tanh_as_tensor_methods():
    # torch's F.sigmoid/F.tanh are ``input.sigmoid()``/``input.tanh()``: no dispatch of their own
    def code(namespace):
        class Model(namespace.nn.Module):
            def forward(self, x):
                return namespace.nn.functional.tanh(namespace.nn.functional.sigmoid(x))

        return namespace.fx.symbolic_trace(Model()).code

    assert code(chainrule) == code(torch)
    assert "x.sigmoid()" in code(chainrule)


def test_a_function_mode_sees_what_sigmoid_and_tanh_modules_and_functions_call():
    def seen(namespace):
        names = []

        class Recorder(namespace.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kinds = {namespace.sigmoid: "torch.sigmoid", namespace.tanh: "torch.tanh",
                         namespace.Tensor.sigmoid: "Tensor.sigmoid", namespace.Tensor.tanh: "Tensor.tanh"}
                names.append(kinds.get(func, func.__name__))
                return func(*args, **(kwargs or {}))

        x = namespace.tensor([0.0, 1.0])
        with Recorder():
            values = [namespace.nn.Sigmoid()(x), namespace.nn.Tanh()(x),
                      namespace.nn.functional.sigmoid(x), namespace.nn.functional.tanh(x)]
        return names, [[round(v, 6) for v in value.tolist()] for value in values]

    assert seen(chainrule) == seen(torch)
    assert seen(chainrule)[0] == ["torch.sigmoid", "torch.tanh", "Tensor.sigmoid", "Tensor.tanh"]


LOSS_MODULES = ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
                "BCEWithLogitsLoss", "KLDivLoss", "SoftMarginLoss"]


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # KLDivLoss's own, in torch too
@pytest.mark.parametrize("name", LOSS_MODULES)
def test_loss_modules_call_the_functional_loss_that_modes_and_fx_see(name):
    # torch's loss modules call F.<loss>(input, target, reduction=...): a mode sees that call and
    # fx, tracing through the module, records it in torch's spelling
    def seen(namespace):
        module = getattr(namespace.nn, name)()
        names = []

        class Recorder(namespace.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                names.append(func.__name__)
                return func(*args, **(kwargs or {}))

        if name in ("CrossEntropyLoss", "NLLLoss"):
            input, target = namespace.tensor([[0.2, -0.1, 0.4]]).log_softmax(1), namespace.tensor([2])
        else:
            input, target = namespace.tensor([0.2, 0.7]), namespace.tensor([0.0, 1.0])
        with Recorder():
            value = module(input, target)

        class Through(namespace.fx.Tracer):
            def is_leaf_module(self, module, qualified_name):
                return False

        nodes = [(node.op, getattr(node.target, "__name__", str(node.target)), tuple(map(str, node.args)),
                  {key: str(value) for key, value in node.kwargs.items()}) for node in Through().trace(module).nodes]
        return names, round(value.item(), 5), nodes

    assert seen(chainrule) == seen(torch)


@pytest.mark.parametrize("case", ["component_not_a_distribution", "batch_shapes_incompatible", "component_count"])
def test_mixture_same_family_refusals_end_with_torchs_message(case):
    def message(namespace):
        D = namespace.distributions
        make = {
            "component_not_a_distribution": lambda: D.MixtureSameFamily(D.Categorical(namespace.ones(3)),
                                                                        namespace.ones(3)),
            "batch_shapes_incompatible": lambda: D.MixtureSameFamily(D.Categorical(namespace.ones(2, 3)),
                                                                     D.Normal(namespace.zeros(4, 3), namespace.ones(4, 3))),
            "component_count": lambda: D.MixtureSameFamily(D.Categorical(namespace.ones(2)),
                                                           D.Normal(namespace.zeros(3), namespace.ones(3))),
        }[case]
        with pytest.raises(ValueError) as caught:
            make()
        return str(caught.value).replace("chainrule.", "torch.")

    # chainrule names the call first (the constructor and its arguments), then torch's words
    assert message(chainrule).endswith(message(torch))


POOLS_WITH_INDICES = {
    "max_pool2d": lambda F, x: F.max_pool2d(x, 2, return_indices=True),
    "max_pool1d_positional": lambda F, x: F.max_pool1d(x.flatten(2), 2, 2, 0, 1, False, True),
    "adaptive_max_pool2d": lambda F, x: F.adaptive_max_pool2d(x, 1, return_indices=True),
    "max_pool2d_without": lambda F, x: F.max_pool2d(x, 2, return_indices=False),
}


@pytest.mark.parametrize("case", sorted(POOLS_WITH_INDICES))
def test_pools_asked_for_indices_hand_the_with_indices_function_over(case):
    # torch's boolean_dispatch calls <pool>_with_indices when return_indices is true, and that is
    # what a handler (and so fx) is given
    assert _calls(chainrule, POOLS_WITH_INDICES[case]) == _calls(torch, POOLS_WITH_INDICES[case])


def test_a_mode_over_max_pool2d_with_indices_gets_values_and_indices():
    def seen(namespace):
        names = []

        class Recorder(namespace.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                names.append(func.__name__)
                return func(*args, **(kwargs or {}))

        x = namespace.arange(16.0).view(1, 1, 4, 4)
        with Recorder():
            values, indices = namespace.nn.MaxPool2d(2, return_indices=True)(x)
        return names, values.tolist(), indices.tolist()

    assert seen(chainrule) == seen(torch)


ASSERT_CLOSE_CASES = {
    "nan_mismatch": lambda t: t.testing.assert_close(t.tensor([1.0, float("nan")]), t.tensor([1.0, float("nan")])),
    "nested_item": lambda t: t.testing.assert_close([t.ones(2)], [t.zeros(2)]),
    "nested_shape": lambda t: t.testing.assert_close({"w": t.ones(2)}, {"w": t.ones(3)}),
    "mapping_keys": lambda t: t.testing.assert_close({"a": t.ones(2)}, {"a": t.ones(2), "b": 1}),
    "check_stride": lambda t: t.testing.assert_close(t.ones(2, 3).t(), t.ones(3, 2), check_stride=True),
    "stride_not_checked": lambda t: t.testing.assert_close(t.ones(2, 3).t(), t.ones(3, 2)),
    "scalar_in_list": lambda t: t.testing.assert_close([1.0, 2.0], [1.0, 2.5]),
    "fused_conv_tolerance": lambda t: t.testing.assert_close(t.tensor([[1.0, 2.0]]), t.tensor([[1.0, 2.5]]),
                                                             rtol=1e-4, atol=1e-4),
}


@pytest.mark.parametrize("case", sorted(ASSERT_CLOSE_CASES))
def test_assert_close_refuses_as_torch_does(case):
    def outcome(namespace):
        try:
            ASSERT_CLOSE_CASES[case](namespace)
        except AssertionError as error:
            return "AssertionError", str(error).replace("chainrule.", "torch.")
        return "passed", ""

    assert outcome(chainrule) == outcome(torch)
