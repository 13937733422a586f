"""mmgraph.cli"""
