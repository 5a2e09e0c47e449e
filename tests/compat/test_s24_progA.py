"""Session 24, lane progA: chainrule bugs found by the tutorial programs (spatial_transformer,
fgsm_adversarial, neural_style_gatys, func_ensembling_ntk, forward_ad_double_backward), each
checked against torch 2.13."""

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _user_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [(w.category, str(w.message), w.filename) for w in caught]


@pytest.mark.parametrize("make", [
    lambda lib: lib.tensor([0.485, 0.456, 0.406]),
    lambda lib: lib.tensor(2.0, requires_grad=True),
    lambda lib: lib.nn.Parameter(lib.ones(2)),
])
def test_tensor_of_a_tensor_warns_like_torch_and_copies_detached(make):
    # the Neural Transfer tutorial's Normalization: torch.tensor(mean).view(-1, 1, 1) on a tensor
    results = {}
    for lib in (torch, chainrule):
        source = make(lib)
        copy, caught = _user_warnings(lambda: lib.tensor(source))  # noqa: B023
        assert [(c, f) for c, _, f in caught] == [(UserWarning, __file__)]
        results[lib] = (caught[0][1], copy.requires_grad, copy.grad_fn, copy.tolist())
        assert copy.data_ptr() != source.data_ptr()
    assert results[chainrule] == results[torch]


def test_new_tensor_of_a_tensor_warns_like_torch():
    outcomes = []
    for lib in (torch, chainrule):
        source = lib.tensor([1.0, 2.0])
        copy, caught = _user_warnings(lambda: source.new_tensor(source))  # noqa: B023
        outcomes.append(([(c, m, f == __file__) for c, m, f in caught], copy.tolist(), copy.dtype is source.dtype))
        _, caught = _user_warnings(lambda: source.new_tensor([3.0]))  # noqa: B023
        assert caught == []
    assert outcomes[1] == outcomes[0]
    assert len(outcomes[0][0]) == 1

def test_tensor_of_a_list_of_tensors_and_chainrule_internal_copies_stay_silent():
    for lib in (torch, chainrule):
        _, caught = _user_warnings(lambda: lib.tensor([lib.tensor(1.0), lib.tensor(2.0)]))  # noqa: B023
        assert caught == []
    # chainrule's own code copies tensors through tensor() on purpose: the user must not be told
    _, caught = _user_warnings(lambda: chainrule.nn.utils.clip_grad_norm_([chainrule.ones(2, requires_grad=True)], 1.0))
    assert caught == []


ALIAS_SHADOWING_CHECK = """
import importlib, sys
import torch
import chainrule
# every chainrule module whose parent package binds its name to something else (a function of the same
# name, as torch.autograd.gradcheck is): importing it under its torch name must leave that binding alone
shadowed = []
for name, module in list(sys.modules.items()):
    if name.startswith("chainrule.") and module is not None:
        parent_name, _, child = name.rpartition(".")
        parent = sys.modules.get(parent_name)
        if parent is not None and getattr(parent, child, module) is not module:
            shadowed.append((parent, child, getattr(parent, child), "torch" + name[len("chainrule"):]))
for parent, child, bound, alias in shadowed:
    importlib.import_module(alias)
    assert getattr(parent, child) is bound, (alias, getattr(parent, child))
from torch.autograd.gradcheck import gradcheck
assert torch.autograd.gradcheck is gradcheck and callable(torch.autograd.gradcheck)
print(len(shadowed))
"""


def test_program_alias_import_of_a_submodule_keeps_the_function_its_package_binds():
    # forward_ad_double_backward: `from torch.autograd.gradcheck import gradcheck`, then
    # `torch.autograd.gradcheck(Square.apply, x)` as the tutorial writes it; in torch both work
    import os
    import subprocess
    import sys
    from pathlib import Path

    from torch.autograd.gradcheck import gradcheck
    assert callable(torch.autograd.gradcheck) and torch.autograd.gradcheck is gradcheck
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "tests/programs/_alias"), str(root / "src")]))
    done = subprocess.run([sys.executable, "-c", ALIAS_SHADOWING_CHECK], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 1


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("theta_shape, size", [
    ((2, 2, 3), (2, 1, 4)),
    ((2, 3, 3), (2, 1, 4, 4)),
    ((2, 3, 3), "Size"),
    ((2, 2, 3), [2, 1, 4, 4, 4]),
    ((3, 2, 3), (2, 1, 4, 4)),
    ((3, 3, 4), (2, 1, 4, 4, 4)),
    ((2, 2, 3), (2, 1, 0, 4)),
    ((0, 2, 3), (0, 1, 4, 4)),
    ((2, 2, 3), (2, 0, 4, 4)),
    ((2, 2, 3), (2, 1, 1, 4)),
])
def test_affine_grid_refusals_match_torch(theta_shape, size, align_corners):
    # the STN tutorial calls F.affine_grid(theta, x.size()): its refusals print the size as given
    outcomes = []
    for lib in (torch, chainrule):
        given = lib.Size([2, 1, 4, 4]) if size == "Size" else size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                outcomes.append(("ok", tuple(lib.nn.functional.affine_grid(lib.zeros(*theta_shape), given,
                                                                           align_corners=align_corners).shape)))
            except Exception as error:  # the class and the message are what is compared
                outcomes.append((type(error), str(error).replace("chainrule.", "torch.")))
    assert outcomes[1] == outcomes[0]


def test_gradcheck_of_a_float32_input_warns_with_torchs_text():
    # the double-backward tutorial's advice to check in float64: torch's warning names complex too
    texts = []
    for lib in (torch, chainrule):
        x = lib.tensor([0.3, 0.7], requires_grad=True)
        _, caught = _user_warnings(lambda: lib.autograd.gradcheck(lambda t: t * 2, x, raise_exception=False))  # noqa: B023
        texts.append([(c, m) for c, m, _ in caught if "double precision" in m])
    assert texts[1] == texts[0] and len(texts[0]) == 1
