"""Check an `mmgraph export --format graphstorm` folder with GraphStorm's own gconstruct code.

Not a timed workload (run.py does not run it): a compatibility check for the export. GraphStorm
needs dgl, which does not import beside torch 2.13, so this loads GraphStorm's pure-Python wheel
with dgl (and the optional autogluon, sentence_transformers, h5py) stubbed, then runs the parsing
half of `graphstorm.gconstruct.construct_graph` on DIR: `verify_confs`, `process_node_data` and
`process_edge_data` (node id maps, feature arrays, link-prediction train/val/test masks from the
custom split files). Building the DGL graph itself is left out.

    pip download graphstorm==0.5.1 --no-deps -d /tmp/gs && unzip -q /tmp/gs/*.whl -d /tmp/gs/x
    python benchmarks/graphstorm_gconstruct_check.py /tmp/gs/x EXPORT_DIR
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import json
import os
import sys
import types
from unittest import mock

STUBBED = ("dgl", "h5py", "autogluon", "sentence_transformers")


class _Stubs(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Any `import dgl...` (and the other STUBBED packages) gets a MagicMock module."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in STUBBED:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = mock.MagicMock(name=spec.name)
        module.__path__, module.__spec__, module.__version__ = [], spec, "2.1.0"
        if spec.name == "dgl.distributed.constants":
            module.DEFAULT_NTYPE, module.DEFAULT_ETYPE = "_N", ("_N", "_E", "_N")
        return module

    def exec_module(self, module):
        pass


def load_construct_graph(wheel_dir: str):
    sys.meta_path.insert(0, _Stubs())
    real_version = importlib.metadata.version
    importlib.metadata.version = lambda name: "2.1.0" if name == "dgl" else real_version(name)
    package = types.ModuleType("graphstorm")  # skip graphstorm/__init__.py (training code)
    package.__path__ = [os.path.join(wheel_dir, "graphstorm")]
    sys.modules["graphstorm"] = package
    from graphstorm.gconstruct import construct_graph

    return construct_graph


def main(wheel_dir: str, export_dir: str) -> None:
    cg = load_construct_graph(wheel_dir)
    os.chdir(export_dir)  # the config's paths are relative to the export folder
    with open("config.json", encoding="utf-8") as f:
        conf = json.load(f)
    cg.verify_confs(conf)
    merger = cg.ExtMemArrayMerger(None, 64)
    id_maps, node_data, _, _ = cg.process_node_data(conf["nodes"], merger, True, None, num_processes=1)
    edges, edge_data, _, _, _ = cg.process_edge_data(conf["edges"], id_maps, merger, None, num_processes=1,
                                                     skip_nonexist_edges=True)
    for t, data in node_data.items():
        print(f"node {t}: {len(id_maps[t])} ids;",
              ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in data.items()))
    for et, (src, _) in edges.items():
        masks = ", ".join(f"{k} {int(v.sum())}" for k, v in edge_data.get(et, {}).items())
        print(f"edge {et}: {len(src)} edges; {masks or 'no labels'}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
