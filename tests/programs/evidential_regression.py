"""Deep Evidential Regression (Amini et al. 2020) and evidential classification (Sensoy et al. 2018),
as their PyTorch ports write them.

Regression: the cubic toy of the paper (``y = x ** 3 + noise``, trained on [-4, 4], tested out to
[-6, 6]) with a ``DenseNormalGamma`` head: one ``nn.Linear`` to four outputs cut by
``torch.split(x, self.n_tasks, dim=1)``, ``F.softplus`` evidence and ``F.softplus(...) + 1.`` for
alpha, returned by ``torch.stack([gamma, nu, alpha, beta])``. The loss is the port's ``NIG_NLL``
(``0.5 * torch.log(np.pi / v)``, ``torch.lgamma(alpha) - torch.lgamma(alpha + 0.5)``) plus the
evidence regulariser ``|y - gamma| * (2 * v + alpha)``; the NLL is checked against the Student-t it
marginalises to (``torch.distributions.StudentT(2 * alpha, gamma, scale).log_prob``). Aleatoric
``beta / (alpha - 1)`` and epistemic ``beta / (v * (alpha - 1))`` uncertainties are compared inside and
outside the training range (the epistemic one is printed, not scored: how it grows outside the
data depends on the seed in so short a run).

Classification (dougbrion/pytorch-classification-uncertainty): ReLU evidence, ``alpha = evidence + 1``,
``one_hot_embedding`` by ``torch.eye(num_classes)[labels]``, the digamma loss
``torch.sum(y * (torch.digamma(S) - torch.digamma(alpha)), dim=1, keepdim=True)`` plus the KL to the
uniform Dirichlet written with ``torch.lgamma``/``torch.digamma`` (checked against
``torch.distributions.kl_divergence(Dirichlet(alpha), Dirichlet(ones))``), weighted by the annealing
coefficient ``torch.min(torch.tensor(1.0, dtype=torch.float32), torch.tensor(epoch / annealing_step,
dtype=torch.float32))``; Adam with weight decay and ``StepLR``; the uncertainty ``u = K / S`` on
test points and on far-away points, and the mean evidence of right and wrong predictions.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)


# ------------------------------------------------------------------ evidential regression
class DenseNormalGamma(nn.Module):
    def __init__(self, n_input, n_out_tasks=1):
        super().__init__()
        self.n_in = n_input
        self.n_out = 4 * n_out_tasks
        self.n_tasks = n_out_tasks
        self.l1 = nn.Linear(self.n_in, self.n_out)

    def forward(self, x):
        x = self.l1(x)
        if len(x.shape) == 1:
            gamma, lognu, logalpha, logbeta = torch.split(x, self.n_tasks, dim=0)
        else:
            gamma, lognu, logalpha, logbeta = torch.split(x, self.n_tasks, dim=1)

        nu = F.softplus(lognu)
        alpha = F.softplus(logalpha) + 1.
        beta = F.softplus(logbeta)

        return torch.stack([gamma, nu, alpha, beta]).to(x.device)


def NIG_NLL(y, gamma, v, alpha, beta, reduce=True):
    twoBlambda = 2 * beta * (1 + v)

    nll = 0.5 * torch.log(np.pi / v) \
        - alpha * torch.log(twoBlambda) \
        + (alpha + 0.5) * torch.log(v * (y - gamma) ** 2 + twoBlambda) \
        + torch.lgamma(alpha) \
        - torch.lgamma(alpha + 0.5)

    return torch.mean(nll) if reduce else nll


def NIG_Reg(y, gamma, v, alpha, beta, reduce=True):
    error = torch.abs(y - gamma)
    evi = 2 * v + alpha
    reg = error * evi
    return torch.mean(reg) if reduce else reg


def EvidentialRegression(y_true, evidential_output, coeff=1.0):
    gamma, v, alpha, beta = evidential_output
    loss_nll = NIG_NLL(y_true, gamma, v, alpha, beta)
    loss_reg = NIG_Reg(y_true, gamma, v, alpha, beta)
    return loss_nll + coeff * loss_reg


def my_data(x_min, x_max, n, train=True):
    x = np.linspace(x_min, x_max, n)
    x = np.expand_dims(x, -1).astype(np.float32)
    sigma = 3 * np.ones_like(x) if train else np.zeros_like(x)
    y = x ** 3 + np.random.normal(0, sigma).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


x_train, y_train = my_data(-4, 4, 1000)
x_test, y_test = my_data(-6, 6, 600, train=False)
Y_SCALE = 30.0  # the cubic reaches 64 on [-4, 4]: the network sees y / 30
print(f"regression data: train {tuple(x_train.shape)} test {tuple(x_test.shape)}")

regressor = nn.Sequential(
    nn.Linear(1, 64), nn.ReLU(),
    nn.Linear(64, 64), nn.ReLU(),
    DenseNormalGamma(64, 1),
)
out = regressor(x_train[:5])
print(f"head output {tuple(out.shape)}, min alpha {out[2].min().item() > 1.0}, nu and beta positive "
      f"{bool((out[1] > 0).all() and (out[3] > 0).all())}")

# the NIG marginal likelihood is a Student-t with 2 alpha degrees of freedom
gamma, v, alpha, beta = out.detach()
y_probe = y_train[:5] / Y_SCALE
student = torch.distributions.StudentT(2 * alpha, gamma, torch.sqrt(beta * (1 + v) / (v * alpha)))
print("NIG NLL equals the Student-t NLL:",
      torch.allclose(NIG_NLL(y_probe, gamma, v, alpha, beta, reduce=False), -student.log_prob(y_probe), atol=1e-5))

optimizer = torch.optim.Adam(regressor.parameters(), lr=5e-3)
COEFF, EPOCHS, BATCH = 1e-2, 60, 100
for epoch in range(EPOCHS):
    regressor.train()
    running = 0.0
    for idx in torch.randperm(len(x_train)).split(BATCH):
        optimizer.zero_grad()
        loss = EvidentialRegression(y_train[idx] / Y_SCALE, regressor(x_train[idx]), coeff=COEFF)
        loss.backward()
        optimizer.step()
        running += loss.item() * len(idx)
    if epoch % 20 == 19:
        print(f"regression epoch {epoch + 1} loss {running / len(x_train):.4f}")

regressor.eval()
with torch.no_grad():
    gamma, v, alpha, beta = regressor(x_test)
    mu = gamma * Y_SCALE
    aleatoric = beta / (alpha - 1) * Y_SCALE ** 2
    epistemic = beta / (v * (alpha - 1)) * Y_SCALE ** 2
    inside = x_test.abs() <= 4
    outside = x_test.abs() > 4.5
    rmse_in = torch.sqrt(F.mse_loss(mu[inside], y_test[inside])).item()
    rmse_out = torch.sqrt(F.mse_loss(mu[outside], y_test[outside])).item()
    aleatoric_in = aleatoric[inside].sqrt().mean().item()
    epistemic_in = epistemic[inside].mean().item()
    epistemic_out = epistemic[outside].mean().item()
print(f"RMSE inside {rmse_in:.3f} outside {rmse_out:.3f}; aleatoric std inside {aleatoric_in:.3f} (true 3)")
print(f"epistemic variance inside {epistemic_in:.3f} outside {epistemic_out:.3f}")


# ------------------------------------------------------------------ evidential classification
def relu_evidence(y):
    return F.relu(y)


def one_hot_embedding(labels, num_classes=10):
    # Convert to One Hot Encoding
    y = torch.eye(num_classes)
    return y[labels]


def kl_divergence(alpha, num_classes, device=None):
    ones = torch.ones([1, num_classes], dtype=torch.float32, device=device)
    sum_alpha = torch.sum(alpha, dim=1, keepdim=True)
    first_term = (
        torch.lgamma(sum_alpha)
        - torch.lgamma(alpha).sum(dim=1, keepdim=True)
        + torch.lgamma(ones).sum(dim=1, keepdim=True)
        - torch.lgamma(ones.sum(dim=1, keepdim=True))
    )
    second_term = (
        (alpha - ones)
        .mul(torch.digamma(alpha) - torch.digamma(sum_alpha))
        .sum(dim=1, keepdim=True)
    )
    kl = first_term + second_term
    return kl


def edl_loss(func, y, alpha, epoch_num, num_classes, annealing_step, device=None):
    y = y.to(device)
    alpha = alpha.to(device)
    S = torch.sum(alpha, dim=1, keepdim=True)

    A = torch.sum(y * (func(S) - func(alpha)), dim=1, keepdim=True)

    annealing_coef = torch.min(
        torch.tensor(1.0, dtype=torch.float32),
        torch.tensor(epoch_num / annealing_step, dtype=torch.float32),
    )

    kl_alpha = (alpha - 1) * (1 - y) + 1
    kl_div = annealing_coef * kl_divergence(kl_alpha, num_classes, device=device)
    return A + kl_div


def edl_digamma_loss(output, target, epoch_num, num_classes, annealing_step, device=None):
    evidence = relu_evidence(output)
    alpha = evidence + 1
    loss = torch.mean(
        edl_loss(torch.digamma, target, alpha, epoch_num, num_classes, annealing_step, device)
    )
    return loss


NUM_CLASSES = 3
CENTRES = np.array([[0.0, 2.0], [-1.8, -1.0], [1.8, -1.0]], dtype=np.float32)


def blobs(n):
    labels = np.random.randint(0, NUM_CLASSES, size=n)
    points = CENTRES[labels] + np.random.normal(0, 0.7, size=(n, 2)).astype(np.float32)
    return torch.from_numpy(points), torch.from_numpy(labels)


train_points, train_labels = blobs(600)
test_points, test_labels = blobs(300)
far_points = torch.from_numpy(np.random.normal(0, 1, size=(300, 2)).astype(np.float32))
far_points = 8.0 * far_points / far_points.norm(dim=1, keepdim=True)

alpha_probe = torch.rand(6, NUM_CLASSES) * 4 + 0.5
reference = torch.distributions.kl_divergence(
    torch.distributions.Dirichlet(alpha_probe), torch.distributions.Dirichlet(torch.ones_like(alpha_probe)))
print("KL to the uniform Dirichlet matches torch.distributions:",
      torch.allclose(kl_divergence(alpha_probe, NUM_CLASSES).squeeze(1), reference, atol=1e-5))
print("Dirichlet mean is alpha / S:", torch.allclose(torch.distributions.Dirichlet(alpha_probe).mean,
                                                      alpha_probe / alpha_probe.sum(dim=1, keepdim=True)))

classifier = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES))
optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3, weight_decay=0.005)
exp_lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=20, gamma=0.5)
ANNEALING_STEP, CLS_EPOCHS = 10, 40
for epoch in range(CLS_EPOCHS):
    classifier.train()
    running_loss, running_corrects = 0.0, 0
    for idx in torch.randperm(len(train_points)).split(50):
        inputs, labels = train_points[idx], train_labels[idx]
        optimizer.zero_grad()
        y = one_hot_embedding(labels, NUM_CLASSES)
        outputs = classifier(inputs)
        _, preds = torch.max(outputs, 1)
        loss = edl_digamma_loss(outputs, y.float(), epoch, NUM_CLASSES, ANNEALING_STEP)
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * inputs.size(0)
        running_corrects += torch.sum(preds == labels.data)
    exp_lr_scheduler.step()
    if epoch % 10 == 9:
        epoch_acc = running_corrects.double() / len(train_points)
        print(f"classifier epoch {epoch + 1} loss {running_loss / len(train_points):.4f} acc {epoch_acc.item():.4f}")

classifier.eval()
with torch.no_grad():
    outputs = classifier(test_points)
    _, preds = torch.max(outputs, 1)
    match = torch.reshape(torch.eq(preds, test_labels).float(), (-1, 1))
    acc = torch.mean(match)
    evidence = relu_evidence(outputs)
    alpha = evidence + 1
    u = NUM_CLASSES / torch.sum(alpha, dim=1, keepdim=True)
    total_evidence = torch.sum(evidence, 1, keepdim=True)
    mean_evidence_succ = torch.sum(total_evidence * match) / torch.sum(match + 1e-20)
    mean_evidence_fail = torch.sum(total_evidence * (1 - match)) / (torch.sum(torch.abs(1 - match)) + 1e-20)
    far_alpha = relu_evidence(classifier(far_points)) + 1
    u_far = NUM_CLASSES / torch.sum(far_alpha, dim=1, keepdim=True)
    probs = alpha / torch.sum(alpha, dim=1, keepdim=True)
print(f"test acc {acc.item():.4f} mean u {u.mean().item():.3f} far-away u {u_far.mean().item():.3f}")
print(f"mean evidence right {mean_evidence_succ.item():.2f} wrong {mean_evidence_fail.item():.2f}; "
      f"probabilities sum to 1 {torch.allclose(probs.sum(1), torch.ones(len(probs)))}")
print(f"FINAL rmse_in={rmse_in:.4f} aleatoric_in={aleatoric_in:.4f} "
      f"cls_acc={acc.item():.4f} u_test={u.mean().item():.4f}")
