"""MediaPipe-style camera pipelines in Python: packets with timestamps, nodes in threads, bounded
queues with a policy per edge, a flow limiter, per-node statistics, Chrome traces, graphs in YAML.

    from edgekit.pipeline import build, Overrides
    summary = build("apps/face/graph.yaml", Overrides(source="samples/face.avi", sinks=["out.avi"])).run()
    print(summary.format())
"""
from .config import Overrides, build, load_config
from .graph import Edge, Pipeline, PipelineError
from .node import Node, Retry, SourceNode, get, node_types, register
from .packet import EMPTY, EOS, Packet

__all__ = ["Pipeline", "PipelineError", "Edge", "Node", "SourceNode", "Retry", "register", "get", "node_types",
           "Packet", "EMPTY", "EOS", "build", "load_config", "Overrides"]
