"""mmgraph.data"""
