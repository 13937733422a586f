"""The composed link prediction model, its configuration and the graph schema it is built for."""
from __future__ import annotations

from mmgraph.models.config import ModelConfig
from mmgraph.models.link_predictor import LinkPredictor
from mmgraph.models.schema import EdgeType, GraphSchema

__all__ = ["ModelConfig", "GraphSchema", "LinkPredictor", "EdgeType"]
