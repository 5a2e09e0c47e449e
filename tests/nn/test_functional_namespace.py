"""chainrule.nn.functional exposes torch.nn.functional's names and none of its own plumbing."""

from __future__ import annotations

import torch.nn.functional as T

import chainrule.nn.functional as F


def test_every_exported_name_is_torchs_and_exists():
    assert F.__all__, "nn.functional needs an __all__"
    assert len(F.__all__) == len(set(F.__all__))
    assert [n for n in F.__all__ if not hasattr(T, n)] == []
    assert [n for n in F.__all__ if not callable(getattr(F, n))] == []


def test_star_import_brings_only_the_exported_names():
    namespace: dict = {}
    exec("from chainrule.nn.functional import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(F.__all__)
    for leaked in ("honours_out", "np", "math", "annotations", "Tensor", "Function"):
        assert leaked not in namespace


def test_no_public_name_that_torch_lacks():
    # `annotations` is the __future__ feature flag every module with that import carries
    extra = {n for n in dir(F) if not n.startswith("_")} - set(dir(T)) - {"annotations"}
    assert extra == set()
