"""Heterogeneous message-passing layers."""
