"""The pytorch.org "Parametrizations Tutorial" (intermediate/parametrizations.html) as written, then the
built-in parametrizations in training. The tutorial: ``Symmetric`` and ``Skew`` modules registered by
``parametrize.register_parametrization``, the ``ParametrizedLinear`` repr, ``layer.parametrizations.weight``
and its ``.original``, a ``NoisyParametrization`` counting recomputations outside and inside
``parametrize.cached()``, chained ``Skew`` + ``CayleyMap`` (``torch.linalg.solve``) and ``Skew`` +
``MatrixExponential`` (``torch.matrix_exp``) for orthogonal and SPD weights (``torch.linalg.eigvalsh``),
``right_inverse`` so that ``layer.weight = X`` initialises through the parametrization,
``remove_parametrizations`` with ``leave_parametrized=True`` and ``False``. Then
``torch.nn.utils.parametrizations.orthogonal`` on the recurrent matrix of a small RNN-like model
(``Q.T @ Q`` checked against the identity while training), ``parametrizations.spectral_norm`` (its
``parametrizations.weight.original``, the largest singular value after training) and
``parametrizations.weight_norm`` (``original0``/``original1``), ``parametrize.is_parametrized`` and
the ``state_dict`` keys before and after ``remove_parametrizations``. Random tensors are reported by
shape and by checks, never printed, so the printed lines do not depend on the seed.
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.utils.parametrize as parametrize
from torch.nn.utils import parametrizations


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


class Skew(nn.Module):
    def forward(self, X):
        A = X.triu(1)
        return A - A.transpose(-1, -2)

    def right_inverse(self, A):
        # We assume that A is skew-symmetric
        # We take the upper-triangular elements, as these are those used in the forward
        return A.triu(1)


class NoisyParametrization(nn.Module):
    calls = 0

    def forward(self, X):
        NoisyParametrization.calls += 1
        print("Computing the Parametrization")
        return X


class CayleyMap(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.register_buffer("Id", torch.eye(n))

    def forward(self, X):
        # Assume X skew-symmetric
        # (I + X)(I - X)^{-1}
        return torch.linalg.solve(self.Id - X, self.Id + X)

    def right_inverse(self, A):
        # Assume A orthogonal
        # (A - I)(A + I)^{-1}
        return torch.linalg.solve(A + self.Id, self.Id - A)


class MatrixExponential(nn.Module):
    def forward(self, X):
        return torch.matrix_exp(X)


def tutorial():
    layer = nn.Linear(3, 3)
    parametrize.register_parametrization(layer, "weight", Symmetric())
    A = layer.weight
    assert torch.allclose(A, A.T)  # A is symmetric
    print("symmetric:", torch.allclose(A, A.T), A.grad_fn.name())

    cnn = nn.Conv2d(in_channels=5, out_channels=8, kernel_size=3)
    parametrize.register_parametrization(cnn, "weight", Skew())
    print("skew conv:", tuple(cnn.weight.shape), torch.allclose(cnn.weight[0, 1], -cnn.weight[0, 1].T))

    layer = nn.Linear(3, 3)
    print(f"Unparametrized:\n{layer}")
    parametrize.register_parametrization(layer, "weight", Symmetric())
    print(f"\nParametrized:\n{layer}")
    parametrized_weight = layer.parametrizations.weight
    for p in parametrized_weight:
        print(p)
    original = layer.parametrizations.weight.original
    print("original:", type(original).__name__, tuple(original.shape), original.requires_grad)
    print(torch.dist(layer.weight, original.triu() + original.triu(1).T).item() == 0.0)

    layer = nn.Linear(4, 4)
    parametrize.register_parametrization(layer, "weight", NoisyParametrization())
    print("Here, layer.weight is recomputed every time we call it")
    foo = layer.weight + layer.weight.T
    bar = layer.weight.sum()
    with parametrize.cached():
        print("Here, it is computed just the first time layer.weight is called")
        foo = layer.weight + layer.weight.T
        bar = layer.weight.sum()
    print("calls:", NoisyParametrization.calls, tuple(foo.shape), tuple(bar.shape))

    layer = nn.Linear(3, 3)
    parametrize.register_parametrization(layer, "weight", Skew())
    parametrize.register_parametrization(layer, "weight", CayleyMap(3))
    X = layer.weight
    print("cayley orthogonal:", (torch.dist(X.T @ X, torch.eye(3)) < 1e-5).item())

    layer_orthogonal = nn.Linear(3, 3)
    parametrize.register_parametrization(layer_orthogonal, "weight", Skew())
    parametrize.register_parametrization(layer_orthogonal, "weight", MatrixExponential())
    X = layer_orthogonal.weight
    print("matrix_exp orthogonal:", (torch.dist(X.T @ X, torch.eye(3)) < 1e-5).item())

    layer_spd = nn.Linear(3, 3)
    parametrize.register_parametrization(layer_spd, "weight", Symmetric())
    parametrize.register_parametrization(layer_spd, "weight", MatrixExponential())
    X = layer_spd.weight
    print("spd:", (torch.dist(X, X.T) < 1e-5).item(), (torch.linalg.eigvalsh(X) > 0.).all())

    layer = nn.Linear(3, 3)
    parametrize.register_parametrization(layer, "weight", Skew())
    X = torch.rand(3, 3)
    X = X - X.T                             # X is now skew-symmetric
    layer.weight = X                        # Initialize layer.weight to be X
    print("right_inverse skew:", (torch.dist(layer.weight, X) < 1e-6).item())

    layer_orthogonal = nn.Linear(3, 3)
    parametrize.register_parametrization(layer_orthogonal, "weight", Skew())
    parametrize.register_parametrization(layer_orthogonal, "weight", CayleyMap(3))
    # Sample an orthogonal matrix with positive determinant
    X = torch.empty(3, 3)
    nn.init.orthogonal_(X)
    if X.det() < 0.:
        X[0].neg_()
    layer_orthogonal.weight = X
    print("right_inverse cayley:", (torch.dist(layer_orthogonal.weight, X) < 1e-4).item())

    layer = nn.Linear(3, 3)
    print("Before:")
    print(layer)
    parametrize.register_parametrization(layer, "weight", Skew())
    print("\nParametrized:")
    print(layer)
    skew = layer.weight.detach().clone()
    parametrize.remove_parametrizations(layer, "weight")
    print("\nAfter. Weight has skew-symmetric values but it is unconstrained:")
    print(layer)
    print(type(layer.weight).__name__, torch.equal(layer.weight, skew))

    layer = nn.Linear(3, 3)
    parametrize.register_parametrization(layer, "weight", Skew())
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    print("\nAfter. Same as Before:")
    print(layer, (layer.weight.triu(1) != 0).any().item() and (layer.weight.tril(-1) != 0).any().item())


class OrthogonalRNN(nn.Module):
    """h_t = tanh(W h_{t-1} + U x_t) with W kept orthogonal, read out at the last step."""

    def __init__(self, input_size, hidden_size, num_classes):
        super().__init__()
        self.recurrent = parametrizations.orthogonal(nn.Linear(hidden_size, hidden_size, bias=False))
        self.input = nn.Linear(input_size, hidden_size)
        self.readout = parametrizations.weight_norm(nn.Linear(hidden_size, num_classes))

    def forward(self, x):
        h = x.new_zeros(x.size(0), self.recurrent.weight.size(0))
        for t in range(x.size(1)):
            h = torch.tanh(self.recurrent(h) + self.input(x[:, t]))
        return self.readout(h)


def make_sequences(n, length, rng):
    """Label: the sign of the first feature summed over the ``length`` steps."""
    x = rng.randn(n, length, 3).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    seed = int(os.environ.get("PROGRAM_SEED", "0"))
    torch.manual_seed(seed)
    rng = np.random.RandomState(0)

    tutorial()

    model = OrthogonalRNN(3, 12, 2)
    print("\nis_parametrized:", parametrize.is_parametrized(model.recurrent),
          parametrize.is_parametrized(model.recurrent, "weight"), parametrize.is_parametrized(model.input),
          parametrize.is_parametrized(model.readout, "bias"))
    print("state_dict keys:", list(model.state_dict().keys()))
    weight_norm = model.readout.parametrizations.weight
    print("weight_norm original0", tuple(weight_norm.original0.shape), "original1", tuple(weight_norm.original1.shape))

    critic = nn.Sequential(parametrizations.spectral_norm(nn.Linear(12, 16)), nn.LeakyReLU(0.2),
                           parametrizations.spectral_norm(nn.Linear(16, 1)))
    print("spectral_norm original", tuple(critic[0].parametrizations.weight.original.shape),
          "buffers", sorted(name for name, _ in critic[0].named_buffers()))

    x_train, y_train = make_sequences(256, 10, rng)
    x_val, y_val = make_sequences(128, 10, rng)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(critic.parameters()), lr=2e-2)
    eye = torch.eye(12)
    worst = 0.0
    for epoch in range(1, 9):
        model.train()
        perm = torch.randperm(len(x_train))
        for start in range(0, len(x_train), 16):
            idx = perm[start:start + 16]
            logits = model(x_train[idx])
            loss = nn.functional.cross_entropy(logits, y_train[idx])
            # a spectrally normalised critic on the hidden readout, trained to a smooth target
            with torch.no_grad():
                h = torch.tanh(model.input(x_train[idx, 0]))
            critic_loss = (critic(h).squeeze(1) - y_train[idx].float()).pow(2).mean()
            optimizer.zero_grad()
            (loss + critic_loss).backward()
            optimizer.step()
            Q = model.recurrent.weight
            worst = max(worst, torch.dist(Q.T @ Q, eye).item())
        model.eval()
        with torch.no_grad(), parametrize.cached():
            val_logits = model(x_val)
            val_loss = nn.functional.cross_entropy(val_logits, y_val).item()
            acc = (val_logits.argmax(1) == y_val).float().mean().item()
        print(f"epoch {epoch}: loss {loss.item():.4f} val {val_loss:.4f} acc {acc:.3f} "
              f"orthogonal {worst < 1e-4}")

    critic.eval()
    sigma = torch.linalg.matrix_norm(critic[0].weight.detach(), ord=2).item()
    print(f"spectral norm of the critic's first weight: {sigma:.3f}")

    recurrent = model.recurrent
    Q = recurrent.weight.detach().clone()
    parametrize.remove_parametrizations(recurrent, "weight", leave_parametrized=True)
    parametrize.remove_parametrizations(model.readout, "weight")
    print("after removal:", parametrize.is_parametrized(model), type(recurrent).__name__,
          torch.allclose(recurrent.weight, Q), list(model.state_dict().keys()))
    print(f"FINAL val_loss={val_loss:.4f} acc={acc:.4f} sigma={sigma:.4f}")


if __name__ == "__main__":
    main()
