"""chainrule.distributed.fsdp.fully_sharded_data_parallel: the module torch defines the FSDP
wrapper in; libraries import it from here (accelerate's unwrap_model checks every model against it).
The names are the package's own objects, as in torch."""

from . import BackwardPrefetch, FullyShardedDataParallel, ShardingStrategy, StateDictType

__all__ = ["FullyShardedDataParallel", "ShardingStrategy", "StateDictType", "BackwardPrefetch"]
