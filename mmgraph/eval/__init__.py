"""mmgraph.eval"""
