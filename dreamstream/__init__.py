"""dreamstream: episode datasets on any fsspec store, collectors, a streaming loader and a DreamerV2 agent."""

__version__ = "0.1.0"
