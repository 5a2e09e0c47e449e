"""torch.utils._pytree: the container registry libraries extend (transformers registers each
ModelOutput class when it is defined), walked by tree_flatten/tree_unflatten/tree_map, compared
with torch 2.13's Python pytree on the same trees."""

import collections
import dataclasses
import warnings

import numpy as np
import pytest

import chainrule
from chainrule.utils import _pytree as ours

torch = pytest.importorskip("torch")
theirs = pytest.importorskip("torch.utils._pytree")

Point = collections.namedtuple("Point", "x y")


def _nested(lib):
    return {"b": [1, (2, None), Point(3, 4)], "a": collections.OrderedDict(z=5, y=[6]),
            "d": collections.defaultdict(list, {"k": 7}), "q": collections.deque([8, 9], maxlen=4)}


def test_builtin_containers_flatten_in_torchs_leaf_order_with_torchs_spec_text():
    leaves_theirs, spec_theirs = theirs.tree_flatten(_nested(torch))
    leaves_ours, spec_ours = ours.tree_flatten(_nested(chainrule))
    assert leaves_ours == leaves_theirs == [1, 2, None, 3, 4, 5, 6, 7, 8, 9]
    # the specs print the same except for the class names of the node types
    assert repr(spec_ours) == repr(spec_theirs)
    assert (spec_ours.num_leaves, spec_ours.num_nodes, spec_ours.num_children) == (
        spec_theirs.num_leaves, spec_theirs.num_nodes, spec_theirs.num_children)
    rebuilt = ours.tree_unflatten([x * 10 if x is not None else None for x in leaves_ours], spec_ours)
    assert rebuilt == theirs.tree_unflatten([x * 10 if x is not None else None for x in leaves_theirs], spec_theirs)
    assert type(rebuilt["b"][2]) is Point and rebuilt["d"].default_factory is list and rebuilt["q"].maxlen == 4
    assert ours.tree_is_leaf(None) and not ours.tree_is_leaf([])
    assert ours.tree_structure(3) == ours.treespec_leaf() and repr(ours.treespec_leaf()) == "*"


@dataclasses.dataclass
class _Output:
    logits: object
    loss: object = None


def _register(module):
    module.register_pytree_node(_Output, lambda o: ([o.logits, o.loss], ["logits", "loss"]),
                                lambda values, keys: _Output(**dict(zip(keys, values))),
                                serialized_type_name="tests._Output")


def test_a_registered_class_is_a_node_for_flatten_map_and_unflatten():
    _register(ours)
    _register(theirs)
    try:
        tree = {"out": _Output(logits=[1.0, 2.0], loss=3.0), "step": 4}
        for module in (ours, theirs):
            assert _Output in module.SUPPORTED_NODES
            leaves, spec = module.tree_flatten(tree)
            assert leaves == [1.0, 2.0, 3.0, 4]
            assert module.tree_unflatten(leaves, spec) == tree
            doubled = module.tree_map(lambda x: 2 * x, tree)
            assert doubled == {"out": _Output(logits=[2.0, 4.0], loss=6.0), "step": 8}
            assert module.tree_leaves(tree, is_leaf=lambda x: isinstance(x, list)) == [[1.0, 2.0], 3.0, 4]
        # registering again replaces the entry with torch's warning
        with pytest.warns(UserWarning, match="is already registered as pytree node. Overwriting"):
            _register(ours)
    finally:
        ours._deregister_pytree_node(_Output)
        theirs._deregister_pytree_node(_Output)
    assert _Output not in ours.SUPPORTED_NODES and ours.tree_leaves(_Output(1)) == [_Output(1)]


def test_tree_map_over_tensors_with_a_second_tree_and_map_only():
    a = {"w": chainrule.ones(2), "n": 3, "pair": (chainrule.zeros(1), "tag")}
    b = {"w": chainrule.full((2,), 2.0), "n": 4, "pair": (chainrule.ones(1), "x")}
    summed = ours.tree_map(lambda x, y: x + y if isinstance(x, chainrule.Tensor) else x, a, b)
    np.testing.assert_array_equal(summed["w"].numpy(), [3.0, 3.0])
    assert summed["n"] == 3 and summed["pair"][1] == "tag"
    only = ours.tree_map_only(chainrule.Tensor, lambda t: t * 5, a)
    np.testing.assert_array_equal(only["w"].numpy(), [5.0, 5.0])
    assert only["pair"][1] == "tag"
    is_three = lambda x: isinstance(x, int) and x == 3  # noqa: E731
    assert ours.tree_any(is_three, a) and not ours.tree_all(is_three, a)


def test_mismatched_trees_and_leaf_counts_raise_torchs_errors():
    spec_ours, spec_theirs = ours.tree_structure((1, [2, 3])), theirs.tree_structure((1, [2, 3]))
    for spec in (spec_ours, spec_theirs):
        with pytest.raises(ValueError, match=r"^treespec.unflatten\(leaves\): `leaves` has length 2 but the spec "
                                             r"refers to a pytree that holds 3 items \(TreeSpec\(tuple"):
            spec.unflatten([1, 2])
    for module in (ours, theirs):
        with pytest.raises(ValueError, match=r"^Node arity mismatch; expected 2, but got 3\.$"):
            module.tree_map(lambda x, y: x, (1, 2), (1, 2, 3))
        with pytest.raises(ValueError, match=r"^Node keys mismatch; missing key\(s\): \{'b'\}; extra key\(s\): \{'c'\}\.$"):
            module.tree_map(lambda x, y: x, {"a": 1, "b": 2}, {"a": 1, "c": 2})
        with pytest.raises(TypeError, match="^Expected `treespec` to be an instance of PyTreeSpec but got item of "
                                            "type <class 'int'>.$"):
            module.tree_unflatten([1], 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates the spelling; both still accept it
            with pytest.raises(ValueError, match="must be None or registered"):
                module._register_pytree_node(type("Box", (), {}), lambda b: ([], None), lambda v, c: None,
                                             to_dumpable_context=lambda c: c)
