"""torch.distributed._composable: the composable-API path ``fully_shard`` is also imported from."""
