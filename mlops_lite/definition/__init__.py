"""Defining pipelines: ``@step``, ``@pipeline``, tracing a call into a graph, configurations."""
