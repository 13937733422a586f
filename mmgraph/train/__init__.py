"""mmgraph.train"""
