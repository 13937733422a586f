"""The README's Python example: build the demo graph, train, evaluate, predict, save, load, pretrain."""
import mmgraph

graph = mmgraph.build_graph("datasets/digits-av/manifest.yaml")  # encodes every WAV, PNG and word
run = mmgraph.train(graph, relations=["says", "shows"], epochs=100, lr=0.003,
                    model={"channels": 64, "embedding_norm": 3.0})  # or config=TrainConfig | dict | YAML path
print(run.evaluate("test")["overall"])                   # the dict `mmgraph evaluate --json` prints
print(run.predict(node=("clip", "0_george_0"), relation="says", k=3))  # the dict `predict --json` prints
print(run.predict(items="datasets/digits-av/clips.csv", type="clip", relation="says", k=3)["results"][:2])
z = run.embeddings()                                     # {node type: [num_nodes, 64]}, rows in id order
run.save("my-run"); run = mmgraph.load_run("my-run")     # the files `mmgraph train -o my-run` writes
pre = mmgraph.pretrain(graph, epochs=50)                 # self-supervised: no relation label used
run = mmgraph.train(graph, init=pre, relations=["says", "shows"], epochs=100)
