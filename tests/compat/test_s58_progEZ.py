"""The idioms of the Differential Transformer, grokking and DeepSDF programs, each against torch:
values, gradients, strides and node names of the pieces the programs build their checks on."""

import itertools
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _run_both(fn, *arrays):
    """``fn(lib, *leaves)`` on both libraries; backward a fixed cosine weighting of the outputs;
    per library: (output values, leaf gradients, output strides, node names)."""
    results = []
    for lib in LIBS:
        leaves = [lib.tensor(a, requires_grad=True) for a in arrays]
        outs = fn(lib, *leaves)
        outs = outs if isinstance(outs, tuple) else (outs,)
        total = sum((o * lib.tensor(np.cos(np.arange(o.numel())).reshape(o.shape).astype(np.float32))).sum()
                    for o in outs)
        total.backward()
        results.append(([o.detach().numpy() for o in outs], [t.grad.numpy() for t in leaves],
                        [o.stride() for o in outs], [o.grad_fn.name() for o in outs]))
    return results


def _assert_same(results, rtol=1e-5, atol=1e-6):
    (ours, our_grads, our_strides, our_nodes), (theirs, their_grads, their_strides, their_nodes) = results
    assert our_nodes == their_nodes
    assert our_strides == their_strides
    for a, b in zip(ours + our_grads, theirs + their_grads):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- scaled_dot_product_attention: torch's CPU flash kernel lays its output out like the query
@pytest.mark.parametrize("perm", [p for p in itertools.permutations(range(4)) if p[-1] == 3])
@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa_output_laid_out_like_a_last_dim_contiguous_query(perm, is_causal):
    inverse = [perm.index(i) for i in range(4)]

    def attend(lib, q, k, v):
        q = q.permute(*perm).contiguous().permute(*inverse)  # (2, 3, 5, 4) in perm's memory order
        return lib.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=is_causal)

    _assert_same(_run_both(attend, _randn(2, 3, 5, 4), _randn(2, 3, 5, 4, seed=1), _randn(2, 3, 5, 4, seed=2)))


@pytest.mark.parametrize("case", ["last_dim_strided", "value_head_size", "expanded", "head_of_one"])
def test_sdpa_output_layout_where_the_query_is_not_copied(case):
    def attend(lib, q, k, v):
        if case == "last_dim_strided":  # torch's kernel copies such a query: a contiguous output
            q = q.transpose(-1, -2).contiguous().transpose(-1, -2)
        elif case == "value_head_size":  # Ev != E: contiguous
            q = q.transpose(1, 2).contiguous().transpose(1, 2)
            v = lib.cat([v, v[..., :2]], -1)
        elif case == "expanded":  # a broadcast query: dense in its stride order
            q = q[:1].transpose(1, 2).contiguous().transpose(1, 2).expand(2, 3, 5, 4)
        else:  # a size-1 head dim keeps the query's strides
            q, k, v = (t[:, :1].transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v))
        return lib.nn.functional.scaled_dot_product_attention(q, k, v)

    _assert_same(_run_both(attend, _randn(2, 3, 5, 4), _randn(2, 3, 5, 4, seed=1), _randn(2, 3, 5, 4, seed=2)))


def test_sdpa_rotary_llama_layout_as_torch():
    # the Llama/Diff-Transformer path: (B, L, H, E) projections transposed into SDPA, then back
    def attend(lib, x, w):
        q = (x @ w).view(2, 5, 3, 4)
        out = lib.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), q.transpose(1, 2),
                                                             q.transpose(1, 2), is_causal=True)
        return out, out.transpose(1, 2).reshape(2, 5, 12)

    _assert_same(_run_both(attend, _randn(2, 5, 6), _randn(6, 12, seed=1)), rtol=1e-4, atol=1e-4)


# --- .real / .imag of a complex tensor: torch's select of view_as_real
def test_real_and_imag_nodes_are_selects_as_torch():
    def parts(lib, radius, angle):
        z = lib.polar(radius, angle)
        return z.real, z.imag, lib.real(z * 2), lib.imag(z * 2)

    _assert_same(_run_both(parts, np.abs(_randn(3, 4)) + 0.1, _randn(3, 4, seed=1)))


# --- the programs' idioms
def test_llama_complex_rotary_as_torch():
    def rotary(lib, x, angle):
        freqs_cis = lib.polar(lib.ones_like(angle), angle)
        xc = lib.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        shape = [d if i == 1 or i == xc.ndim - 1 else 1 for i, d in enumerate(xc.shape)]
        return lib.view_as_real(xc * freqs_cis.view(*shape)).flatten(3).type_as(x)

    _assert_same(_run_both(rotary, _randn(2, 5, 3, 8), _randn(5, 4, seed=1)))


@pytest.mark.parametrize("kwargs", [{"eps": 1e-5}, {"eps": None}, {"elementwise_affine": False}])
def test_per_head_rms_norm_as_torch(kwargs):
    def norm(lib, x):
        module = lib.nn.RMSNorm(8, **kwargs)
        if module.weight is not None:
            with lib.no_grad():
                module.weight.copy_(lib.linspace(0.5, 1.5, 8))
        return module(x.transpose(1, 2)) * (1 - 0.2)

    _assert_same(_run_both(norm, _randn(2, 5, 3, 8)))


def test_grokking_einsum_attention_as_torch():
    def attention(lib, w_q, w_k, x):
        q = lib.einsum("ihd,bpd->biph", w_q, x)
        k = lib.einsum("ihd,bpd->biph", w_k, x)
        scores = lib.einsum("biph,biqh->biqp", k, q)
        masked = lib.tril(scores) - 1e10 * (1 - lib.tril(lib.ones(3, 3)))
        attn = lib.nn.functional.softmax(masked / 2.0, dim=-1)
        z = lib.einsum("biph,biqp->biqh", q, attn)
        return z, lib.einsum("dbp -> bpd", x.permute(2, 0, 1))

    _assert_same(_run_both(attention, _randn(2, 4, 6), _randn(2, 4, 6, seed=1), _randn(5, 3, 6, seed=2)))


def test_fourier_energy_over_the_token_axis_as_torch():
    def energy(lib, w):
        return lib.fft.fft(w, dim=0).abs().pow(2).sum(-1)

    _assert_same(_run_both(energy, _randn(7, 4)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_embedding_max_norm_renorms_the_looked_up_rows_as_torch(norm_type):
    index = [0, 3, 3, 1]
    tables, outputs = [], []
    for lib in LIBS:
        embedding = lib.nn.Embedding(5, 3, max_norm=1.0, norm_type=norm_type)
        with lib.no_grad():
            embedding.weight.copy_(lib.tensor(np.linspace(-1.5, 1.5, 15, dtype=np.float32).reshape(5, 3)))
        out = embedding(lib.tensor(index))
        out.sum().backward()
        tables.append((embedding.weight.detach().numpy().copy(), embedding.weight.grad.numpy()))
        outputs.append((out.detach().numpy(), out.grad_fn.name()))
    np.testing.assert_allclose(tables[0][0], tables[1][0], rtol=1e-6)
    np.testing.assert_allclose(tables[0][1], tables[1][1])
    np.testing.assert_allclose(outputs[0][0], outputs[1][0], rtol=1e-6)
    assert outputs[0][1] == outputs[1][1]


def test_weight_norm_decoder_layer_frozen_as_torch():
    results = []
    for lib in LIBS:
        linear = lib.nn.Linear(4, 3)
        with lib.no_grad():
            linear.weight.copy_(lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)))
            linear.bias.zero_()
        layer = lib.nn.utils.parametrizations.weight_norm(linear)
        layer.requires_grad_(False)
        latent = lib.tensor(_randn(1, 2), requires_grad=True)
        inputs = lib.cat([latent.expand(5, -1), lib.tensor(_randn(5, 2, seed=1))], 1)
        out = lib.clamp(layer(inputs), -0.1, 0.1)
        lib.nn.L1Loss()(out, lib.zeros(5, 3)).backward()
        results.append((out.detach().numpy(), latent.grad.numpy(), sorted(layer.state_dict()),
                        [p.grad is None for p in layer.parameters()]))
    (out, grad, keys, none), (t_out, t_grad, t_keys, t_none) = results
    np.testing.assert_allclose(out, t_out, rtol=1e-6)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-5, atol=1e-7)
    assert keys == t_keys and none == t_none


def test_embedding_max_norm_lookup_is_an_in_place_write_on_the_weight_as_torch():
    # DeepSDF's codes: a regulariser that saved the table before a max_norm lookup cannot backward
    outcomes = []
    for lib in LIBS:
        embedding = lib.nn.Embedding(5, 3, max_norm=1.0)
        with lib.no_grad():
            embedding.weight.copy_(lib.tensor(np.linspace(-2, 2, 15, dtype=np.float32).reshape(5, 3)))
        regulariser = embedding.weight.pow(2).sum()
        before = embedding.weight._version
        looked_up = embedding(lib.tensor([0, 1, 1]))
        empty = embedding(lib.tensor([], dtype=lib.long))  # renorms nothing, still an in-place call
        with pytest.raises(RuntimeError) as error:
            (regulariser + looked_up.sum() + empty.sum()).backward()
        outcomes.append((embedding.weight._version - before, str(error.value).replace("torch.", "")))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 2


@pytest.mark.parametrize("target", ["float64", "complex128", "float16"])
def test_module_to_dtype_casts_complex_buffers_and_parameters_as_torch(target):
    # a Llama-style module keeps its rotary table as a complex buffer; Module.to(dtype) casts it too.
    # (The cast to a real dtype warns once per process in both, so only the complex warning is compared.)
    results = []
    for lib in LIBS:
        module = lib.nn.Linear(2, 2)
        with lib.no_grad():
            module.weight.copy_(lib.tensor([[0.5, -1.0], [1.5, 2.0]]))
        module.register_buffer("freqs_cis", lib.polar(lib.ones(3, 2), lib.arange(6.0).view(3, 2)), persistent=False)
        module.phase = lib.nn.Parameter(lib.polar(lib.ones(2), lib.tensor([0.5, 1.5])))
        module.phase.grad = lib.polar(lib.ones(2), lib.tensor([1.0, 2.0]))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module.to(getattr(lib, target))
        complex_warned = any("Complex modules" in str(w.message) for w in caught)
        tensors = (module.freqs_cis, module.phase, module.phase.grad, module.weight)
        results.append(([str(t.dtype).split(".")[-1] for t in tensors],
                        [np.asarray(t.detach().numpy(), dtype=np.complex128) for t in tensors], complex_warned))
    (dtypes, values, warned), (t_dtypes, t_values, t_warned) = results
    assert dtypes == t_dtypes and warned == t_warned
    for ours, theirs in zip(values, t_values):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3 if target == "float16" else 1e-6)
