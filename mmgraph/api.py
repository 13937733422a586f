"""The Python front door: `mmgraph.train`, `mmgraph.pretrain`, `mmgraph.load_run` and the `Run` they return.

It sits at the top of the pipeline beside `mmgraph.cli` (nothing below imports it); the CLI
commands are thin layers over the same calls. A run trained here lives in memory: no folder
is written until `run.save(RUN_DIR)`, which writes what `mmgraph train` writes.

Example::

    import mmgraph
    graph = mmgraph.build_graph("manifest.yaml")
    run = mmgraph.train(graph, relations=["says"], epochs=100, seed=0)
    run.evaluate("test")["overall"]["mrr"]
    run.predict(node=("clip", "0_george_0"), relation="says", k=3)
    run.save("run"); run = mmgraph.load_run("run")
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import HeteroData

from mmgraph.errors import InputError
from mmgraph.models import ModelConfig
from mmgraph.train import run as run_files
from mmgraph.train.config import TrainConfig, read_config_yaml
from mmgraph.train.pretrain_config import PretrainConfig
from mmgraph.utils import resolve_device

__all__ = ["Run", "train", "pretrain", "load_run", "train_config", "pretrain_config"]

ConfigLike = TrainConfig | PretrainConfig | dict | str | Path | None
Node = tuple[str, str] | str


class Run(run_files.Run):
    """A trained run: `evaluate`, `predict`, `embeddings`, `score`, `explain`, `save`.

    What `mmgraph.train` / `mmgraph.pretrain` / `mmgraph.load_run` return. Fields (from
    `mmgraph.train.run.Run`): `model` (a LinkPredictor on the CPU), `extra` (ids, splits,
    settings), `metrics` ({"valid", "test"} at the end of training), `log_rows`, `run_dir`.

    Example::

        run = mmgraph.train(graph, relations=["says"], epochs=50)
        run.metrics["test"]["overall"]["hits@1"]
        run.embeddings()["clip"].shape         # [num_clips, channels], rows in id order
    """

    @classmethod
    def of(cls, base: run_files.Run) -> "Run":
        """The same run with the API's methods (no copy of the model or tensors)."""
        return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(run_files.Run)})

    @property
    def config(self) -> TrainConfig | PretrainConfig:
        """The resolved settings the run was trained with."""
        cls = TrainConfig if self.kind == "train" else PretrainConfig
        return cls.from_dict(self.config_dict, source=f"{self.run_dir or 'run'} settings")

    def evaluate(self, split: str = "test", *, graph: HeteroData | str | Path | None = None,
                 device: str | torch.device = "auto") -> dict:
        """Filtered ranking and classification metrics of `split` ("valid" or "test"): the dict
        `mmgraph evaluate --json` prints, {"split", "relations": {"SRC|REL|DST": {...}}, "overall"}.

        `graph`: the graph to evaluate on (a GRAPH_DIR or a HeteroData) when the run does not hold
        or know its own (a run trained in memory, saved and loaded back).
        """
        from mmgraph.eval.evaluate import evaluate_split
        from mmgraph.train.trainer import embed_for_eval

        if split not in ("valid", "test"):
            raise InputError(f"split: expected 'valid' or 'test', got {split!r}")
        prepared = self.prepared(graph)
        dev = resolve_device(device)
        model = self.model.to(dev)
        try:
            z = embed_for_eval(model, prepared, dev)
            return evaluate_split(model, prepared, z, split=split, seed=self.extra["train_config"]["seed"])
        finally:
            self.model.cpu()

    def predict(self, *, relation: str, node: Node | None = None, items: str | Path | None = None,
                type: str | None = None, k: int = 10, device: str | torch.device = "auto") -> dict:
        """Top-k links for a known node, or for brand-new items: the dict `predict --json` prints,
        {"relation": "SRC|REL|DST", "results": [{"source": ID, "top": [{"id", "score"}, ...]}]}.

        `node`: (TYPE, ID) or "TYPE:ID"; its known training links are left out of its top-k.
        `items`: a table of new items (the node type's columns, media paths relative to the
        table) of node type `type`, encoded with the run's own encoders.

        Example::

            run.predict(node=("clip", "0_george_0"), relation="says", k=3)["results"][0]["top"]
        """
        from mmgraph.eval.predict import predict_items, predict_node

        if (node is None) == (items is None):
            raise InputError("predict: give exactly one of node (TYPE, ID; CLI --node TYPE:ID) or items "
                             "(a table; CLI --items TABLE)")
        if items is not None and not type:
            raise InputError("predict: items need their node type (type=TYPE; CLI --type TYPE)")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"predict: k must be an int >= 1, got {k!r}")
        if node is not None:
            return predict_node(self, _node_key(node), relation, k)
        return predict_items(self, items, type, relation, k, device=resolve_device(device))

    def score(self, *, source: tuple[str, str], relation: str, target: tuple[str, str],
              drop_edges: list[tuple[str, str, str]] | tuple = (), device: str | torch.device | None = None
              ) -> float:
        """The model's score of one link (source, relation, target), each end a (TYPE, ID), with the
        training edges in `drop_edges` (("SRC|REL|DST", SRC_ID, DST_ID), ...) removed first."""
        from mmgraph.eval.explain import score_pair   # imported on use: the heavier engine

        return score_pair(self.model, self.prepared(), source, relation, target,
                                  drop_edges=drop_edges, device=device)

    def explain(self, *, source: tuple[str, str], relation: str, target: tuple[str, str] | None = None,
                k: int = 5, device: str | torch.device | None = None) -> dict:
        """Why `source` links to `target` (its top prediction when None): the dict `explain --json` prints."""
        from mmgraph.eval.explain import explain_pair

        return explain_pair(self.model, self.prepared(), source, relation, target, k=k, device=device)


def _node_key(node: Node) -> str:
    """(TYPE, ID) or "TYPE:ID" -> "TYPE:ID" (what `predict_node` reads)."""
    if isinstance(node, str):
        return node
    if isinstance(node, tuple) and len(node) == 2 and all(isinstance(v, str) for v in node):
        return f"{node[0]}:{node[1]}"
    raise InputError(f"node: expected (TYPE, ID) or 'TYPE:ID', got {node!r}")


def _graph(graph: HeteroData | str | Path) -> tuple[HeteroData, Path | None]:
    """The graph and, when given as a GRAPH_DIR, its resolved folder (a saved run records it)."""
    from mmgraph.data.graph_io import load_graph

    if isinstance(graph, HeteroData):
        return graph, None
    if not isinstance(graph, (str, Path)):
        raise InputError(f"graph: expected a HeteroData or a GRAPH_DIR path, got {type(graph).__name__}")
    path = Path(graph)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        raise InputError(f"graph: {path} is a manifest, not a graph; build it first: "
                         f"graph = mmgraph.build_graph({str(path)!r})")
    return load_graph(path), path.resolve()


def _settings(cls, config: ConfigLike, changes: dict[str, Any], what: str):
    """`config` (the class, a dict, a YAML path or None: defaults) with `changes` on top; a
    `model` change is merged into the config's model settings key by key."""
    if config is None:
        base: dict = {}
    elif isinstance(config, cls):
        base = config.to_dict()
    elif isinstance(config, dict):
        base = dict(config)
    elif isinstance(config, (str, Path)):
        base = read_config_yaml(config)
    else:
        raise InputError(f"config: expected a {cls.__name__}, a dict or a YAML path, "
                         f"got {type(config).__name__}")
    model = changes.pop("model", None)
    values = {**base, **{k: v for k, v in changes.items() if v is not None}}
    if model is not None:
        if not isinstance(model, dict):
            raise InputError(f"model: expected a dict of model settings, got {type(model).__name__}")
        old = values.get("model") or {}
        values["model"] = {**(old.to_dict() if isinstance(old, ModelConfig) else old), **model}
    source = str(config) if isinstance(config, (str, Path)) else what
    return cls.from_dict(values, source=source)


def train_config(config: ConfigLike = None, *, relations: list[str] | str | None = None,
                 epochs: int | None = None, seed: int | None = None, model: dict | None = None,
                 **options: Any) -> TrainConfig | dict:
    """The user's training settings: `config` (TrainConfig | dict | YAML path | None) with the given
    options on top, as a mapping that the graph's recipe completes (`mmgraph.train.recipe`); a
    TrainConfig given with no options is returned as it is (an expert's full choice). Unknown
    options raise InputError naming them.

    Example::

        train_config("cfg.yaml", epochs=50, model={"channels": 32})["model"]["channels"]   # 32
    """
    if isinstance(relations, str):
        relations = [relations]
    changes = {"relations": relations, "epochs": epochs, "seed": seed, "model": model, **options}
    if isinstance(config, TrainConfig) and all(v is None for v in changes.values()):
        return config
    checked = _settings(TrainConfig, config, dict(changes), "mmgraph.train() options")  # names and values checked
    given = _settings_dict(config)
    if isinstance(config, TrainConfig):
        return checked.to_dict()
    from mmgraph.train.recipe import merge_settings   # the one key-by-key merge (model keys one by one)

    values = merge_settings(given, {k: v for k, v in changes.items() if v is not None})
    if "relations" in values:
        values["relations"] = list(checked.relations)
    return values


def _settings_dict(config: ConfigLike) -> dict:
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    if isinstance(config, (str, Path)):
        return read_config_yaml(config)
    return config.to_dict()


def pretrain_config(config: ConfigLike = None, *, epochs: int | None = None, seed: int | None = None,
                    model: dict | None = None, **options: Any) -> PretrainConfig:
    """The PretrainConfig of `config` (PretrainConfig | dict | YAML path | None) with options on top."""
    return _settings(PretrainConfig, config, {"epochs": epochs, "seed": seed, "model": model, **options},
                     "mmgraph.pretrain() options")


def train(graph: HeteroData | str | Path, *, config: ConfigLike = None,
          relations: list[str] | str | None = None, epochs: int | None = None, seed: int | None = None,
          model: dict | None = None, init: Run | str | Path | None = None,
          distill_from: Run | str | Path | None = None,
          device: str | torch.device = "auto", **options: Any) -> Run:
    """Train a link predictor on `graph` (a HeteroData of `build_graph`, or a GRAPH_DIR) in memory.

    Settings: `config` (TrainConfig | dict | YAML path; None: the defaults), then `relations`,
    `epochs`, `seed`, `model` (merged into the model settings) and any other TrainConfig field
    as a keyword (`lr=0.003`). `init`: a run (e.g. `mmgraph.pretrain`'s) or RUN_DIR whose matching
    modules start the model; `distill_from`: a run on the same graph whose scores teach this one.
    Returns the Run, its model on the CPU and `run.metrics` = {"valid": ..., "test": ...}.

    Example::

        run = mmgraph.train(graph, relations=["says"], epochs=100, seed=0, model={"channels": 64})
    """
    cfg = train_config(config, relations=relations, epochs=epochs, seed=seed, model=model, **options)
    for name, value in (("init", init), ("distill_from", distill_from)):
        if value is not None and not isinstance(value, (run_files.Run, str, Path)):
            raise InputError(f"{name}: expected a run or a RUN_DIR path, got {type(value).__name__}")
    from mmgraph.eval.evaluate import evaluate_split

    data, graph_dir = _graph(graph)
    run = run_files.train_model(data, cfg, evaluate=evaluate_split, device=resolve_device(device),
                                graph_dir=graph_dir, distill_from=distill_from, init=init)
    return Run.of(run)


def pretrain(graph: HeteroData | str | Path, *, config: ConfigLike = None, epochs: int | None = None,
             seed: int | None = None, model: dict | None = None, device: str | torch.device = "auto",
             **options: Any) -> Run:
    """Self-supervised pretraining on `graph` (no relation label used); `mmgraph.train(graph, init=pre)`
    fine-tunes the result. Settings as in `train`, from PretrainConfig.

    Example::

        pre = mmgraph.pretrain(graph, epochs=50)
        run = mmgraph.train(graph, init=pre, relations=["says"])
    """
    from mmgraph.train.pretrain import pretrain_model

    cfg = pretrain_config(config, epochs=epochs, seed=seed, model=model, **options)
    data, graph_dir = _graph(graph)
    return Run.of(pretrain_model(data, cfg, device=resolve_device(device), graph_dir=graph_dir))


def load_run(run_dir: str | Path, *, graph: HeteroData | str | Path | None = None) -> Run:
    """A RUN_DIR of `mmgraph train` / `pretrain` / `run.save` back, with the same predictions.

    `graph` (a GRAPH_DIR or HeteroData) stands in for the run's own graph: needed by `evaluate`
    and new-item predictions of a run that was trained on a graph given in memory.
    """
    run = Run.of(run_files.load_run(run_dir))
    if graph is not None:
        run.held = run.prepared(_graph(graph)[0])
    return run
