"""torch.distributed.algorithms.model_averaging: periodic averaging of parameters over ranks
(local SGD): ``averagers.PeriodicModelAverager`` and ``utils.average_parameters``."""

from . import averagers, utils

__all__ = ["averagers", "utils"]
