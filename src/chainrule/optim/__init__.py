"""Optimizers and learning-rate schedulers (torch.optim)."""

from . import lr_scheduler, swa_utils
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .asgd import ASGD
from .lbfgs import LBFGS
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD
from .sparse_adam import SparseAdam

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "LBFGS",
           "Rprop", "ASGD", "Adafactor", "SparseAdam", "Muon",
           "lr_scheduler", "swa_utils"]

# torch defines these two in private modules (_adafactor, _muon) and names them as torch.optim's
Adafactor.__module__ = Muon.__module__ = __name__

# importing the classes bound their modules here; torch.optim deletes those names the same way
del adadelta, adafactor, adagrad, adam, adamax, adamw, asgd, lbfgs, muon, nadam  # noqa: F821
del optimizer, radam, rmsprop, rprop, sgd, sparse_adam  # noqa: F821
