"""MultiheadAttention, TransformerEncoderLayer and TransformerEncoder with torch's parameter layout."""

from __future__ import annotations

import copy
import warnings

import numpy as np

from ... import _dtype
from ..._naming import in_torchs_words
from ..._torch_function import has_torch_function
from ...autograd.grad_mode import is_grad_enabled
from ...backends import mha
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .activation import GELU, ReLU
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear, NonDynamicallyQuantizableLinear, _factory
from .module import Module
from .normalization import LayerNorm
from .utils import _checked_empty as empty

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer",
           "TransformerDecoder", "Transformer"]


class MultiheadAttention(Module):
    """Multi-head attention: softmax(Q Kᵀ / √d) V per head, heads concatenated and projected.

    Inputs are (L, N, E) or, with ``batch_first=True``, (N, L, E); unbatched (L, E) also works.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        # torch's two refusals name the arguments themselves: left bare, as torch raises them
        if embed_dim <= 0 or num_heads <= 0:
            raise in_torchs_words(ValueError(f"embed_dim and num_heads must be greater than 0, got "
                                             f"embed_dim={embed_dim} and num_heads={num_heads} instead"))
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise in_torchs_words(AssertionError("embed_dim must be divisible by num_heads"))
        kw = _factory(device, dtype)
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(empty((embed_dim, embed_dim), **kw))
            self.k_proj_weight = Parameter(empty((embed_dim, self.kdim), **kw))
            self.v_proj_weight = Parameter(empty((embed_dim, self.vdim), **kw))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(empty((3 * embed_dim, embed_dim), **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(empty((1, 1, embed_dim), **kw))
            self.bias_v = Parameter(empty((1, 1, embed_dim), **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False):
        fast_path = not self._why_not_fast_path(query, key, value, attn_mask, key_padding_mask)
        if fast_path:
            # torch._native_multi_head_attention takes no causal hint: is_causal is dropped, not refused
            is_causal = False
        # torch turns a bool padding mask additive here, so F.multi_head_attention_forward sees the
        # pair mismatched only when the caller mixed them (it warns once, from this module)
        key_padding_mask = F._canonical_mask(key_padding_mask, "key_padding_mask", F._none_or_dtype(attn_mask),
                                             "attn_mask", query.dtype)
        attn_mask = F._canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
        if fast_path and not need_weights and (attn_mask is not None or key_padding_mask is not None):
            # its attention without weights gives NaN for a query whose every key is masked, where the
            # composed path (and its own with weights, which the composed one matches) attends to nothing
            out, weights = self._composed_forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                                                  average_attn_weights, is_causal)
            without_keys = _queries_without_keys(attn_mask, key_padding_mask, query.shape)
            return out.masked_fill(without_keys.unsqueeze(-1), float("nan")), weights
        return self._composed_forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                                      average_attn_weights, is_causal)

    def _why_not_fast_path(self, query: Tensor, key: Tensor, value: Tensor, attn_mask, key_padding_mask) -> str:
        """torch's reason (MultiheadAttention.forward's why_not_fast_path) for not running this
        attention as torch._native_multi_head_attention; empty when it does."""
        from ...amp import is_autocast_enabled  # (amp imports nn)

        if not mha.get_fastpath_enabled():
            return "torch.backends.mha.get_fastpath_enabled() was not True"
        if any(mask is not None and mask.is_floating_point() for mask in (attn_mask, key_padding_mask)):
            return "floating-point masks are not supported for fast path."
        if query.dim() != 3:
            return f"input not batched; expected query.dim() of 3 but got {query.dim()}"
        if query is not key or key is not value:
            return "non-self attention was used (query, key, and value are not the same Tensor)"
        if self.in_proj_bias is None or self.in_proj_weight is None:  # (torch's composed path then)
            return "in_proj_bias or in_proj_weight was None"
        if query.dtype != self.in_proj_bias.dtype or query.dtype != self.in_proj_weight.dtype:
            return f"dtypes of query ({query.dtype}) and the input projection don't match"
        if self.training:
            return "training is enabled"
        if self.num_heads % 2:
            return "self.num_heads is not even"
        if not self.batch_first:
            return "batch_first was not True"
        if self.bias_k is not None or self.bias_v is not None:
            return "self.bias_k or self.bias_v was not None"
        if self.add_zero_attn:
            return "add_zero_attn was enabled"
        if not self._qkv_same_embed_dim:
            return "_qkv_same_embed_dim was not True"
        if is_autocast_enabled():
            return "autocast is enabled"
        tensor_args = (query, self.in_proj_weight, self.in_proj_bias, self.out_proj.weight, self.out_proj.bias)
        if has_torch_function(tensor_args):
            return "some Tensor argument has_torch_function"
        if is_grad_enabled() and any(t is not None and t.requires_grad for t in tensor_args):
            return ("grad is enabled and at least one of query or the input/output projection weights or biases "
                    "requires_grad")
        return ""

    def _composed_forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask, need_weights: bool,
                          attn_mask, average_attn_weights: bool, is_causal: bool):
        batched = query.dim() == 3
        if self.batch_first and batched:
            # one transpose per distinct tensor, as torch does: F.multi_head_attention_forward packs
            # the projections of inputs that are one tensor (self- and encoder-decoder attention)
            if key is value and query is key:
                query = key = value = query.transpose(0, 1)
            elif key is value:
                query, key = (t.transpose(0, 1) for t in (query, key))
                value = key
            else:
                query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        out, weights = F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
            self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim, q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        return out, weights


def _get_activation_fn(activation: str):
    """torch.nn.modules.transformer._get_activation_fn: the functional form of "relu" or "gelu"
    (libraries' encoder layers call it by its private name)."""
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    # torch raises it bare, from the layer's constructor too
    raise in_torchs_words(RuntimeError(f"activation should be relu/gelu, not {activation}"))


def _activation(activation):
    # torch looks up a string only and keeps anything else as given (a callable, or what fails at forward)
    return _get_activation_fn(activation) if isinstance(activation, str) else activation


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with dropout, residual and LayerNorm."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            device=device, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, device=device, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, device=device, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)
        # torch's flag for its fused path (1 relu, 2 gelu, 0 other), which TransformerEncoder reads
        relu, gelu = self.activation is F.relu or isinstance(self.activation, ReLU), \
            self.activation is F.gelu or isinstance(self.activation, GELU)
        self.activation_relu_or_gelu = 1 if relu else 2 if gelu else 0

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:
        src_key_padding_mask = F._canonical_mask(src_key_padding_mask, "src_key_padding_mask",
                                                 F._none_or_dtype(src_mask), "src_mask", src.dtype)
        src_mask = F._canonical_mask(src_mask, "src_mask", None, "", src.dtype, check_other=False)
        fast_path = not self._why_not_sparsity_fast_path(src)
        if fast_path:
            # torch._transformer_encoder_layer_fwd takes no causal hint: is_causal is dropped, not refused
            is_causal = False
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        if fast_path and (src_mask is not None or src_key_padding_mask is not None):
            # its masked softmax gives NaN for a query whose every key is masked (in any head), where the
            # composed path attends to nothing; the NaN then runs through that position's layers
            x = x.masked_fill(_queries_without_keys(src_mask, src_key_padding_mask, src.shape).unsqueeze(-1),
                              float("nan"))
        return x

    def _why_not_sparsity_fast_path(self, src: Tensor) -> str:
        """torch's reason (TransformerEncoderLayer.forward's why_not_sparsity_fast_path) for not running
        this layer as one fused kernel; empty when it does."""
        from ...amp import is_autocast_enabled  # (amp imports nn)

        attention = self.self_attn
        if not mha.get_fastpath_enabled():
            return "torch.backends.mha.get_fastpath_enabled() was not True"
        if src.dim() != 3:
            return f"input not batched; expected src.dim() of 3 but got {src.dim()}"
        if self.training:
            return "training is enabled"
        if not attention.batch_first:
            return "self_attn.batch_first was not True"
        if attention.in_proj_bias is None:
            return "self_attn was passed bias=False"
        if not attention._qkv_same_embed_dim:
            return "self_attn._qkv_same_embed_dim was not True"
        if not self.activation_relu_or_gelu:
            return "activation_relu_or_gelu was not True"
        if self.norm1.eps != self.norm2.eps:
            return "norm1.eps is not equal to norm2.eps"
        if attention.num_heads % 2 == 1:
            return "num_head is odd"
        if is_autocast_enabled():
            return "autocast is enabled"
        if any(len(getattr(m, "_forward_hooks", {})) + len(getattr(m, "_forward_pre_hooks", {}))
               for m in self.modules()):
            return "forward pre-/hooks are attached to the module"
        tensor_args = (src, attention.in_proj_weight, attention.in_proj_bias, attention.out_proj.weight,
                       attention.out_proj.bias, self.norm1.weight, self.norm1.bias, self.norm2.weight,
                       self.norm2.bias, self.linear1.weight, self.linear1.bias, self.linear2.weight,
                       self.linear2.bias)
        if has_torch_function(tensor_args):
            return "some Tensor argument has_torch_function"
        if is_grad_enabled() and any(t.requires_grad for t in tensor_args):
            return ("grad is enabled and at least one of query or the input/output projection weights or "
                    "biases requires_grad")
        return ""

    def _sa_block(self, x: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal and attn_mask is None)[0]
        return self.dropout1(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


def _queries_without_keys(attn_mask: Tensor | None, key_padding_mask: Tensor | None, shape) -> Tensor:
    """(batch, seq) bool: the queries for which the attention mask (2-d, or 3-d per batch and head),
    merged with the key padding mask, masks every key, as torch's merge_masks combines them (both
    canonical here: float, -inf where masked)."""
    batch, length = shape[0], shape[1]
    masked = None
    if attn_mask is not None:
        masked = (attn_mask == float("-inf")).reshape(-1, length, attn_mask.shape[-1])
        masked = masked.expand(batch, length, attn_mask.shape[-1]) if masked.shape[0] == 1 else \
            masked.reshape(batch, -1, length, attn_mask.shape[-1])
    if key_padding_mask is not None:
        padded = (key_padding_mask == float("-inf")).reshape(batch, 1, -1)
        if masked is None:
            masked = padded.expand(batch, length, padded.shape[-1])
        else:
            masked = masked | (padded if masked.dim() == 3 else padded.unsqueeze(1))
    every_key = masked.all(-1)
    return every_key.any(1) if every_key.dim() == 3 else every_key


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer``, then an optional final norm."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check
        # torch gives nested tensors up, and says why, for layers its fast path cannot run; the attribute
        # and the warning are torch's (forward copies what the nested path changes: padded rows are zero)
        reason = _why_not_nested_fast_path(encoder_layer)
        if enable_nested_tensor and reason:
            # stacklevel 3: past the class-naming wrapper every Module's __init__ has (_naming.py)
            warnings.warn(f"enable_nested_tensor is True, but self.use_nested_tensor is False because {reason}",
                          stacklevel=3)
        self.use_nested_tensor = enable_nested_tensor and not reason

    def forward(self, src: Tensor, mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        if not self.layers:
            # torch's forward reads layers[0] first
            raise IndexError(f"TransformerEncoder has no layers (num_layers={self.num_layers}): index 0 is out of range")
        out = src
        padded_rows = self._rows_torch_packs_away(src, mask, src_key_padding_mask)
        src_key_padding_mask = F._canonical_mask(src_key_padding_mask, "src_key_padding_mask",
                                                 F._none_or_dtype(mask), "mask", src.dtype)
        mask = F._canonical_mask(mask, "mask", None, "", src.dtype, check_other=False)
        for layer in self.layers:
            out = layer(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        if padded_rows is not None:
            # torch ran the layers on a nested tensor of the unpadded rows and pads the result with zeros
            out = out.masked_fill(padded_rows.unsqueeze(-1), 0.0)
        if self.norm is not None:
            out = self.norm(out)
        return out

    def _rows_torch_packs_away(self, src: Tensor, mask, src_key_padding_mask) -> Tensor | None:
        """The (batch, seq) padding positions when torch's inference fast path would pack ``src`` into
        a nested tensor (eval mode, batched input, a left-aligned key padding mask and no attention
        mask, no gradient wanted), else None."""
        from ...amp import is_autocast_enabled  # (amp imports nn)

        first = self.layers[0]
        if not mha.get_fastpath_enabled() or not self.use_nested_tensor or first.training or src.dim() != 3 or src_key_padding_mask is None \
                or mask is not None or src.is_nested or is_autocast_enabled():
            return None
        if is_grad_enabled() and (src.requires_grad or any(p.requires_grad for p in first.parameters())):
            return None
        padded = src_key_padding_mask != 0 if src_key_padding_mask.dtype is not _dtype.bool else src_key_padding_mask
        valid = ~padded.detach().cpu().numpy()
        if self.mask_check and not np.all(valid[:, 1:] <= valid[:, :-1]):  # a valid position after padding
            return None
        global _NESTED_PROTOTYPE_WARNED
        if not _NESTED_PROTOTYPE_WARNED:  # torch warns once per process, as it packs the rows
            _NESTED_PROTOTYPE_WARNED = True
            warnings.warn(_NESTED_PROTOTYPE_WARNING, UserWarning, stacklevel=2)
        return padded


_NESTED_PROTOTYPE_WARNED = False
_NESTED_PROTOTYPE_WARNING = (
    "The PyTorch API of nested tensors is in prototype stage and will change in the near future. We recommend "
    "specifying layout=torch.jagged when constructing a nested tensor, as this layout receives active development, "
    "has better operator coverage, and works with torch.compile. (Triggered internally at "
    "/__w/pytorch/pytorch/aten/src/ATen/NestedTensorImpl.cpp:177.)")


def _why_not_nested_fast_path(layer) -> str:
    """torch's reason, in its words, why a TransformerEncoder of ``layer`` cannot use nested tensors."""
    name = "encoder_layer"
    if not isinstance(layer, TransformerEncoderLayer):
        return f"{name} was not TransformerEncoderLayer"
    if layer.norm_first:
        return f"{name}.norm_first was True"
    if not layer.self_attn.batch_first:
        return f"{name}.self_attn.batch_first was not True(use batch_first for better inference performance)"
    if not layer.self_attn._qkv_same_embed_dim:
        return f"{name}.self_attn._qkv_same_embed_dim was not True"
    if layer.self_attn.in_proj_bias is None:
        return f"{name}.self_attn was passed bias=False"
    if not layer.activation_relu_or_gelu:
        return f"{name}.activation_relu_or_gelu was not True"
    if layer.norm1.eps != layer.norm2.eps:
        return f"{name}.norm1.eps was not equal to {name}.norm2.eps"
    if layer.self_attn.num_heads % 2 == 1:
        return f"{name}.self_attn.num_heads is odd"
    return ""


class TransformerDecoderLayer(Module):
    """Self-attention, attention over the encoder's memory, then a feed-forward block."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias,
                                                 **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Tensor:
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           is_causal=is_causal and attn_mask is None, need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x: Tensor, mem: Tensor, attn_mask, key_padding_mask, is_causal: bool) -> Tensor:
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                is_causal=is_causal and attn_mask is None, need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoder(Module):
    """``num_layers`` deep copies of ``decoder_layer``, then an optional final norm."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        if not self.layers:
            # torch's forward reads layers[0] first
            raise IndexError(f"TransformerDecoder has no layers (num_layers={self.num_layers}): index 0 is out of range")
        out = tgt
        for layer in self.layers:
            out = layer(out, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                        tgt_key_padding_mask=tgt_key_padding_mask,
                        memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=bool(tgt_is_causal),
                        memory_is_causal=memory_is_causal)
        if self.norm is not None:
            out = self.norm(out)
        return out


class Transformer(Module):
    """The encoder-decoder Transformer (torch.nn.Transformer), parameters xavier-initialised."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                            batch_first, norm_first, bias, **kw)
            self.encoder = TransformerEncoder(layer, num_encoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                            batch_first, norm_first, bias, **kw)
            self.decoder = TransformerDecoder(layer, num_decoder_layers,
                                              LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        for p in self.parameters():
            if p.dim() > 1:
                init.xavier_uniform_(p)
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def forward(self, src: Tensor, tgt: Tensor, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        # torch's checks, before the encoder runs (a mismatch would otherwise surface as a reshape error)
        if src.dim() == 3 and src.size(0 if self.batch_first else 1) != tgt.size(0 if self.batch_first else 1):
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.size(-1) != self.d_model or tgt.size(-1) != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """A float (sz, sz) mask: -inf above the diagonal, 0 elsewhere."""
        from ... import _dtype

        np_dtype = (_dtype.to_dtype(dtype) if dtype is not None else _dtype.get_default_dtype()).np
        return Tensor._make(np.triu(np.full((sz, sz), -np.inf, dtype=np_dtype), 1))


# torch defines it in activation.py (its class repr and pickle name), which hands it out on request
MultiheadAttention.__module__ = "chainrule.nn.modules.activation"
