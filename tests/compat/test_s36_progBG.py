"""Found while writing the kim_textcnn, prioritized_replay_dqn and siglip_sigmoid_contrastive programs."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(fn, lib):
    try:
        result = fn(lib)
    except Exception as error:  # the refusal is the behaviour under test
        return type(error).__name__, str(error)
    return "ok", result.tolist(), result.requires_grad


def _leaf_view(lib):
    """A view whose base is outside the graph, made a leaf of its own by requires_grad_()."""
    return lib.arange(12.0).reshape(3, 4).requires_grad_()


# each writes in place, with grad mode on, into a view that requires grad of a base that does not
LEAF_VIEW_WRITES = {
    "mul_": lambda lib: _leaf_view(lib).mul_(2),
    "renorm_": lambda lib: _leaf_view(lib).renorm_(2, 0, 3),
    "copy_": lambda lib: _leaf_view(lib).copy_(lib.ones(3, 4)),
    "add_ alpha": lambda lib: _leaf_view(lib).add_(lib.ones(3, 4), alpha=2),
    "zero_ of a transpose": lambda lib: lib.zeros(3, 4).t().requires_grad_().zero_(),
    "add_ of a row": lambda lib: lib.zeros(3, 4)[0].requires_grad_().add_(1),
    "add_ of a view of the leaf view": lambda lib: _leaf_view(lib)[1:].add_(1),
}


@pytest.mark.parametrize("name", sorted(LEAF_VIEW_WRITES))
def test_in_place_write_into_a_view_made_a_leaf_is_refused_as_torch(name):
    write = LEAF_VIEW_WRITES[name]
    expected = _outcome(write, torch)
    assert expected[0] == "RuntimeError"
    assert _outcome(write, chainrule) == expected


def test_the_same_views_are_written_under_no_grad_or_when_not_requiring_grad():
    for lib in (torch, chainrule):
        leaf_view = _leaf_view(lib)
        with lib.no_grad():
            leaf_view.renorm_(2, 0, 3)
        assert leaf_view.requires_grad and leaf_view.grad_fn is None
        plain = lib.arange(12.0).reshape(3, 4)
        plain.mul_(2)
        assert not plain.requires_grad
    rows = [_leaf_view(lib) for lib in (torch, chainrule)]
    for lib, row in zip((torch, chainrule), rows):
        with lib.no_grad():
            row.renorm_(2, 0, 3)
    assert torch.equal(torch.tensor(rows[1].tolist()), rows[0].detach())


# each refused by torch's own words; chainrule's constructor prefix named Embedding(...) with the
# private _weight= table and _freeze= that from_pretrained passes on, which the user never typed
FROM_PRETRAINED_REFUSALS = {
    "padding_idx past the end": lambda lib: lib.nn.Embedding.from_pretrained(lib.ones(5, 3), padding_idx=7),
    "padding_idx before the start": lambda lib: lib.nn.Embedding.from_pretrained(lib.ones(5, 3), padding_idx=-6),
    "bag padding_idx past the end": lambda lib: lib.nn.EmbeddingBag.from_pretrained(lib.ones(5, 3), padding_idx=5),
    "integer table made trainable": lambda lib: lib.nn.Embedding.from_pretrained(
        lib.ones(5, 3, dtype=lib.long), freeze=False),
    "one-dimensional table": lambda lib: lib.nn.Embedding.from_pretrained(lib.ones(5)),
}


@pytest.mark.parametrize("name", sorted(FROM_PRETRAINED_REFUSALS))
def test_from_pretrained_refusals_are_torchs(name):
    build = FROM_PRETRAINED_REFUSALS[name]
    outcomes = []
    for lib in (torch, chainrule):
        with pytest.raises(Exception) as caught:
            build(lib)
        outcomes.append((type(caught.value).__name__, str(caught.value)))
    assert outcomes[1] == outcomes[0]


def test_from_pretrained_padding_row_and_freeze_match_torch():
    vectors = torch.randn(6, 4)
    vectors[0] = 0
    built = [lib.nn.Embedding.from_pretrained(lib.tensor(vectors.tolist()), freeze=False, padding_idx=0)
             for lib in (torch, chainrule)]
    tokens = [[0, 2, 0, 5]]
    for lib, embedding in zip((torch, chainrule), built):
        embedding(lib.tensor(tokens)).sum().backward()
    assert built[1].padding_idx == built[0].padding_idx == 0
    assert built[1].weight.grad.tolist() == built[0].weight.grad.tolist()
    assert repr(built[1]) == repr(built[0])
