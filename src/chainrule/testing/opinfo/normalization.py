"""Normalization (batch/layer/group/instance/RMS norm, local response norm, normalize): through the
public nn.functional names, so the entries hold wherever the Functions live."""

from __future__ import annotations

from .core import OpCase, OpInfo, positive, randn


def _F(lib):
    return lib.nn.functional


def _norm(name: str, samples) -> OpInfo:
    return OpInfo(f"nn.functional.{name}", "normalization", samples)


def _batch_norm() -> list[OpCase]:
    x, mean, var = randn(4, 3, 5), randn(3, seed=1), positive(3, seed=2)
    weight, bias = randn(3, seed=3), randn(3, seed=4)
    stats = [True, False, False, True, True]  # the running statistics are buffers, not differentiated
    return [
        OpCase("batch_norm_training", lambda lib, x, m, v, w, b: _F(lib).batch_norm(x, m, v, w, b, training=True),
               [x, mean, var, weight, bias], grad=stats),
        OpCase("batch_norm_eval", lambda lib, x, m, v, w, b: _F(lib).batch_norm(x, m, v, w, b, training=False),
               [x, mean, var, weight, bias], grad=stats),
        OpCase("batch_norm_no_stats_2d", lambda lib, x: _F(lib).batch_norm(x, None, None, training=True, eps=1e-3),
               [randn(6, 4, seed=5)]),
        # the running statistics it updates are outputs too: compared after the step
        OpCase("batch_norm_running_update", lambda lib, x, m, v: (
            _F(lib).batch_norm(x, m, v, training=True, momentum=0.3), m, v),
               [randn(5, 2, 3, 3, seed=6), randn(2, seed=7), positive(2, seed=8)], grad=[True, False, False]),
    ]


op_db: list[OpInfo] = [
    _norm("batch_norm", _batch_norm),
    _norm("layer_norm", lambda: [
        OpCase("layer_norm", lambda lib, x, w, b: _F(lib).layer_norm(x, (4,), w, b), [randn(2, 3, 4), randn(4, seed=1),
                                                                                      randn(4, seed=2)]),
        OpCase("layer_norm_2d_shape", lambda lib, x: _F(lib).layer_norm(x, (3, 4), eps=1e-3), [randn(2, 3, 4)]),
    ]),
    _norm("group_norm", lambda: [
        OpCase("group_norm", lambda lib, x, w, b: _F(lib).group_norm(x, 2, w, b), [randn(2, 4, 3, 2), randn(4, seed=1),
                                                                                   randn(4, seed=2)]),
        OpCase("group_norm_one_group", lambda lib, x: _F(lib).group_norm(x, 1), [randn(3, 2, 5)]),
    ]),
    _norm("instance_norm", lambda: [
        OpCase("instance_norm", lambda lib, x, w, b: _F(lib).instance_norm(x, weight=w, bias=b),
               [randn(2, 3, 4, 5), randn(3, seed=1), randn(3, seed=2)]),
        OpCase("instance_norm_1d", lambda lib, x: _F(lib).instance_norm(x, eps=1e-3), [randn(2, 3, 6)]),
    ]),
    _norm("rms_norm", lambda: [
        OpCase("rms_norm", lambda lib, x, w: _F(lib).rms_norm(x, (4,), w), [randn(2, 3, 4), randn(4, seed=1)]),
        OpCase("rms_norm_eps", lambda lib, x: _F(lib).rms_norm(x, (3, 4), eps=1e-3), [randn(2, 3, 4)]),
    ]),
    _norm("local_response_norm", lambda: [
        OpCase("local_response_norm", lambda lib, x: _F(lib).local_response_norm(x, 3, alpha=0.1, beta=0.6, k=1.5),
               [randn(2, 5, 3, 3)]),
        OpCase("local_response_norm_3d", lambda lib, x: _F(lib).local_response_norm(x, 2), [randn(2, 4, 5)]),
    ]),
    _norm("normalize", lambda: [
        OpCase("normalize", lambda lib, x: _F(lib).normalize(x), [randn(3, 4)]),
        OpCase("normalize_p1_dim0", lambda lib, x: _F(lib).normalize(x, p=1.0, dim=0), [randn(3, 4, low_gap=0.1)]),
    ]),
    # torch's top-level ATen forms: the affine parameters before the running statistics
    OpInfo("batch_norm", "normalization", lambda: [
        OpCase("aten_batch_norm", lambda lib, x, w, b, m, v: lib.batch_norm(x, w, b, m, v, True, 0.1, 1e-5, False),
               [randn(4, 3, 5), randn(3, seed=3), randn(3, seed=4), randn(3, seed=1), positive(3, seed=2)],
               grad=[True, True, True, False, False]),
    ]),
    OpInfo("instance_norm", "normalization", lambda: [
        OpCase("aten_instance_norm", lambda lib, x, w, b: lib.instance_norm(x, w, b, None, None, True, 0.1, 1e-5,
                                                                             False),
               [randn(2, 3, 4, 5), randn(3, seed=1), randn(3, seed=2)]),
    ]),
    OpInfo("layer_norm", "normalization", lambda: [
        OpCase("aten_layer_norm", lambda lib, x, w, b: lib.layer_norm(x, (4,), w, b, 1e-5),
               [randn(2, 3, 4), randn(4, seed=1), randn(4, seed=2)]),
    ]),
    OpInfo("group_norm", "normalization", lambda: [
        OpCase("aten_group_norm", lambda lib, x, w, b: lib.group_norm(x, 2, w, b, 1e-5),
               [randn(2, 4, 3, 2), randn(4, seed=1), randn(4, seed=2)]),
    ]),
    # weight norm's torch-level pieces: the first and last dims, one in between (transposed to the
    # front), -1 (the whole tensor), and the fused node's g of the norm's kept shape
    OpInfo("norm_except_dim", "normalization", lambda: [
        OpCase("norm_except_dim_first", lambda lib, v: lib.norm_except_dim(v, 2, 0), [randn(3, 4, 2)]),
        OpCase("norm_except_dim_middle_pow3", lambda lib, v: lib.norm_except_dim(v, 3, 1), [randn(3, 4, 2, seed=1)]),
        OpCase("norm_except_dim_last", lambda lib, v: lib.norm_except_dim(v, 2, 2), [randn(3, 4, 2, seed=2)]),
        OpCase("norm_except_dim_whole", lambda lib, v: lib.norm_except_dim(v, 2, -1), [randn(3, 4, seed=3)]),
    ]),
    OpInfo("_weight_norm", "normalization", lambda: [
        OpCase("weight_norm_first", lambda lib, v, g: lib._weight_norm(v, g, 0),
               [randn(3, 4, 2), positive(3, 1, 1, seed=1)]),
        OpCase("weight_norm_last", lambda lib, v, g: lib._weight_norm(v, g, 1), [randn(3, 4), positive(1, 4, seed=2)]),
        OpCase("weight_norm_middle", lambda lib, v, g: lib._weight_norm(v, g, 1),
               [randn(3, 4, 2), positive(1, 4, 1, seed=3)]),
        OpCase("weight_norm_whole", lambda lib, v, g: lib._weight_norm(v, g, -1), [randn(3, 4), positive(seed=4)]),
    ]),
]
