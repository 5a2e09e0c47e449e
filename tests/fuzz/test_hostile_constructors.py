"""Differential fuzzing of hostile constructor arguments of every public class in chainrule.nn
(modules and losses) against torch.

For each class the constructor's signature (torch's) gives its parameters; a valid base value per
parameter comes from ``BASE``, and each parameter in turn is replaced by every hostile value of its
kind (``_ctorfuzz.HOSTILE``: negative, zero, NaN and infinite sizes and rates, strings, floats and
bools and tensors where ints go, tuples of the wrong length, unknown options...). Both libraries
build the class from the same arguments; then, where both built it, the state_dict's names and
shapes must agree, torch's values are loaded into chainrule's module and a forward on a valid input
must give the same outputs (shapes only for modules that draw random numbers). See _ctorfuzz.py for
what "agree" means for errors.

Budget: ``CASES`` cases drawn (seeded) from all of them in CI, every case under
``CHAINRULE_LONG_TESTS=1``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import chainrule

from ._ctorfuzz import assert_no_new_mismatches, build, hostile_for, mismatches, outcome_mismatch, sample

torch = pytest.importorskip("torch")

CASES = 900

# valid values of the parameters that have no default (and of a few whose default is awkward)
BASE = {
    "in_features": 3, "out_features": 2, "in1_features": 2, "in2_features": 3, "in_channels": 2,
    "out_channels": 4, "kernel_size": 2, "num_features": 2, "num_channels": 4, "num_groups": 2,
    "normalized_shape": 6, "num_embeddings": 5, "embedding_dim": 3, "input_size": 3, "hidden_size": 4,
    "num_layers": 1, "embed_dim": 4, "num_heads": 2, "d_model": 4, "nhead": 2, "dim_feedforward": 8,
    "output_size": 2, "size": 3, "upscale_factor": 2, "downscale_factor": 2, "groups": 2, "padding": 1,
    "value": 0.5, "threshold": 0.1, "norm_type": 2.0, "dim": 1, "unflattened_size": (2, 3), "n_classes": 6,
    "cutoffs": [2, 4], "num_encoder_layers": 1, "num_decoder_layers": 1,
}
# per-class overrides of BASE
CLASS_BASE = {
    "Fold": {"output_size": (4, 5), "kernel_size": 2},
    "GroupNorm": {"num_groups": 2, "num_channels": 4},
    "ChannelShuffle": {"groups": 2},
    "LPPool1d": {"norm_type": 2.0}, "LPPool2d": {"norm_type": 2.0}, "LPPool3d": {"norm_type": 2.0},
    "Unflatten": {"dim": 1, "unflattened_size": (2, 3)},
    "FractionalMaxPool2d": {"output_size": 2}, "FractionalMaxPool3d": {"output_size": 2},
    "Upsample": {"scale_factor": 2.0},
    # torch's defaults (d_model=512, six layers each way) would make each case take seconds
    "Transformer": {"d_model": 4, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 8},
    "TransformerEncoderLayer": {"dim_feedforward": 8}, "TransformerDecoderLayer": {"dim_feedforward": 8},
}

SIZE_NAMES = {"in_features", "out_features", "in1_features", "in2_features", "in_channels", "out_channels",
              "num_features", "num_channels", "num_groups", "num_embeddings", "embedding_dim", "input_size",
              "hidden_size", "num_layers", "embed_dim", "num_heads", "d_model", "nhead", "dim_feedforward",
              "size", "upscale_factor", "downscale_factor", "groups", "num_parameters", "n_classes", "proj_size",
              "num_encoder_layers", "num_decoder_layers"}
NTUPLE_NAMES = {"kernel_size", "stride", "padding", "dilation", "output_size", "output_padding", "normalized_shape",
                "unflattened_size", "cutoffs"}
PROB_NAMES = {"p", "dropout", "momentum", "label_smoothing"}
WEIGHT_NAMES = {"weight", "pos_weight"}
# parameters not fuzzed: legacy reduction flags (deprecated; torch maps them to `reduction` with a
# warning), callables, devices (a CUDA device is refused differently by a CPU-only torch), submodules
SKIP_PARAMS = {"size_average", "reduce", "device", "distance_function", "activation", "module", "encoder_layer",
               "decoder_layer", "custom_encoder", "custom_decoder", "process_group", "device_ids", "output_device",
               "_random_samples", "norm", "layer_norm_eps_", "enable_nested_tensor", "mask_check", "bias_",
               "min_value", "max_value"}
# classes not fuzzed here: containers and abstract bases (no hyper-parameters to be hostile with),
# wrappers of another module
SKIP_CLASSES = {"Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Container",
                "RNNBase", "RNNCellBase", "DataParallel", "Identity", "TransformerEncoder", "TransformerDecoder",
                "SyncBatchNorm", "CrossMapLRN2d"}


def _kind(name: str, default):
    if name == "dtype":
        return "dtype"
    if name in WEIGHT_NAMES:
        return "weight"
    if name in SIZE_NAMES:
        return "size"
    if name in NTUPLE_NAMES:
        return "ntuple"
    if name in PROB_NAMES:
        return "prob"
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, str):
        return "str"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    return None


# ---------------------------------------------------------------- a valid input per class
def _input_shape(name: str, args: dict) -> tuple:
    channels = next((args[k] for k in ("in_channels", "num_features", "num_channels") if k in args), 3)
    if not isinstance(channels, int) or isinstance(channels, bool) or not 0 < channels < 9:
        channels = 3  # a hostile channel count: a valid input for the base, the forward reports the mismatch
    if name.endswith("1d"):
        return (2, channels, 8)
    if name.endswith("2d") or name in ("Softmax2d",):
        return (2, channels, 6, 6)
    if name.endswith("3d"):
        return (1, channels, 4, 4, 4)
    return (2, 3, 6, 6)


def _inputs(name: str, args: dict, rng) -> list | None:
    """The arrays a forward of class ``name`` (built from the base ``args``) takes, or None where
    only the construction is compared."""
    def normal(*shape):
        return rng.standard_normal(shape)
    if name in ("Linear", "LazyLinear"):
        return [normal(2, 3)]
    if name == "Bilinear":
        return [normal(2, 2), normal(2, 3)]
    if name in ("LayerNorm", "RMSNorm"):
        return [normal(2, 3, 6)]
    if name == "GroupNorm":
        return [normal(2, 4, 5)]
    if name in ("Embedding", "EmbeddingBag"):
        return [rng.integers(0, 5, (2, 4))]
    if name in ("RNN", "LSTM", "GRU"):
        return [normal(2, 2, 3)]
    if name in ("RNNCell", "LSTMCell", "GRUCell"):
        return [normal(2, 3)]
    if name == "MultiheadAttention":
        return [normal(3, 2, 4)] * 3
    if name in ("TransformerEncoderLayer",):
        return [normal(3, 2, 4)]
    if name in ("TransformerDecoderLayer", "Transformer"):
        return [normal(3, 2, 4), normal(3, 2, 4)]
    if name == "Fold":
        return [normal(2, 12, 12)]
    if name == "Unflatten":
        return [normal(2, 6, 2)]
    if name == "AdaptiveLogSoftmaxWithLoss":
        return [normal(4, 3), rng.integers(0, 6, 4)]
    if name.startswith("MaxUnpool"):
        return None  # needs indices from a pool
    if name in LOSS_INPUTS:
        return LOSS_INPUTS[name](rng)
    if name == "PixelUnshuffle":
        return [normal(1, 2, 4, 4)]
    if name == "ChannelShuffle":
        return [normal(1, 4, 2, 2)]
    if name in ("CosineSimilarity", "PairwiseDistance"):
        return [normal(2, 3), normal(2, 3)]
    return [normal(*_input_shape(name, args))]


def _classes_and_targets(rng, n=4, c=3):
    return [rng.standard_normal((n, c)), rng.integers(0, c, n)]


LOSS_INPUTS = {
    "L1Loss": lambda rng: [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))],
    "MSELoss": lambda rng: [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))],
    "HuberLoss": lambda rng: [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))],
    "SmoothL1Loss": lambda rng: [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))],
    "SoftMarginLoss": lambda rng: [rng.standard_normal((2, 3)), np.sign(rng.standard_normal((2, 3)))],
    "BCELoss": lambda rng: [rng.uniform(0.05, 0.95, (2, 3)), rng.uniform(0, 1, (2, 3))],
    "BCEWithLogitsLoss": lambda rng: [rng.standard_normal((2, 3)), rng.uniform(0, 1, (2, 3))],
    "KLDivLoss": lambda rng: [np.log(rng.uniform(0.1, 1, (2, 3))), rng.uniform(0.1, 1, (2, 3))],
    "PoissonNLLLoss": lambda rng: [rng.standard_normal((2, 3)), rng.integers(0, 4, (2, 3)).astype(float)],
    "GaussianNLLLoss": lambda rng: [rng.standard_normal((2, 3)), rng.standard_normal((2, 3)),
                                    rng.uniform(0.5, 2, (2, 3))],
    "CrossEntropyLoss": _classes_and_targets,
    "NLLLoss": _classes_and_targets,
    "NLLLoss2d": _classes_and_targets,
    "MultiMarginLoss": _classes_and_targets,
    "MultiLabelSoftMarginLoss": lambda rng: [rng.standard_normal((2, 3)), rng.integers(0, 2, (2, 3)).astype(float)],
    "MultiLabelMarginLoss": lambda rng: [rng.standard_normal((2, 3)), np.array([[2, 0, -1], [1, -1, 0]])],
    "HingeEmbeddingLoss": lambda rng: [rng.standard_normal((2, 3)), np.sign(rng.standard_normal((2, 3)))],
    "MarginRankingLoss": lambda rng: [rng.standard_normal(4), rng.standard_normal(4),
                                      np.sign(rng.standard_normal(4))],
    "CosineEmbeddingLoss": lambda rng: [rng.standard_normal((4, 3)), rng.standard_normal((4, 3)),
                                        np.sign(rng.standard_normal(4))],
    "TripletMarginLoss": lambda rng: [rng.standard_normal((4, 3)) for _ in range(3)],
    "TripletMarginWithDistanceLoss": lambda rng: [rng.standard_normal((4, 3)) for _ in range(3)],
    "CTCLoss": lambda rng: [np.log(np.full((5, 2, 4), 0.25)), np.array([[1, 2], [3, 1]]), np.array([5, 5]),
                            np.array([2, 2])],
}

# classes whose forward draws random numbers (or initialises lazily): outputs compared by shape only
RANDOM = ("Lazy", "FractionalMaxPool", "RReLU")


def _base_args(name: str, params) -> dict | None:
    args = {}
    for p in params:
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            value = CLASS_BASE.get(name, {}).get(p.name, BASE.get(p.name))
            if value is None:
                return None
            args[p.name] = value
        elif p.name in CLASS_BASE.get(name, {}):
            args[p.name] = CLASS_BASE[name][p.name]
    return args


def _module_body(name: str, args: dict, inputs):
    """Build ``nn.<name>(**args)`` on ``lib``, compare its state's names and shapes, load torch's
    values, run a forward in eval mode in float64."""
    def body(lib, record):
        module = getattr(lib.nn, name)(**build(args, lib))
        state = module.state_dict()
        record["state"] = tuple((k, tuple(v.shape)) for k, v in state.items()
                                if not _uninitialized(v))
        random = any(r in name for r in RANDOM)
        if lib is not chainrule:
            body.torch_state = state
        elif not random and getattr(body, "torch_state", None) is not None:
            module.load_state_dict({k: chainrule.tensor(v.detach().numpy()) for k, v in body.torch_state.items()})
        if inputs is None:
            return
        record["_stage"] = "used"
        module.eval()
        lazy = name.startswith("Lazy")  # float32: a lazy module's parameters take their dtype at the first forward
        if not lazy:
            module.double()
        tensors = [lib.tensor(a.astype(np.float32) if lazy and a.dtype.kind == "f" else a) for a in inputs]
        out = module(*tensors)
        outs = _flatten(out)
        if random:
            record["out_shapes"] = tuple(tuple(o.shape) for o in outs)
        else:
            record["out"] = outs
    return body


def _uninitialized(v) -> bool:
    return type(v).__name__.startswith("Uninitialized")


def _flatten(out) -> list:
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _flatten(o)]
    if out is None:
        return []
    if hasattr(out, "output") and hasattr(out, "loss"):  # AdaptiveLogSoftmaxWithLoss's named tuple
        return [out.output, out.loss]
    return [out]


def module_cases() -> list:
    """Every (class, parameter, hostile value) of chainrule.nn's public classes that torch has."""
    cases = []
    for name in sorted(dir(chainrule.nn)):
        cls = getattr(chainrule.nn, name)
        if not (isinstance(cls, type) and issubclass(cls, chainrule.nn.Module)) or name in SKIP_CLASSES:
            continue
        params = list(inspect.signature(getattr(torch.nn, name)).parameters.values())
        if name in ("RNN", "LSTM", "GRU"):  # torch's signature is (*args, **kwargs)
            params = list(inspect.signature(cls).parameters.values())
        base = _base_args(name, params)
        if base is None:
            continue
        for p in params:
            if p.name in SKIP_PARAMS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            valid = base.get(p.name, p.default)
            kind = _kind(p.name, valid)
            if kind is None:
                continue
            for value in hostile_for(kind, valid):
                cases.append((name, base, p.name, value))
    return cases


ALL_MODULE_CASES = module_cases()


def test_every_class_is_fuzzed():
    names = {c[0] for c in ALL_MODULE_CASES}
    assert len(names) >= 120, sorted(names)
    assert len(ALL_MODULE_CASES) >= 2000


# Deliberate differences: (class, parameter) -> (recognise(torch's error, chainrule's error), reason)
ALLOWED: dict = {}


def _allow(name, param):
    return ALLOWED.get((name, param), (None,))[0]


def run_module_case(case, seed: int) -> str | None:
    name, base, param, value = case
    args = {**base, param: value}
    inputs = _inputs(name, base, np.random.default_rng(seed))
    return outcome_mismatch(_module_body(name, args, inputs), [name, param], allow=_allow(name, param))


def describe_module_case(case) -> str:
    name, _, param, value = case
    return f"{name}({param}={value!r})"


@pytest.mark.parametrize("part", range(2))
def test_modules_match_torch(part):
    cases = sample(ALL_MODULE_CASES, CASES, seed=2026)[part::2]
    assert_no_new_mismatches(mismatches(cases, describe_module_case, run_module_case), len(cases))


def test_construction_errors_name_the_class_and_arguments():
    with pytest.raises(TypeError, match=r"^Linear\(in_features=2\.5, out_features=2\): "):
        chainrule.nn.Linear(2.5, 2)
    # the class the user typed, not the Linear built inside it
    with pytest.raises(RuntimeError, match=r"^Transformer\(d_model=4, nhead=2, dim_feedforward=-1\): "):
        chainrule.nn.Transformer(d_model=4, nhead=2, dim_feedforward=-1)

    class Mine(chainrule.nn.Module):  # a user's module keeps its own message
        def __init__(self):
            super().__init__()
            raise ValueError("mine")
    with pytest.raises(ValueError, match="^mine$"):
        Mine()
