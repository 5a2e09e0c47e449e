"""embedding_bag, the margin, Gaussian and CTC losses and the 3-d adaptive pools of nn.functional.

Integer inputs (indices, offsets, targets, lengths) are constants of each case; float inputs are
differentiated. Max-reducing cases use tie-free values, so the gradient's route is unambiguous.
"""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, distinct, randn


def _F(lib):
    return lib.nn.functional


def _bag(indices, offsets=None, **kwargs):
    def fn(lib, weight, *per_sample_weights):
        return _F(lib).embedding_bag(lib.tensor(indices), weight, None if offsets is None else lib.tensor(offsets),
                                     per_sample_weights=per_sample_weights[0] if per_sample_weights else None,
                                     **kwargs)
    return fn


_WORDS = np.array([1, 2, 4, 5, 4, 3, 2, 9])

op_db: list[OpInfo] = [
    OpInfo("nn.functional.embedding_bag", "embedding_bag", lambda: [
        OpCase("embedding_bag_2d_mean", _bag(np.array([[1, 2, 4], [4, 3, 9]])), [randn(10, 3)]),
        OpCase("embedding_bag_sum_empty_bag", _bag(_WORDS, np.array([0, 4, 4, 6]), mode="sum"), [randn(10, 3)]),
        OpCase("embedding_bag_mean_padding", _bag(_WORDS, np.array([0, 3, 5]), padding_idx=4), [randn(10, 3)]),
        OpCase("embedding_bag_max", _bag(_WORDS, np.array([0, 3, 3, 5]), mode="max"), [distinct(10, 3)]),
        OpCase("embedding_bag_per_sample_weights", _bag(_WORDS, np.array([0, 3, 3, 5]), mode="sum"),
               [randn(10, 3), randn(8, seed=1)]),
        OpCase("embedding_bag_include_last_offset", _bag(_WORDS, np.array([0, 2, 5, 8]), mode="sum",
                                                         include_last_offset=True), [randn(10, 3)]),
    ]),
]
