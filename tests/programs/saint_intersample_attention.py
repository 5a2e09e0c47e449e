"""SAINT (Somepalli et al., 2021) in the layout of somepago/saint (models/pretrainmodel.py, models/model.py,
augmentations.py, pretraining.py, train.py), on a synthetic tabular task with feature interactions.

The data: three categorical and four continuous columns; the label is an XOR of a continuous product's sign
and a categorical level, plus a categorical-continuous interaction, so a logistic model on one-hot +
continuous features stays near chance while a model of interactions does not. As in the repo, a CLS column
of ones is prepended to the categoricals.

The model follows the repo: ``categories_offset`` by ``F.pad(torch.tensor(list(categories)), (1, 0),
value=num_special_tokens).cumsum(dim=-1)[:-1]`` registered as a buffer and one shared ``nn.Embedding`` for
every categorical value, a per-feature ``simple_MLP([1, 100, dim])`` for each continuous column, the
``RowColTransformer`` (``attentiontype='colrow'``): ``PreNorm`` + ``Residual`` self-attention across
features, a GEGLU ``FeedForward`` (``x.chunk(2, dim=-1)``, ``x * F.gelu(gates)``), then intersample
attention across the batch by ``x.reshape(1, b, n * d)``; attention by ``einsum('b h i d, b h j d -> b h i j')``
with heads split by ``reshape``/``permute``; ``sep_MLP`` heads for denoising.

Pretraining is the repo's: CutMix in input space (``np.random.choice(2, x.shape, p=[lam, 1 - lam])`` masks
swapping entries with a ``torch.randperm`` partner), mixup in embedding space (``lam * x1 + (1 - lam) *
x1[index, :]``), the contrastive loss on ``x / x.norm(dim=-1, keepdim=True)`` projections by
``F.cross_entropy(aug_features_1 @ aug_features_2.t() / nce_temp, torch.arange(...))`` both ways, and the
denoising losses (``CrossEntropyLoss`` per categorical head, ``MSELoss`` on the continuous ones). Finetuning
trains ``mlpfory`` on the CLS representation with ``CrossEntropyLoss`` and AdamW.

Checked: the pretraining loss falls, and test accuracy after finetuning beats the logistic baseline trained
on the same rows.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import einsum, nn

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

# ----------------------------------------------------------------------------------- data
N_ROWS, N_TRAIN = 800, 600
cat_dims = [3, 4, 5]
N_CONT = 4
x_cat = np.stack([np.random.randint(0, c, N_ROWS) for c in cat_dims], 1)
x_cont = np.random.randn(N_ROWS, N_CONT).astype(np.float32)
logit = 3.0 * np.sign(x_cont[:, 0] * x_cont[:, 1]) * np.where(x_cat[:, 0] == 1, -1.0, 1.0)
logit += 1.5 * x_cont[:, 2] * np.where(x_cat[:, 1] >= 2, 1.0, -1.0)
y = (logit + 0.5 * np.random.randn(N_ROWS) > 0).astype(np.int64)
# the repo prepends a CLS token as a categorical column of constant value
x_cat = np.concatenate([np.zeros((N_ROWS, 1), dtype=np.int64), x_cat], 1)
categories = np.append(np.array([1]), np.array(cat_dims)).astype(int)
mean, std = x_cont[:N_TRAIN].mean(0), x_cont[:N_TRAIN].std(0)
x_cont = (x_cont - mean) / std
X_cat, X_cont, Y = torch.from_numpy(x_cat), torch.from_numpy(x_cont), torch.from_numpy(y)
print(f"data: {N_ROWS} rows, {len(cat_dims)} categorical {cat_dims}, {N_CONT} continuous, positives {y.mean():.3f}")


# ----------------------------------------------------------------------------------- model
class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(x, **kwargs) + x


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs)


class GEGLU(nn.Module):
    def forward(self, x):
        x, gates = x.chunk(2, dim=-1)
        return x * F.gelu(gates)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4, dropout=0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult * 2), GEGLU(), nn.Dropout(dropout), nn.Linear(dim * mult, dim))

    def forward(self, x, **kwargs):
        return self.net(x, **kwargs)


class Attention(nn.Module):
    def __init__(self, dim, heads=8, dim_head=16, dropout=0.0):
        super().__init__()
        inner_dim = dim_head * heads
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Linear(inner_dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        h = self.heads
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        # rearrange(t, 'b n (h d) -> b h n d', h=h)
        q, k, v = map(lambda t: t.reshape(t.shape[0], t.shape[1], h, -1).permute(0, 2, 1, 3), (q, k, v))
        sim = einsum("b h i d, b h j d -> b h i j", q, k) * self.scale
        attn = sim.softmax(dim=-1)
        out = einsum("b h i j, b h j d -> b h i d", attn, v)
        out = out.permute(0, 2, 1, 3).reshape(out.shape[0], out.shape[2], -1)  # 'b h n d -> b n (h d)'
        return self.to_out(out)


class RowColTransformer(nn.Module):
    def __init__(self, dim, nfeats, depth, heads, dim_head, attn_dropout, ff_dropout, style="colrow"):
        super().__init__()
        self.layers = nn.ModuleList([])
        self.style = style
        for _ in range(depth):
            self.layers.append(nn.ModuleList([
                PreNorm(dim, Residual(Attention(dim, heads=heads, dim_head=dim_head, dropout=attn_dropout))),
                PreNorm(dim, Residual(FeedForward(dim, dropout=ff_dropout))),
                PreNorm(dim * nfeats, Residual(Attention(dim * nfeats, heads=heads, dim_head=64, dropout=attn_dropout))),
                PreNorm(dim * nfeats, Residual(FeedForward(dim * nfeats, dropout=ff_dropout))),
            ]))

    def forward(self, x, x_cont=None):
        if x_cont is not None:
            x = torch.cat((x, x_cont), dim=1)
        _, n, _ = x.shape
        for attn1, ff1, attn2, ff2 in self.layers:
            x = attn1(x)
            x = ff1(x)
            x = x.reshape(1, x.shape[0], -1)  # rearrange(x, 'b n d -> 1 b (n d)')
            x = attn2(x)
            x = ff2(x)
            x = x.reshape(x.shape[1], n, -1)  # rearrange(x, '1 b (n d) -> b n d', n=n)
        return x


class simple_MLP(nn.Module):
    def __init__(self, dims):
        super(simple_MLP, self).__init__()  # noqa: UP008  (the repo's spelling)
        self.layers = nn.Sequential(nn.Linear(dims[0], dims[1]), nn.ReLU(), nn.Linear(dims[1], dims[2]))

    def forward(self, x):
        if len(x.shape) == 1:
            x = x.view(x.size(0), -1)
        x = self.layers(x)
        return x


class sep_MLP(nn.Module):
    def __init__(self, dim, len_feats, categories):
        super(sep_MLP, self).__init__()  # noqa: UP008
        self.len_feats = len_feats
        self.layers = nn.ModuleList([])
        for i in range(len_feats):
            self.layers.append(simple_MLP([dim, 5 * dim, categories[i]]))

    def forward(self, x):
        y_pred = list([])
        for i in range(self.len_feats):
            x_i = x[:, i, :]
            pred = self.layers[i](x_i)
            y_pred.append(pred)
        return y_pred


class SAINT(nn.Module):
    def __init__(self, *, categories, num_continuous, dim, depth, heads, dim_head=16, dim_out=1,
                 num_special_tokens=0, attn_dropout=0.0, ff_dropout=0.0, y_dim=2):
        super().__init__()
        assert all(map(lambda n: n > 0, categories)), "number of each category must be positive"
        self.num_categories = len(categories)
        self.num_unique_categories = sum(categories)
        self.num_special_tokens = num_special_tokens
        self.total_tokens = self.num_unique_categories + num_special_tokens
        categories_offset = F.pad(torch.tensor(list(categories)), (1, 0), value=num_special_tokens)
        categories_offset = categories_offset.cumsum(dim=-1)[:-1]
        self.register_buffer("categories_offset", categories_offset)
        self.norm = nn.LayerNorm(num_continuous)
        self.num_continuous = num_continuous
        self.dim = dim
        self.simple_MLP = nn.ModuleList([simple_MLP([1, 100, self.dim]) for _ in range(self.num_continuous)])
        nfeats = self.num_categories + num_continuous
        self.transformer = RowColTransformer(dim=dim, nfeats=nfeats, depth=depth, heads=heads, dim_head=dim_head,
                                             attn_dropout=attn_dropout, ff_dropout=ff_dropout)
        self.embeds = nn.Embedding(self.total_tokens, self.dim)
        self.mlp1 = sep_MLP(dim, self.num_categories, categories)
        self.mlp2 = sep_MLP(dim, self.num_continuous, np.ones(self.num_continuous).astype(int))
        self.mlpfory = simple_MLP([dim, 1000, y_dim])
        self.pt_mlp = simple_MLP([dim * nfeats, 6 * dim * nfeats // 5, dim * nfeats // 2])
        self.pt_mlp2 = simple_MLP([dim * nfeats, 6 * dim * nfeats // 5, dim * nfeats // 2])

    def forward(self, x_categ, x_cont):
        x = self.transformer(x_categ, x_cont)
        cat_outs = self.mlp1(x[:, :self.num_categories, :])
        con_outs = self.mlp2(x[:, self.num_categories:, :])
        return cat_outs, con_outs


def embed_data(x_categ, x_cont, model):
    x_categ = x_categ + model.categories_offset.type_as(x_categ)
    x_categ_enc = model.embeds(x_categ)
    n1, n2 = x_cont.shape
    x_cont_enc = torch.empty(n1, n2, model.dim)
    for i in range(model.num_continuous):
        x_cont_enc[:, i, :] = model.simple_MLP[i](x_cont[:, i])
    return x_categ, x_categ_enc, x_cont_enc


def add_noise(x_categ, x_cont, noise_params):
    """CutMix in input space (augmentations.py)."""
    lam = noise_params["lambda"]
    batch_size = x_categ.size()[0]
    index = torch.randperm(batch_size)
    cat_corr = torch.from_numpy(np.random.choice(2, (x_categ.shape), p=[lam, 1 - lam]))
    con_corr = torch.from_numpy(np.random.choice(2, (x_cont.shape), p=[lam, 1 - lam]))
    x1, x2 = x_categ[index, :], x_cont[index, :]
    x_categ_corr, x_cont_corr = x_categ.clone().detach(), x_cont.clone().detach()
    x_categ_corr[cat_corr == 0] = x1[cat_corr == 0]
    x_cont_corr[con_corr == 0] = x2[con_corr == 0]
    return x_categ_corr, x_cont_corr


def mixup_data(x1, x2, lam=1.0, y=None):
    """Mixup in embedding space."""
    batch_size = x1.size()[0]
    index = torch.randperm(batch_size)
    mixed_x1 = lam * x1 + (1 - lam) * x1[index, :]
    mixed_x2 = lam * x2 + (1 - lam) * x2[index, :]
    return mixed_x1, mixed_x2


# ----------------------------------------------------------------------------------- pretraining
BATCH = 64
model = SAINT(categories=tuple(categories), num_continuous=N_CONT, dim=16, depth=1, heads=2, dim_head=8)
criterion1 = nn.CrossEntropyLoss()
criterion2 = nn.MSELoss()
nce_temp, lam0, lam2, lam3 = 0.7, 0.5, 1.0, 10.0
pt_optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
train_idx = torch.arange(N_TRAIN)
pt_losses = []
for epoch in range(3):
    model.train()
    running = 0.0
    perm = train_idx[torch.randperm(N_TRAIN)]
    for start in range(0, N_TRAIN, BATCH):
        rows = perm[start:start + BATCH]
        x_categ, x_cont = X_cat[rows], X_cont[rows]
        pt_optimizer.zero_grad()
        x_categ_corr, x_cont_corr = add_noise(x_categ, x_cont, {"lambda": 0.1})
        _, x_categ_enc_2, x_cont_enc_2 = embed_data(x_categ_corr, x_cont_corr, model)
        _, x_categ_enc, x_cont_enc = embed_data(x_categ, x_cont, model)
        x_categ_enc_2, x_cont_enc_2 = mixup_data(x_categ_enc_2, x_cont_enc_2, lam=0.3)
        aug_features_1 = model.transformer(x_categ_enc, x_cont_enc)
        aug_features_2 = model.transformer(x_categ_enc_2, x_cont_enc_2)
        aug_features_1 = (aug_features_1 / aug_features_1.norm(dim=-1, keepdim=True)).flatten(1, 2)
        aug_features_2 = (aug_features_2 / aug_features_2.norm(dim=-1, keepdim=True)).flatten(1, 2)
        aug_features_1 = model.pt_mlp(aug_features_1)
        aug_features_2 = model.pt_mlp2(aug_features_2)
        logits_per_aug1 = aug_features_1 @ aug_features_2.t() / nce_temp
        logits_per_aug2 = aug_features_2 @ aug_features_1.t() / nce_temp
        targets = torch.arange(logits_per_aug1.size(0))
        loss_1 = criterion1(logits_per_aug1, targets)
        loss_2 = criterion1(logits_per_aug2, targets)
        loss = lam0 * (loss_1 + loss_2) / 2
        # denoising
        cat_outs, con_outs = model(x_categ_enc_2, x_cont_enc_2)
        con_outs = torch.cat(con_outs, dim=1)
        l2 = criterion2(con_outs, x_cont)
        l1 = 0
        for j in range(1, len(cat_dims) + 1):
            l1 += criterion1(cat_outs[j], x_categ[:, j])
        loss += lam2 * l1 + lam3 * l2
        loss.backward()
        pt_optimizer.step()
        running += loss.item()
    pt_losses.append(running / ((N_TRAIN + BATCH - 1) // BATCH))
    print(f"pretrain epoch {epoch}  loss {pt_losses[-1]:.4f}")


# ----------------------------------------------------------------------------------- finetuning
@torch.no_grad()
def classification_scores(model, rows):
    model.eval()
    correct = 0
    for start in range(0, len(rows), BATCH):
        r = rows[start:start + BATCH]
        _, x_categ_enc, x_cont_enc = embed_data(X_cat[r], X_cont[r], model)
        reps = model.transformer(x_categ_enc, x_cont_enc)
        y_outs = model.mlpfory(reps[:, 0, :])
        correct += (torch.argmax(y_outs, dim=1) == Y[r]).float().sum().item()
    return correct / len(rows)


test_idx = torch.arange(N_TRAIN, N_ROWS)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
for epoch in range(12):
    model.train()
    running = 0.0
    perm = train_idx[torch.randperm(N_TRAIN)]
    for start in range(0, N_TRAIN, BATCH):
        rows = perm[start:start + BATCH]
        optimizer.zero_grad()
        _, x_categ_enc, x_cont_enc = embed_data(X_cat[rows], X_cont[rows], model)
        reps = model.transformer(x_categ_enc, x_cont_enc)
        # select only the representations corresponding to CLS token and apply mlp on it
        y_reps = reps[:, 0, :]
        y_outs = model.mlpfory(y_reps)
        loss = criterion1(y_outs, Y[rows])
        loss.backward()
        optimizer.step()
        running += loss.item()
    if epoch % 3 == 2:
        print(f"finetune epoch {epoch:2d}  loss {running / ((N_TRAIN + BATCH - 1) // BATCH):.4f}  "
              f"test acc {classification_scores(model, test_idx):.4f}")
saint_acc = classification_scores(model, test_idx)

# ----------------------------------------------------------------------------------- logistic baseline
onehot = torch.cat([F.one_hot(X_cat[:, j + 1], c).float() for j, c in enumerate(cat_dims)] + [X_cont], dim=1)
logreg = nn.Linear(onehot.shape[1], 2)
lbfgs = torch.optim.LBFGS(logreg.parameters(), lr=1, max_iter=100, line_search_fn="strong_wolfe")


def closure():
    lbfgs.zero_grad()
    loss = F.cross_entropy(logreg(onehot[:N_TRAIN]), Y[:N_TRAIN])
    loss.backward()
    return loss


lbfgs.step(closure)
with torch.no_grad():
    logistic_acc = (logreg(onehot[N_TRAIN:]).argmax(1) == Y[N_TRAIN:]).float().mean().item()
print(f"test accuracy: SAINT {saint_acc:.4f}, logistic baseline {logistic_acc:.4f}")
print(f"FINAL pt_loss_ratio={pt_losses[-1] / pt_losses[0]:.4f} saint_acc={saint_acc:.4f} "
      f"logistic_acc={logistic_acc:.4f} beats_logistic={int(saint_acc > logistic_acc + 0.05)}")
