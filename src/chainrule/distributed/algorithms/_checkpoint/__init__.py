"""torch.distributed.algorithms._checkpoint: the activation-checkpoint and offload wrappers."""
