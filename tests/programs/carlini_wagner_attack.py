"""The Carlini & Wagner L2 attack as torchattacks and cleverhans write it, against DeepFool and a
minimal-epsilon FGSM, on a small CNN trained first on synthetic 8x8 "glyphs" in [0, 1].

C&W: the tanh-space variable ``w = torch.atanh(torch.clamp(x * 2 - 1, -1 + eps, 1 - eps))`` as a leaf
optimised by ``optim.Adam([w])``, ``nn.MSELoss(reduction="none")`` on ``nn.Flatten()`` images for the
L2 term, the f6 margin ``torch.clamp(real - other, min=-kappa)`` with the ``one_hot`` masking
``(1 - onehot) * logits - onehot * 1e4`` (checked against torchattacks' ``torch.eye(n)[labels]``
form and a ``topk`` form), a per-example binary search over the constant ``c`` (cleverhans'
lower/upper bounds, ``* 10`` until the first success), and best-adversarial bookkeeping by
``torch.where``. DeepFool (torchattacks' ``_forward_indiv``): per-class ``torch.autograd.grad`` of the
logits with ``retain_graph=True`` stacked into a Jacobian, the linearised step
``|f'| * w' / ||w'||^2`` with overshoot 0.02. FGSM: the smallest epsilon of a grid that flips each
image. The check: C&W succeeds as often as DeepFool; on the images every attack broke, the mean L2
of C&W and of DeepFool are both well under FGSM's, and C&W's is within 10% of DeepFool's (on a
small ReLU net DeepFool's linearised step is nearly exact, so neither reliably beats the other).
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

N_CLASSES = 6
rng = np.random.RandomState(7)
glyphs = (rng.rand(N_CLASSES, 4, 4) > 0.5).astype(np.float32)


def make(n):
    labels = rng.randint(0, N_CLASSES, size=n)
    images = np.kron(glyphs[labels], np.ones((2, 2), dtype=np.float32))[:, None]
    images = np.clip(0.2 + 0.6 * images + 0.08 * rng.randn(*images.shape), 0.01, 0.99).astype(np.float32)
    return torch.from_numpy(images), torch.from_numpy(labels).long()


x_train, y_train = make(600)
x_test, y_test = make(64)


class SmallCNN(nn.Module):
    def __init__(self, num_classes=N_CLASSES):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.ReLU(),
                                        nn.Linear(32, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


model = SmallCNN().to(device)
optimizer = optim.Adam(model.parameters(), lr=3e-3)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train),
                                     batch_size=50, shuffle=True)
for epoch in range(6):
    model.train()
    total = 0.0
    for images, labels in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(images)
    print(f"epoch {epoch} loss {total / len(x_train):.4f}")

model.eval()
for p in model.parameters():
    p.requires_grad_(False)
with torch.no_grad():
    clean_pred = model(x_test).argmax(1)
test_acc = (clean_pred == y_test).float().mean().item()
keep = clean_pred == y_test
images, labels = x_test[keep][:24], y_test[keep][:24]
print(f"test accuracy {test_acc:.4f}, attacking {len(images)} correctly classified images")


# ---- the f6 margin three ways -------------------------------------------------------------------
def f6_masked(outputs, labels, kappa=0.0):
    onehot = F.one_hot(labels, outputs.shape[1]).to(outputs.dtype)
    real = torch.sum(onehot * outputs, dim=1)
    other, _ = torch.max((1 - onehot) * outputs - onehot * 1e4, dim=1)
    return torch.clamp(real - other, min=-kappa)


def f6_eye(outputs, labels, kappa=0.0):
    one_hot_labels = torch.eye(outputs.shape[1]).to(outputs.device)[labels]
    other = torch.max((1 - one_hot_labels) * outputs - one_hot_labels * 1e4, dim=1)[0]
    real = torch.max(one_hot_labels * outputs - (1 - one_hot_labels) * 1e4, dim=1)[0]
    return torch.clamp((real - other), min=-kappa)


def f6_topk(outputs, labels, kappa=0.0):
    top2 = outputs.topk(2, dim=1)
    real = outputs.gather(1, labels[:, None]).squeeze(1)
    other = torch.where(top2.indices[:, 0] == labels, top2.values[:, 1], top2.values[:, 0])
    return (real - other).clamp(min=-kappa)


with torch.no_grad():
    logits = model(images)
    m1, m2, m3 = f6_masked(logits, labels, 0.5), f6_eye(logits, labels, 0.5), f6_topk(logits, labels, 0.5)
margin_diff = max((m1 - m2).abs().max().item(), (m1 - m3).abs().max().item())
print(f"f6 margin routes max diff {margin_diff:.2e}, mean margin {m1.mean().item():.4f}")


# ---- C&W L2 ------------------------------------------------------------------------------------
class CW:
    def __init__(self, model, c=1.0, kappa=0.0, steps=100, lr=0.01, binary_search_steps=5):
        self.model = model
        self.c = c
        self.kappa = kappa
        self.steps = steps
        self.lr = lr
        self.binary_search_steps = binary_search_steps

    def tanh_space(self, w):
        return 1 / 2 * (torch.tanh(w) + 1)

    def inverse_tanh_space(self, x, eps=1e-6):
        return torch.atanh(torch.clamp(x * 2 - 1, min=-1 + eps, max=1 - eps))

    def __call__(self, images, labels):
        images = images.clone().detach().to(device)
        labels = labels.clone().detach().to(device)
        batch = len(images)
        dim = images.dim()
        mse = nn.MSELoss(reduction="none")
        flatten = nn.Flatten()

        lower_bound = torch.zeros(batch)
        upper_bound = torch.full((batch,), 1e10)
        const = torch.full((batch,), self.c)
        o_best_l2 = torch.full((batch,), 1e10)
        o_best_adv = images.clone()
        history = []
        # cleverhans keeps one variable and one optimizer across the binary search
        w = self.inverse_tanh_space(images).detach()
        w.requires_grad = True
        optimizer = optim.Adam([w], lr=self.lr)
        for outer_step in range(self.binary_search_steps):
            best_l2 = torch.full((batch,), 1e10)
            succeeded_any = torch.zeros(batch, dtype=torch.bool)
            for _step in range(self.steps):
                adv_images = self.tanh_space(w)
                current_l2 = mse(flatten(adv_images), flatten(images)).sum(dim=1)
                outputs = self.model(adv_images)
                f_loss = f6_masked(outputs, labels, self.kappa)
                cost = current_l2.sum() + (const * f_loss).sum()
                optimizer.zero_grad()
                cost.backward()
                optimizer.step()

                pre = torch.argmax(outputs.detach(), 1)
                condition = pre != labels
                l2 = current_l2.detach()
                improved = condition & (l2 < best_l2)
                best_l2 = torch.where(improved, l2, best_l2)
                succeeded_any |= condition
                better = condition & (l2 < o_best_l2)
                o_best_l2 = torch.where(better, l2, o_best_l2)
                mask = better.view([-1] + [1] * (dim - 1))
                o_best_adv = torch.where(mask, adv_images.detach(), o_best_adv)

            # binary search on c, per example
            upper_bound = torch.where(succeeded_any, torch.minimum(upper_bound, const), upper_bound)
            lower_bound = torch.where(succeeded_any, lower_bound, torch.maximum(lower_bound, const))
            bounded = upper_bound < 1e9
            const = torch.where(bounded, (lower_bound + upper_bound) / 2, const * 10)
            history.append(succeeded_any.float().mean().item())
            print(f"  c&w outer {outer_step}: success {history[-1]:.4f} "
                  f"mean c {const.mean().item():.4f} cost {cost.item():.4f}")
        return o_best_adv, o_best_l2.sqrt()


cw = CW(model)
cw_adv, cw_l2 = cw(images, labels)
with torch.no_grad():
    cw_pred = model(cw_adv).argmax(1)
cw_ok = cw_pred != labels
recomputed = (cw_adv - images).flatten(1).norm(dim=1)
bookkeeping_diff = (torch.where(cw_ok, recomputed, torch.zeros_like(recomputed))
                    - torch.where(cw_ok, cw_l2, torch.zeros_like(cw_l2))).abs().max().item()
print(f"C&W success {cw_ok.float().mean().item():.4f}, best-L2 bookkeeping diff {bookkeeping_diff:.2e}, "
      f"in box {bool((cw_adv >= 0).all() and (cw_adv <= 1).all())}")


# ---- DeepFool -----------------------------------------------------------------------------------
def construct_jacobian(y, x):
    x_grads = []
    for y_element in y:
        (g,) = torch.autograd.grad(y_element, x, retain_graph=True)
        x_grads.append(g.detach())
    return torch.stack(x_grads).reshape(*y.shape, *x.shape)


def deepfool_single(model, image, label, steps=50, overshoot=0.02):
    adv_image = image.clone().detach()
    for _ in range(steps):
        adv_image.requires_grad = True
        fs = model(adv_image[None])[0]
        _, pre = torch.max(fs, dim=0)
        if pre != label:
            return True, adv_image.detach()
        ws = construct_jacobian(fs, adv_image)
        adv_image = adv_image.detach()
        f_0 = fs[label]
        w_0 = ws[label]
        wrong_classes = [i for i in range(len(fs)) if i != label]
        f_k = fs[wrong_classes]
        w_k = ws[wrong_classes]
        f_prime = (f_k - f_0).detach()
        w_prime = w_k - w_0
        value = torch.abs(f_prime) / torch.norm(nn.Flatten()(w_prime), p=2, dim=1)
        _, hat_L = torch.min(value, 0)
        delta = (torch.abs(f_prime[hat_L]) * w_prime[hat_L]
                 / (torch.norm(w_prime[hat_L], p=2) ** 2))
        # LTS4's deepfool.py: the overshoot scales the total perturbation r_tot
        adv_image = image + (1 + overshoot) * (adv_image - image + delta)
        adv_image = torch.clamp(adv_image, min=0, max=1).detach()
    with torch.no_grad():
        return bool(model(adv_image[None]).argmax(1).item() != label), adv_image


df_ok, df_adv = [], []
for image, label in zip(images, labels):
    ok, adv = deepfool_single(model, image, label.item())
    df_ok.append(ok)
    df_adv.append(adv)
df_ok = torch.tensor(df_ok)
df_adv = torch.stack(df_adv)
df_l2 = (df_adv - images).flatten(1).norm(dim=1)
print(f"DeepFool success {df_ok.float().mean().item():.4f}")

# ---- minimal-epsilon FGSM -----------------------------------------------------------------------
x_req = images.clone().requires_grad_(True)
loss = F.cross_entropy(model(x_req), labels)
(grad,) = torch.autograd.grad(loss, x_req)
fgsm_eps = torch.full((len(images),), float("inf"))
fgsm_l2 = torch.full((len(images),), float("inf"))
with torch.no_grad():
    for eps in torch.linspace(0.01, 0.6, 60).tolist():
        adv = torch.clamp(images + eps * grad.sign(), 0, 1)
        flipped = (model(adv).argmax(1) != labels) & torch.isinf(fgsm_eps)
        fgsm_eps = torch.where(flipped, torch.tensor(eps), fgsm_eps)
        fgsm_l2 = torch.where(flipped, (adv - images).flatten(1).norm(dim=1), fgsm_l2)
fgsm_ok = torch.isfinite(fgsm_eps)
print(f"FGSM success {fgsm_ok.float().mean().item():.4f}, "
      f"median eps {fgsm_eps[fgsm_ok].median().item():.4f}")

both = cw_ok & df_ok & fgsm_ok
cw_mean = cw_l2[both].mean().item()
df_mean = df_l2[both].mean().item()
fgsm_mean = fgsm_l2[both].mean().item()
print(f"on {int(both.sum())} images all three broke: mean L2 C&W {cw_mean:.4f} "
      f"DeepFool {df_mean:.4f} FGSM {fgsm_mean:.4f}")
# both C&W and DeepFool look for the nearest boundary point: C&W must be well under FGSM and
# within 10% of DeepFool (on a small ReLU net DeepFool's linearisation is nearly exact)
ratio = cw_mean / df_mean
ordered = cw_mean < fgsm_mean and df_mean < fgsm_mean and ratio < 1.1
checks_ok = float(ordered and margin_diff < 1e-5 and bookkeeping_diff < 1e-4
                  and cw_ok.float().mean() >= df_ok.float().mean() - 0.05)
print(f"FINAL test_acc={test_acc:.4f} cw_success={cw_ok.float().mean().item():.4f} "
      f"df_success={df_ok.float().mean().item():.4f} cw_l2={cw_mean:.4f} df_l2={df_mean:.4f} "
      f"fgsm_l2={fgsm_mean:.4f} cw_over_df={ratio:.4f} checks_ok={checks_ok:.0f}")
