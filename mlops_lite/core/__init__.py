"""The pure core: digests and cache keys, records and their encoding. No I/O, no other layer."""

__all__: list[str] = []
