"""mmgraph.train: the training loop, its configuration, runs as files, pretraining.

`mmgraph` makes this package callable: `mmgraph.train(graph, ...)` is `mmgraph.api.train`.
"""
