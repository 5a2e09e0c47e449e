"""Differences found by running the Informer, SchNet and Sketch-RNN corpus programs and probing the
APIs around them on torch and chainrule; each test runs the same call on both libraries."""

import re

import pytest

torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _raised(lib, build):
    with pytest.raises(Exception) as info:
        build(lib)
    return info.type, str(info.value)


def _set_sorted(message):
    """A message with each ``{'a', 'b'}`` set display in sorted order: a set literal's order in a
    message follows the hash seed of the process that compiled it, in torch's source and in ours."""
    return re.sub(r"\{[^{}]*\}", lambda m: "{" + ", ".join(sorted(m.group(0)[1:-1].split(", "))) + "}", message)


CONV_CONSTRUCTOR_REFUSALS = [
    ("Conv1d", (4, 4, 3), {"groups": 0}),
    ("Conv2d", (4, 4, 3), {"groups": -1}),
    ("Conv2d", (4, 4, 3), {"groups": 3}),
    ("Conv3d", (4, 6, 3), {"groups": 4}),
    ("Conv1d", (3, 4, 3), {"padding": 1, "padding_mode": "circ"}),
    ("Conv2d", (4, 4, 3), {"padding": "full"}),
    ("Conv1d", (4, 4, 3), {"padding": "same", "stride": 2}),
    ("ConvTranspose2d", (4, 4, 3), {"groups": 0}),
    ("ConvTranspose1d", (4, 4, 3), {"groups": 3}),
    ("LazyConv1d", (4, 3), {"padding_mode": "wrap"}),
]


@pytest.mark.parametrize("name, args, kwargs", CONV_CONSTRUCTOR_REFUSALS,
                         ids=[f"{name}-{kwargs}" for name, _, kwargs in CONV_CONSTRUCTOR_REFUSALS])
def test_conv_constructor_refusals_are_torchs_bare_words(name, args, kwargs):
    # torch's _ConvNd raises these without naming the class: the message already says which argument
    expected_type, expected = _raised(torch, lambda lib: getattr(lib.nn, name)(*args, **kwargs))
    got_type, got = _raised(chainrule, lambda lib: getattr(lib.nn, name)(*args, **kwargs))
    assert got_type is expected_type
    assert _set_sorted(got) == _set_sorted(expected)


def test_conv_with_a_deep_error_still_names_the_call():
    # an error from inside the build (the weight's empty() on a float size) keeps chainrule's prefix
    with pytest.raises(TypeError, match=r"^Conv2d\(in_channels=4, out_channels=4, kernel_size=3, groups=2.0\): "):
        chainrule.nn.Conv2d(4, 4, 3, groups=2.0)
