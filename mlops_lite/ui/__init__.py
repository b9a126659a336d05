"""The dashboard: ``mlops-lite ui`` serves it, ``mlops-lite report`` writes it as static HTML.

Pages are rendered on the server from the ``Client`` (no JavaScript build, nothing
fetched from the network); every text from a run is escaped. A face, like the
CLI: it holds presentation only, and its queries live in ``mlops_lite.client``.
"""

__all__: list[str] = []
