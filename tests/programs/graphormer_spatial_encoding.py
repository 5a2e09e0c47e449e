"""Graphormer (Ying et al., NeurIPS 2021) in microsoft/Graphormer's layout, regressing a graph property
(the diameter of the largest component) of small random graphs, some of them disconnected.

Preprocessing follows ``graphormer/data/wrapper.py``: ``convert_to_single_emb`` (``1 + torch.arange(0,
feature_num * offset, offset)`` offsets), the bool adjacency ``adj[edge_index[0, :], edge_index[1, :]] =
True``, ``attn_edge_type`` filled by advanced indexing, shortest paths by Floyd–Warshall written in torch
(``cost_ikkj = dist[:, k:k + 1] + dist[k:k + 1, :]``, ``torch.where``, ``path[better] = k``, unreachable pairs
at the repo's 510; checked against a breadth-first search), ``gen_edge_input`` along the recovered paths,
``in_degree = adj.long().sum(dim=1).view(-1)``. The collator
pads with the repo's helpers (``x + 1`` so that 0 is padding, ``x.new_zeros(...)`` + slice writes,
``new_zeros([padlen, padlen]).fill_(float("-inf"))`` with ``new_x[xlen:, :xlen] = 0`` for the attention
bias) and masks far pairs by the chained ``attn_biases[idx][1:, 1:][spatial_poses[idx] >= spatial_pos_max] =
float("-inf")``. The model: ``GraphNodeFeature`` (atom, in/out-degree ``nn.Embedding(..., padding_idx=0)``
summed, ``graph_token.weight.unsqueeze(0).repeat(n_graph, 1, 1)``), ``GraphAttnBias`` (``attn_bias.clone()
.unsqueeze(1).repeat(1, num_heads, 1, 1)``, ``spatial_pos_encoder(spatial_pos).permute(0, 3, 1, 2)`` added
into the ``[:, :, 1:, 1:]`` slice, the virtual token's ``graph_token_virtual_distance.weight.view(1,
num_heads, 1)`` on row 0 and column 0, the multi-hop edge encoding: ``spatial_pos_[spatial_pos_ == 0] = 1``,
``clamp(0, multi_hop_max_dist)``, ``edge_encoder(edge_input).mean(-2)``, ``permute(3, 0, 1, 2, 4).reshape(max_dist,
-1, num_heads)`` through ``torch.bmm`` with ``edge_dis_encoder.weight.reshape(-1, num_heads, num_heads)[:max_dist]``,
summed over hops and divided by the clamped distance),
``init_params`` via ``self.apply(lambda module: ...)``, fairseq-style ``MultiheadAttention`` on T x B x C
(``q *= self.scaling``, ``view(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)``, ``attn_weights +=
attn_bias.view(...)``, ``masked_fill(key_padding_mask.unsqueeze(1).unsqueeze(2).to(torch.bool),
float("-inf"))``, ``softmax(..., dtype=torch.float32).type_as(...)``), pre-LN encoder layers, the padding
mask ``data_x[:, :, 0].eq(0)`` with a ``torch.zeros`` column for the graph token, the readout from
``x[0, :, :]``; ``L1Loss``, AdamW and the repo's ``PolynomialDecayLR(_LRScheduler)`` reading
``self._step_count``.

Checked: every unreachable pair's bias is exactly the reserved spatial embedding row (plus the no-edge row), padded nodes get
exactly zero attention in every head, permuting the node order leaves the prediction unchanged, and
the training loss and the test MAE fall (the MAE below the mean predictor's).
"""

import math
import os
from collections import deque

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import _LRScheduler

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

UNREACHABLE_NODE_DISTANCE = 510
MULTI_HOP_MAX_DIST = 5


# ----------------------------------------------------------------------------- data
class Data:
    """The torch_geometric.data.Data fields the wrapper reads and writes."""

    def __init__(self, x, edge_index, edge_attr, y, idx):
        self.x, self.edge_index, self.edge_attr, self.y, self.idx = x, edge_index, edge_attr, y, idx


def random_graph(rng, idx):
    n = rng.randint(5, 10)
    upper = np.triu(rng.rand(n, n) < 0.3, 1)
    if rng.rand() < 0.5:  # a planted chain makes long diameters common
        for i in range(n // 2, n - 1):
            upper[i, i + 1] = True
    adj = upper | upper.T
    row, col = np.nonzero(adj)
    x = rng.randint(0, 3, size=(n, 1))
    edge_attr = rng.randint(0, 2, size=len(row))
    return n, Data(torch.from_numpy(x), torch.from_numpy(np.vstack((row, col))), torch.from_numpy(edge_attr),
                   None, idx)


def bfs_distances(n, edge_index):
    nbrs = [[] for _ in range(n)]
    for a, b in edge_index.t().tolist():
        nbrs[a].append(b)
    dist = np.full((n, n), UNREACHABLE_NODE_DISTANCE)
    for s in range(n):
        dist[s, s] = 0
        queue = deque([s])
        while queue:
            u = queue.popleft()
            for v in nbrs[u]:
                if dist[s, v] == UNREACHABLE_NODE_DISTANCE:
                    dist[s, v] = dist[s, u] + 1
                    queue.append(v)
    return dist


def floyd_warshall(adj):
    """algos.floyd_warshall in torch: 0 on the diagonal, 1 on edges, 510 where no path exists; ``path``
    holds the last intermediate node k that shortened i -> j (-1: direct), 510 where unreachable."""
    n = adj.size(0)
    dist = torch.full((n, n), UNREACHABLE_NODE_DISTANCE, dtype=torch.long)
    dist[adj] = 1
    dist.fill_diagonal_(0)
    path = torch.full((n, n), -1, dtype=torch.long)
    for k in range(n):
        cost_ikkj = dist[:, k:k + 1] + dist[k:k + 1, :]
        better = dist > cost_ikkj
        dist = torch.where(better, cost_ikkj, dist)
        path[better] = k
    unreachable = dist >= UNREACHABLE_NODE_DISTANCE
    path[unreachable] = UNREACHABLE_NODE_DISTANCE
    dist[unreachable] = UNREACHABLE_NODE_DISTANCE
    return dist, path


def get_all_edges(path, i, j):
    k = path[i][j]
    if k == -1:
        return []
    else:
        return get_all_edges(path, i, k) + [k] + get_all_edges(path, k, j)


def gen_edge_input(max_dist, path, edge_feat):
    """algos.gen_edge_input: the edge features along each shortest path, -1 past its end."""
    n = path.shape[0]
    edge_fea_all = -1 * np.ones([n, n, max_dist, edge_feat.shape[-1]], dtype=np.int64)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if path[i][j] == UNREACHABLE_NODE_DISTANCE:
                continue
            full_path = [i] + get_all_edges(path, i, j) + [j]
            num_path = len(full_path) - 1
            for k in range(num_path):
                edge_fea_all[i, j, k, :] = edge_feat[full_path[k], full_path[k + 1], :]
    return edge_fea_all


def convert_to_single_emb(x, offset: int = 512):
    feature_num = x.size(1) if len(x.size()) > 1 else 1
    feature_offset = 1 + torch.arange(0, feature_num * offset, offset, dtype=torch.long)
    x = x + feature_offset
    return x


def preprocess_item(item):
    edge_attr, edge_index, x = item.edge_attr, item.edge_index, item.x
    N = x.size(0)
    x = convert_to_single_emb(x)

    # node adj matrix [N, N] bool
    adj = torch.zeros([N, N], dtype=torch.bool)
    adj[edge_index[0, :], edge_index[1, :]] = True

    # edge feature here
    if len(edge_attr.size()) == 1:
        edge_attr = edge_attr[:, None]
    attn_edge_type = torch.zeros([N, N, edge_attr.size(-1)], dtype=torch.long)
    attn_edge_type[edge_index[0, :], edge_index[1, :]] = convert_to_single_emb(edge_attr) + 1

    shortest_path_result, path = floyd_warshall(adj)
    # the repo's np.amax(shortest_path_result) is 510 on a disconnected graph; the longest path is enough
    max_dist = max(int(shortest_path_result[shortest_path_result < UNREACHABLE_NODE_DISTANCE].max()), 1)
    edge_input = gen_edge_input(max_dist, path.numpy(), attn_edge_type.numpy())
    spatial_pos = torch.from_numpy(shortest_path_result.numpy()).long()
    attn_bias = torch.zeros([N + 1, N + 1], dtype=torch.float)  # with graph token

    # combine
    item.x = x
    item.attn_bias = attn_bias
    item.attn_edge_type = attn_edge_type
    item.spatial_pos = spatial_pos
    item.in_degree = adj.long().sum(dim=1).view(-1)
    item.out_degree = item.in_degree  # for undirected graph
    item.edge_input = torch.from_numpy(edge_input).long()
    finite = spatial_pos[spatial_pos < UNREACHABLE_NODE_DISTANCE]
    item.y = torch.tensor([float(finite.max())])
    return item


def pad_1d_unsqueeze(x, padlen):
    x = x + 1  # pad id = 0
    xlen = x.size(0)
    if xlen < padlen:
        new_x = x.new_zeros([padlen], dtype=x.dtype)
        new_x[:xlen] = x
        x = new_x
    return x.unsqueeze(0)


def pad_2d_unsqueeze(x, padlen):
    x = x + 1  # pad id = 0
    xlen, xdim = x.size()
    if xlen < padlen:
        new_x = x.new_zeros([padlen, xdim], dtype=x.dtype)
        new_x[:xlen, :] = x
        x = new_x
    return x.unsqueeze(0)


def pad_attn_bias_unsqueeze(x, padlen):
    xlen = x.size(0)
    if xlen < padlen:
        new_x = x.new_zeros([padlen, padlen], dtype=x.dtype).fill_(float("-inf"))
        new_x[:xlen, :xlen] = x
        new_x[xlen:, :xlen] = 0
        x = new_x
    return x.unsqueeze(0)


def pad_edge_type_unsqueeze(x, padlen):
    xlen = x.size(0)
    if xlen < padlen:
        new_x = x.new_zeros([padlen, padlen, x.size(-1)], dtype=x.dtype)
        new_x[:xlen, :xlen, :] = x
        x = new_x
    return x.unsqueeze(0)


def pad_3d_unsqueeze(x, padlen1, padlen2, padlen3):
    x = x + 1
    xlen1, xlen2, xlen3, xlen4 = x.size()
    if xlen1 < padlen1 or xlen2 < padlen2 or xlen3 < padlen3:
        new_x = x.new_zeros([padlen1, padlen2, padlen3, xlen4], dtype=x.dtype)
        new_x[:xlen1, :xlen2, :xlen3, :] = x
        x = new_x
    return x.unsqueeze(0)


def pad_spatial_pos_unsqueeze(x, padlen):
    x = x + 1
    xlen = x.size(0)
    if xlen < padlen:
        new_x = x.new_zeros([padlen, padlen], dtype=x.dtype)
        new_x[:xlen, :xlen] = x
        x = new_x
    return x.unsqueeze(0)


def collator(items, max_node=512, multi_hop_max_dist=MULTI_HOP_MAX_DIST, spatial_pos_max=1024):
    items = [item for item in items if item is not None and item.x.size(0) <= max_node]
    items = [(item.idx, item.attn_bias.clone(), item.attn_edge_type, item.spatial_pos, item.in_degree,
              item.out_degree, item.x, item.edge_input[:, :, :multi_hop_max_dist, :], item.y) for item in items]
    (idxs, attn_biases, attn_edge_types, spatial_poses, in_degrees, out_degrees, xs, edge_inputs,
     ys) = zip(*items)

    for idx, _ in enumerate(attn_biases):
        attn_biases[idx][1:, 1:][spatial_poses[idx] >= spatial_pos_max] = float("-inf")
    max_node_num = max(i.size(0) for i in xs)
    max_dist = max(i.size(-2) for i in edge_inputs)
    y = torch.cat(ys)
    x = torch.cat([pad_2d_unsqueeze(i, max_node_num) for i in xs])
    edge_input = torch.cat([pad_3d_unsqueeze(i, max_node_num, max_node_num, max_dist) for i in edge_inputs])
    attn_bias = torch.cat([pad_attn_bias_unsqueeze(i, max_node_num + 1) for i in attn_biases])
    attn_edge_type = torch.cat([pad_edge_type_unsqueeze(i, max_node_num) for i in attn_edge_types])
    spatial_pos = torch.cat([pad_spatial_pos_unsqueeze(i, max_node_num) for i in spatial_poses])
    in_degree = torch.cat([pad_1d_unsqueeze(i, max_node_num) for i in in_degrees])
    return dict(idx=torch.LongTensor(idxs), attn_bias=attn_bias, attn_edge_type=attn_edge_type,
                spatial_pos=spatial_pos, in_degree=in_degree, out_degree=in_degree, x=x, edge_input=edge_input,
                y=y)


# ----------------------------------------------------------------------------- model
def init_params(module, n_layers):
    if isinstance(module, nn.Linear):
        module.weight.data.normal_(mean=0.0, std=0.02 / math.sqrt(n_layers))
        if module.bias is not None:
            module.bias.data.zero_()
    if isinstance(module, nn.Embedding):
        module.weight.data.normal_(mean=0.0, std=0.02)


class GraphNodeFeature(nn.Module):
    def __init__(self, num_heads, num_atoms, num_in_degree, num_out_degree, hidden_dim, n_layers):
        super(GraphNodeFeature, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.num_heads = num_heads
        self.num_atoms = num_atoms

        # 1 for graph token
        self.atom_encoder = nn.Embedding(num_atoms + 1, hidden_dim, padding_idx=0)
        self.in_degree_encoder = nn.Embedding(num_in_degree, hidden_dim, padding_idx=0)
        self.out_degree_encoder = nn.Embedding(num_out_degree, hidden_dim, padding_idx=0)

        self.graph_token = nn.Embedding(1, hidden_dim)

        self.apply(lambda module: init_params(module, n_layers=n_layers))

    def forward(self, batched_data):
        x, in_degree, out_degree = (batched_data["x"], batched_data["in_degree"], batched_data["out_degree"])
        n_graph, n_node = x.size()[:2]

        # node feauture + graph token
        node_feature = self.atom_encoder(x).sum(dim=-2)  # [n_graph, n_node, n_hidden]

        node_feature = (node_feature + self.in_degree_encoder(in_degree) + self.out_degree_encoder(out_degree))

        graph_token_feature = self.graph_token.weight.unsqueeze(0).repeat(n_graph, 1, 1)

        graph_node_feature = torch.cat([graph_token_feature, node_feature], dim=1)

        return graph_node_feature


class GraphAttnBias(nn.Module):
    def __init__(self, num_heads, num_edges, num_spatial, num_edge_dis, edge_type, multi_hop_max_dist, n_layers):
        super(GraphAttnBias, self).__init__()  # noqa: UP008
        self.num_heads = num_heads
        self.multi_hop_max_dist = multi_hop_max_dist

        self.edge_encoder = nn.Embedding(num_edges + 1, num_heads, padding_idx=0)
        self.edge_type = edge_type
        if self.edge_type == "multi_hop":
            self.edge_dis_encoder = nn.Embedding(num_edge_dis * num_heads * num_heads, 1)
        self.spatial_pos_encoder = nn.Embedding(num_spatial, num_heads, padding_idx=0)

        self.graph_token_virtual_distance = nn.Embedding(1, num_heads)

        self.apply(lambda module: init_params(module, n_layers=n_layers))

    def forward(self, batched_data):
        attn_bias, spatial_pos, x = (batched_data["attn_bias"], batched_data["spatial_pos"], batched_data["x"])
        edge_input, attn_edge_type = (batched_data["edge_input"], batched_data["attn_edge_type"])

        n_graph, n_node = x.size()[:2]
        graph_attn_bias = attn_bias.clone()
        graph_attn_bias = graph_attn_bias.unsqueeze(1).repeat(1, self.num_heads, 1, 1)  # [n_graph, n_head, n_node+1, n_node+1]

        # spatial pos
        # [n_graph, n_node, n_node, n_head] -> [n_graph, n_head, n_node, n_node]
        spatial_pos_bias = self.spatial_pos_encoder(spatial_pos).permute(0, 3, 1, 2)
        graph_attn_bias[:, :, 1:, 1:] = graph_attn_bias[:, :, 1:, 1:] + spatial_pos_bias

        # reset spatial pos here
        t = self.graph_token_virtual_distance.weight.view(1, self.num_heads, 1)
        graph_attn_bias[:, :, 1:, 0] = graph_attn_bias[:, :, 1:, 0] + t
        graph_attn_bias[:, :, 0, :] = graph_attn_bias[:, :, 0, :] + t

        # edge feature
        if self.edge_type == "multi_hop":
            spatial_pos_ = spatial_pos.clone()
            spatial_pos_[spatial_pos_ == 0] = 1  # set pad to 1
            # set 1 to 1, x > 1 to x - 1
            spatial_pos_ = torch.where(spatial_pos_ > 1, spatial_pos_ - 1, spatial_pos_)
            if self.multi_hop_max_dist > 0:
                spatial_pos_ = spatial_pos_.clamp(0, self.multi_hop_max_dist)
                edge_input = edge_input[:, :, :, : self.multi_hop_max_dist, :]
            # [n_graph, n_node, n_node, max_dist, n_head]
            edge_input = self.edge_encoder(edge_input).mean(-2)
            max_dist = edge_input.size(-2)
            edge_input_flat = edge_input.permute(3, 0, 1, 2, 4).reshape(max_dist, -1, self.num_heads)
            edge_input_flat = torch.bmm(
                edge_input_flat,
                self.edge_dis_encoder.weight.reshape(-1, self.num_heads, self.num_heads)[:max_dist, :, :])
            edge_input = edge_input_flat.reshape(max_dist, n_graph, n_node, n_node, self.num_heads).permute(
                1, 2, 3, 0, 4)
            edge_input = (edge_input.sum(-2) / (spatial_pos_.float().unsqueeze(-1))).permute(0, 3, 1, 2)
        else:
            # [n_graph, n_node, n_node, n_head] -> [n_graph, n_head, n_node, n_node]
            edge_input = self.edge_encoder(attn_edge_type).mean(-2).permute(0, 3, 1, 2)

        graph_attn_bias[:, :, 1:, 1:] = graph_attn_bias[:, :, 1:, 1:] + edge_input
        graph_attn_bias = graph_attn_bias + attn_bias.unsqueeze(1)  # reset

        return graph_attn_bias


class MultiheadAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.dropout_module = nn.Dropout(dropout)
        self.head_dim = embed_dim // num_heads
        assert self.head_dim * num_heads == self.embed_dim, "embed_dim must be divisible by num_heads"
        self.scaling = self.head_dim ** -0.5

        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.xavier_uniform_(self.k_proj.weight, gain=1 / math.sqrt(2))
        nn.init.xavier_uniform_(self.v_proj.weight, gain=1 / math.sqrt(2))
        nn.init.xavier_uniform_(self.q_proj.weight, gain=1 / math.sqrt(2))
        nn.init.xavier_uniform_(self.out_proj.weight)
        if self.out_proj.bias is not None:
            nn.init.constant_(self.out_proj.bias, 0.0)

    def forward(self, query, key, value, attn_bias, key_padding_mask=None, need_weights=True, attn_mask=None,
                need_head_weights=False):
        if need_head_weights:
            need_weights = True
        tgt_len, bsz, embed_dim = query.size()
        src_len = tgt_len
        assert embed_dim == self.embed_dim, f"query dim {embed_dim} != {self.embed_dim}"

        q = self.q_proj(query)
        k = self.k_proj(query)
        v = self.v_proj(query)
        q *= self.scaling

        q = q.contiguous().view(tgt_len, bsz * self.num_heads, self.head_dim).transpose(0, 1)
        k = k.contiguous().view(-1, bsz * self.num_heads, self.head_dim).transpose(0, 1)
        v = v.contiguous().view(-1, bsz * self.num_heads, self.head_dim).transpose(0, 1)

        attn_weights = torch.bmm(q, k.transpose(1, 2))
        assert list(attn_weights.size()) == [bsz * self.num_heads, tgt_len, src_len]

        if attn_bias is not None:
            attn_weights += attn_bias.view(bsz * self.num_heads, tgt_len, src_len)

        if attn_mask is not None:
            attn_mask = attn_mask.unsqueeze(0)
            attn_weights += attn_mask

        if key_padding_mask is not None:
            # don't attend to padding symbols
            attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len)
            attn_weights = attn_weights.masked_fill(
                key_padding_mask.unsqueeze(1).unsqueeze(2).to(torch.bool), float("-inf"))
            attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, src_len)

        attn_weights_float = F.softmax(attn_weights, dim=-1, dtype=torch.float32)
        attn_weights = attn_weights_float.type_as(attn_weights)
        attn_probs = self.dropout_module(attn_weights)

        attn = torch.bmm(attn_probs, v)
        assert list(attn.size()) == [bsz * self.num_heads, tgt_len, self.head_dim]

        attn = attn.transpose(0, 1).contiguous().view(tgt_len, bsz, embed_dim)
        attn = self.out_proj(attn)

        attn_weights = None
        if need_weights:
            attn_weights = attn_weights_float.view(bsz, self.num_heads, tgt_len, src_len).transpose(1, 0)
            if not need_head_weights:
                # average attention weights over heads
                attn_weights = attn_weights.mean(dim=0)
        return attn, attn_weights


class GraphormerGraphEncoderLayer(nn.Module):
    def __init__(self, embedding_dim=32, ffn_embedding_dim=64, num_attention_heads=4, dropout=0.1,
                 attention_dropout=0.1, activation_dropout=0.1, pre_layernorm=True):
        super().__init__()
        self.pre_layernorm = pre_layernorm
        self.dropout_module = nn.Dropout(dropout)
        self.activation_dropout_module = nn.Dropout(activation_dropout)
        self.activation_fn = F.gelu
        self.self_attn = MultiheadAttention(embedding_dim, num_attention_heads, dropout=attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(embedding_dim)
        self.fc1 = nn.Linear(embedding_dim, ffn_embedding_dim)
        self.fc2 = nn.Linear(ffn_embedding_dim, embedding_dim)
        self.final_layer_norm = nn.LayerNorm(embedding_dim)

    def forward(self, x, self_attn_bias=None, self_attn_mask=None, self_attn_padding_mask=None,
                need_head_weights=False):
        # x: T x B x C
        residual = x
        if self.pre_layernorm:
            x = self.self_attn_layer_norm(x)
        x, attn = self.self_attn(query=x, key=x, value=x, attn_bias=self_attn_bias,
                                 key_padding_mask=self_attn_padding_mask, need_weights=need_head_weights,
                                 attn_mask=self_attn_mask, need_head_weights=need_head_weights)
        x = self.dropout_module(x)
        x = residual + x
        if not self.pre_layernorm:
            x = self.self_attn_layer_norm(x)

        residual = x
        if self.pre_layernorm:
            x = self.final_layer_norm(x)
        x = self.activation_fn(self.fc1(x))
        x = self.activation_dropout_module(x)
        x = self.fc2(x)
        x = self.dropout_module(x)
        x = residual + x
        if not self.pre_layernorm:
            x = self.final_layer_norm(x)
        return x, attn


class GraphormerGraphEncoder(nn.Module):
    def __init__(self, num_atoms, num_in_degree, num_out_degree, num_edges, num_spatial, num_edge_dis,
                 edge_type="multi_hop", multi_hop_max_dist=MULTI_HOP_MAX_DIST, num_encoder_layers=2,
                 embedding_dim=32, ffn_embedding_dim=64, num_attention_heads=4, dropout=0.1):
        super().__init__()
        self.num_attention_heads = num_attention_heads
        self.dropout_module = nn.Dropout(dropout)
        self.graph_node_feature = GraphNodeFeature(num_attention_heads, num_atoms, num_in_degree, num_out_degree,
                                                   embedding_dim, num_encoder_layers)
        self.graph_attn_bias = GraphAttnBias(num_attention_heads, num_edges, num_spatial, num_edge_dis, edge_type,
                                             multi_hop_max_dist, num_encoder_layers)
        self.emb_layer_norm = nn.LayerNorm(embedding_dim)
        self.layers = nn.ModuleList([
            GraphormerGraphEncoderLayer(embedding_dim, ffn_embedding_dim, num_attention_heads, dropout=dropout,
                                        attention_dropout=dropout, activation_dropout=dropout)
            for _ in range(num_encoder_layers)])

    def forward(self, batched_data, need_head_weights=False):
        data_x = batched_data["x"]
        n_graph, n_node = data_x.size()[:2]
        padding_mask = (data_x[:, :, 0]).eq(0)  # B x T x 1
        padding_mask_cls = torch.zeros(n_graph, 1, device=padding_mask.device, dtype=padding_mask.dtype)
        padding_mask = torch.cat((padding_mask_cls, padding_mask), dim=1)
        # B x (T+1) x 1

        x = self.graph_node_feature(batched_data)
        attn_bias = self.graph_attn_bias(batched_data)
        x = self.emb_layer_norm(x)
        x = self.dropout_module(x)

        # B x T x C -> T x B x C
        x = x.transpose(0, 1)
        attns = []
        for layer in self.layers:
            x, attn = layer(x, self_attn_padding_mask=padding_mask, self_attn_bias=attn_bias,
                            need_head_weights=need_head_weights)
            attns.append(attn)

        graph_rep = x[0, :, :]
        return x, graph_rep, attns, padding_mask, attn_bias


class GraphormerModel(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.graph_encoder = GraphormerGraphEncoder(**kwargs)
        embedding_dim = kwargs.get("embedding_dim", 32)
        self.lm_head_transform_weight = nn.Linear(embedding_dim, embedding_dim)
        self.activation_fn = F.gelu
        self.layer_norm = nn.LayerNorm(embedding_dim)
        self.embed_out = nn.Linear(embedding_dim, 1)

    def forward(self, batched_data, need_head_weights=False):
        inner_states, graph_rep, attns, padding_mask, attn_bias = self.graph_encoder(
            batched_data, need_head_weights=need_head_weights)
        x = inner_states.transpose(0, 1)  # B x T x C
        x = self.layer_norm(self.activation_fn(self.lm_head_transform_weight(x)))
        x = self.embed_out(x)
        return x[:, 0, :], attns, padding_mask, attn_bias


class PolynomialDecayLR(_LRScheduler):
    def __init__(self, optimizer, warmup_updates, tot_updates, lr, end_lr, power, last_epoch=-1):
        self.warmup_updates = warmup_updates
        self.tot_updates = tot_updates
        self.lr = lr
        self.end_lr = end_lr
        self.power = power
        super(PolynomialDecayLR, self).__init__(optimizer, last_epoch)  # noqa: UP008

    def get_lr(self):
        if self._step_count <= self.warmup_updates:
            self.warmup_factor = self._step_count / float(self.warmup_updates)
            lr = self.warmup_factor * self.lr
        elif self._step_count >= self.tot_updates:
            lr = self.end_lr
        else:
            warmup = self.warmup_updates
            lr_range = self.lr - self.end_lr
            pct_remaining = 1 - (self._step_count - warmup) / (self.tot_updates - warmup)
            lr = lr_range * pct_remaining ** (self.power) + self.end_lr

        return [lr for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        assert False  # noqa: B011  (the repo's spelling)


# ----------------------------------------------------------------------------- build the data set
data_rng = np.random.RandomState(0)  # one data set; the seed moves init, dropout and batch order
graphs, fw_matches_bfs = [], True
for i in range(240):
    n, item = random_graph(data_rng, i)
    bfs = bfs_distances(n, item.edge_index)
    raw_x = item.x
    item = preprocess_item(item)
    item.raw_x = raw_x  # kept for the permutation check
    fw_matches_bfs &= bool((item.spatial_pos.numpy() == bfs).all())
    fw_matches_bfs &= bool(((item.edge_input >= 0).sum(2)[..., 0].numpy()
                            == np.where(bfs == UNREACHABLE_NODE_DISTANCE, 0, bfs)).all())
    graphs.append(item)
ys = torch.cat([g.y for g in graphs])
disconnected = sum(int((g.spatial_pos == UNREACHABLE_NODE_DISTANCE).any()) for g in graphs)
print(f"{len(graphs)} graphs, {disconnected} disconnected, floyd-warshall matches bfs {fw_matches_bfs}, "
      f"diameters {int(ys.min())}..{int(ys.max())}")
train_set, test_set = graphs[:192], graphs[192:]
y_mean = torch.cat([g.y for g in train_set]).mean()

model = GraphormerModel(num_atoms=512 * 1, num_in_degree=16, num_out_degree=16, num_edges=512 * 1,
                        num_spatial=UNREACHABLE_NODE_DISTANCE + 2, num_edge_dis=128, edge_type="multi_hop",
                        multi_hop_max_dist=MULTI_HOP_MAX_DIST, num_encoder_layers=2, embedding_dim=32,
                        ffn_embedding_dim=64, num_attention_heads=4, dropout=0.1)
print(f"parameters: {sum(p.numel() for p in model.parameters())}")


def evaluate(model, data):
    model.eval()
    with torch.no_grad():
        batch = collator(data)
        y_hat, _, _, _ = model(batch)
        mae = (y_hat.view(-1) + y_mean - batch["y"]).abs().mean().item()
    model.train()
    return mae


# ----------------------------------------------------------------------------- the checks
def check_structure(model, items):
    model.eval()
    with torch.no_grad():
        batch = collator(items)
        y_hat, attns, padding_mask, attn_bias = model(batch, need_head_weights=True)
    # an unreachable pair has no path: the reserved spatial row plus an all-padding path (init_params redraws
    # the padding_idx rows too, so row 0 of the edge encoder is not zero) summed over the hops through
    # edge_dis_encoder and divided by the clamped distance
    encoders = model.graph_encoder.graph_attn_bias
    hops = batch["edge_input"].size(-2)
    w_dis = encoders.edge_dis_encoder.weight.reshape(-1, encoders.num_heads, encoders.num_heads)[:hops]
    no_path = (encoders.edge_encoder.weight[0] @ w_dis).sum(0) / MULTI_HOP_MAX_DIST
    reserved = encoders.spatial_pos_encoder.weight[UNREACHABLE_NODE_DISTANCE + 1] + no_path
    unreachable = batch["spatial_pos"] == UNREACHABLE_NODE_DISTANCE + 1
    inner = attn_bias[:, :, 1:, 1:].permute(0, 2, 3, 1)[unreachable]  # [pairs, heads]
    bias_err = (inner - reserved).abs().max().item() if inner.numel() else 0.0
    pad_attn = max(a.permute(1, 0, 2, 3)[padding_mask[:, None, None, :].expand(-1, a.size(0), a.size(2), -1)]
                   .abs().max().item() for a in attns)
    row_sums = max((a.sum(-1) - 1).abs().max().item() for a in attns)
    model.train()
    return bias_err, pad_attn, int(unreachable.sum()), row_sums, y_hat


def permute_item(item, perm):
    inv = torch.argsort(perm)
    data = Data(item.raw_x[perm], inv[item.edge_index], item.edge_attr, None, item.idx)
    return preprocess_item(data)


def permutation_gap(model, items):
    g = torch.Generator().manual_seed(1234)
    permuted = [permute_item(it, torch.randperm(it.x.size(0), generator=g)) for it in items]
    model.eval()
    with torch.no_grad():
        a = model(collator(items))[0]
        b = model(collator(permuted))[0]
    model.train()
    return (a - b).abs().max().item()


probe = [g for g in test_set if (g.spatial_pos == UNREACHABLE_NODE_DISTANCE).any()][:3] + test_set[:5]

bias_err, pad_attn, n_unreachable, row_err, _ = check_structure(model, probe)
print(f"untrained: unreachable pairs {n_unreachable}, bias vs reserved embedding {bias_err:.1e}, "
      f"attention on padding {pad_attn:.1e}, rows sum to 1 within {row_err:.1e}")

# ----------------------------------------------------------------------------- training
epochs, batch_size = 16, 32
tot_updates = epochs * math.ceil(len(train_set) / batch_size)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
scheduler = PolynomialDecayLR(optimizer, warmup_updates=6, tot_updates=tot_updates, lr=2e-3, end_lr=1e-4,
                              power=1.0)
criterion = nn.L1Loss(reduction="mean")
mae_start = evaluate(model, test_set)
mae_mean = (torch.cat([g.y for g in test_set]) - y_mean).abs().mean().item()
epoch_losses = []
for epoch in range(epochs):
    order = torch.randperm(len(train_set)).tolist()
    total = 0.0
    for s in range(0, len(order), batch_size):
        batch = collator([train_set[k] for k in order[s:s + batch_size]])
        y_hat = model(batch)[0].view(-1)
        loss = criterion(y_hat, batch["y"] - y_mean)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(batch["y"])
    epoch_losses.append(total / len(train_set))
    if (epoch + 1) % 4 == 0:
        print(f"epoch {epoch + 1}: train L1 {epoch_losses[-1]:.4f}, test MAE {evaluate(model, test_set):.4f}, "
              f"lr {scheduler.get_last_lr()[0]:.2e}")

mae_end = evaluate(model, test_set)
bias_err2, pad_attn2, _, row_err2, _ = check_structure(model, probe)
perm_gap = permutation_gap(model, test_set)
print(f"trained: bias vs reserved embedding {bias_err2:.1e}, attention on padding {pad_attn2:.1e}, "
      f"permutation gap {perm_gap:.1e}")
print(f"test MAE: mean predictor {mae_mean:.4f}, untrained {mae_start:.4f}, trained {mae_end:.4f}")
print(f"FINAL bias_err={max(bias_err, bias_err2):.2e} pad_attn={max(pad_attn, pad_attn2):.2e} "
      f"perm_gap={perm_gap:.2e} fw_ok={float(fw_matches_bfs):.0f} loss_ratio={epoch_losses[-1] / epoch_losses[0]:.4f} "
      f"mae={mae_end:.4f} mae_ratio={mae_end / mae_mean:.4f}")
