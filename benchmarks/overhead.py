"""Per-op overhead in eager mode, counted exactly: ``python benchmarks/overhead.py WORKLOAD [--callgrind]``.

Wall time on a shared machine is noise at the scale of one small op; callgrind's instruction count
is not. Five workloads of many tiny tensors:

- ``op_overhead``: ``chainrule bench op_overhead``'s step (200 chained mul/add/tanh on 16 elements,
  then backward);
- ``bilstm_crf``: one training sentence of the PyTorch Bi-LSTM CRF tutorial (the corpus program
  tests/programs/bilstm_crf.py): forward algorithm, gold score, backward, SGD step;
- ``lstm_cell``: one LSTM step on a (1, 1, E) input, forward and backward;
- ``transformer_step``: one training step of a 2-layer ``nn.TransformerEncoder`` (d_model 32, 4 heads,
  batch 4 x seq 8) with AdamW: forward, backward, step;
- ``mlp_step``: one training step of a 3-layer MLP 64 wide on a batch of 32, SGD with momentum.

Each is warmed up, ``gc.freeze()`` keeps the collector's walk of old objects out of the count, and
the measured steps run between ``callgrind_control -i on`` and ``-i off``::

    OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --instr-atstart=no \\
        --callgrind-out-file=/tmp/perf_cg.out python benchmarks/overhead.py bilstm_crf --callgrind | grep Collected

Without ``--callgrind`` it runs the steps under cProfile and prints the top functions by own time.
``--torch`` runs the same workload on PyTorch (for comparison). ``--standin-cuda`` runs it with
every tensor on 'cuda' under the CPU stand-in for CuPy (``chainrule._backend.use_standin_cuda``): the
Python a GPU run pays on the host (device checks, array-module lookups, device scalars), which the CPU
run does not, plus the stand-in's own wrapping, which a real GPU run does not pay.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys

import numpy as np

STEPS = 5


def op_overhead(torch):
    from chainrule.benchmark import chained_ops_step

    x = torch.from_numpy(np.random.default_rng(0).standard_normal(16).astype(np.float32))
    return chained_ops_step(x.to(torch.get_default_device()).requires_grad_(True))


def lstm_cell(torch):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 2, num_layers=1, bidirectional=True)
    x = torch.randn(1, 1, 5)
    hidden = (torch.randn(2, 1, 2), torch.randn(2, 1, 2))

    def step():
        lstm.zero_grad()
        out, _ = lstm(x, hidden)
        out.sum().backward()

    return step


def bilstm_crf(torch):
    """The tutorial's model (tests/programs/bilstm_crf.py), one sentence per step."""
    nn = torch.nn
    torch.manual_seed(0)
    tags = {"B": 0, "I": 1, "O": 2, "<START>": 3, "<STOP>": 4}
    start, stop, n_tags = 3, 4, 5
    sentence = "the wall street journal reported today that apple corporation made money".split()
    words = {w: i for i, w in enumerate(dict.fromkeys(sentence))}
    gold = [tags[t] for t in "B I I I O O O B I O O".split()]

    embed = nn.Embedding(len(words), 5)
    lstm = nn.LSTM(5, 2, num_layers=1, bidirectional=True)
    hidden2tag = nn.Linear(4, n_tags)
    transitions = nn.Parameter(torch.randn(n_tags, n_tags))
    transitions.data[start, :] = -10000
    transitions.data[:, stop] = -10000
    params = [*embed.parameters(), *lstm.parameters(), *hidden2tag.parameters(), transitions]
    optimizer = torch.optim.SGD(params, lr=0.01, weight_decay=1e-4)

    def argmax(vec):
        _, idx = torch.max(vec, 1)
        return idx.item()

    def log_sum_exp(vec):
        max_score = vec[0, argmax(vec)]
        max_score_broadcast = max_score.view(1, -1).expand(1, vec.size()[1])
        return max_score + torch.log(torch.sum(torch.exp(vec - max_score_broadcast)))

    def step():
        optimizer.zero_grad()
        sentence_in = torch.tensor([words[w] for w in sentence], dtype=torch.long)
        targets = torch.tensor(gold, dtype=torch.long)
        hidden = (torch.randn(2, 1, 2), torch.randn(2, 1, 2))
        embeds = embed(sentence_in).view(len(sentence), 1, -1)
        lstm_out, _ = lstm(embeds, hidden)
        feats = hidden2tag(lstm_out.view(len(sentence), 4))
        init_alphas = torch.full((1, n_tags), -10000.)
        init_alphas[0][start] = 0.
        forward_var = init_alphas
        for feat in feats:
            alphas_t = []
            for next_tag in range(n_tags):
                emit_score = feat[next_tag].view(1, -1).expand(1, n_tags)
                trans_score = transitions[next_tag].view(1, -1)
                next_tag_var = forward_var + trans_score + emit_score
                alphas_t.append(log_sum_exp(next_tag_var).view(1))
            forward_var = torch.cat(alphas_t).view(1, -1)
        forward_score = log_sum_exp(forward_var + transitions[stop])
        score = torch.zeros(1)
        path = torch.cat([torch.tensor([start], dtype=torch.long), targets])
        for i, feat in enumerate(feats):
            score = score + transitions[path[i + 1], path[i]] + feat[path[i + 1]]
        score = score + transitions[stop, path[-1]]
        loss = forward_score - score
        loss.backward()
        optimizer.step()
        return loss

    return step


def transformer_step(torch):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, batch_first=True)
    model = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(4, 8, 32)
    target = torch.randn(4, 8, 32)

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        return loss

    return step


def mlp_step(torch):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(32, 64)
    y = torch.randint(0, 10, (32,))

    def step():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


WORKLOADS = {
    "op_overhead": op_overhead,
    "bilstm_crf": bilstm_crf,
    "lstm_cell": lstm_cell,
    "transformer_step": transformer_step,
    "mlp_step": mlp_step,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--callgrind", action="store_true", help="toggle callgrind's collection around the steps")
    parser.add_argument("--torch", action="store_true", help="run on PyTorch instead of chainrule")
    parser.add_argument("--standin-cuda", action="store_true",
                        help="every tensor on 'cuda', run by the CPU stand-in for CuPy (chainrule only)")
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    if args.standin_cuda:
        os.environ["CHAINRULE_STANDIN_CUDA"] = "1"  # read when chainrule first resolves 'cuda'
    if args.torch:
        import torch
    else:
        import chainrule as torch
    if args.standin_cuda:
        torch.set_default_device("cuda")
    step = WORKLOADS[args.workload](torch)
    for _ in range(3):
        step()
    gc.collect()
    gc.freeze()
    if args.callgrind:
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
        for _ in range(args.steps):
            step()
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)
        return
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.steps):
        step()
    profile.disable()
    pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(40)


if __name__ == "__main__":
    main()
