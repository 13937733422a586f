"""mmgraph.encoders"""
