"""Node embeddings to Parquet: one row per node with its type, id and embedding."""
from __future__ import annotations

from pathlib import Path

from mmgraph.errors import InputError
from mmgraph.utils import atomic_write_bytes


def write_embeddings(run, path: str | Path, *, force: bool = False) -> int:
    """Write `node_type` (string), `id` (string), `embedding` (list<float32>) rows; returns the count."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.exists() and not force:
        raise InputError(f"{path}: file exists; pass --force to replace it")
    z = run.embeddings()
    types, ids, vectors = [], [], []
    for node_type, ids_of_type in run.extra["ids"].items():
        emb = z[node_type].float().numpy()
        types += [node_type] * len(ids_of_type)
        ids += list(ids_of_type)
        vectors += list(emb)
    dim = vectors[0].shape[0] if vectors else 0
    table = pa.table({
        "node_type": pa.array(types, pa.string()),
        "id": pa.array(ids, pa.string()),
        "embedding": pa.array([v.tolist() for v in vectors], pa.list_(pa.float32(), dim) if dim else pa.list_(pa.float32())),
    })
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(path, buf.getvalue())
    return len(ids)
