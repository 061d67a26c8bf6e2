"""The text family: scoring items, bucket features, pooled latents."""
