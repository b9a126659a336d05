"""Defining pipelines: ``@step``, ``@pipeline``, tracing a call into a graph, configurations."""

__all__: list[str] = []
