"""Parameters stored by node-type, edge-type or feature name: the one place that escapes names.

Node types, relations and features are user strings (a manifest allows "user.profile"), while
torch module and parameter names may not contain a dot, may not be empty and may not shadow an
attribute ("type", "keys", "training"). `param_key` turns a name, or a tuple of names such as an
edge type, into a valid and *injective* key: "%", "." and "|" are percent-escaped, the parts of
a tuple are joined with "|", and a key that would shadow an attribute gets the prefix "%%"
(which escaping never produces). PyG's ModuleDict has a similar convention ("." -> "#",
tuples as "<a___b___c>"), but it is not injective: "a#b" and "a.b" share a key.

`NamedModuleDict` / `NamedParameterDict` hold modules / parameters under those keys and are
indexed by the names themselves. Parameters stacked over names (one row per relation, for
batched math) declare their row names with `name_rows`, so `parameter_names` can say, for
every state-dict entry, which name (or names, row by row) it belongs to.

Example::

    lins = NamedModuleDict({("user.profile", "rates", "item"): nn.Linear(4, 4)})
    lins[("user.profile", "rates", "item")]        # the Linear
    list(lins.state_dict())                       # ['user%2Eprofile|rates|item.weight', ...]
"""
from __future__ import annotations

from typing import Any, Iterator, Literal, Mapping, Sequence, Union

from torch import nn

Name = Union[str, tuple[str, ...]]
# How an older mmgraph stored the same entries: by position in a list, or under PyG's keys.
Legacy = Literal["position", "pyg"] | None

_ESCAPES = {"%": "%25", ".": "%2E", "|": "%7C"}
_RESERVED_PREFIX = "%%"


def _escape(part: str) -> str:
    if not isinstance(part, str):
        raise TypeError(f"a parameter name must be a str, got {part!r}")
    return "".join(_ESCAPES.get(c, c) for c in part)


def param_key(name: Name) -> str:
    """The module/parameter key of a name or a tuple of names (injective, never a torch error)."""
    if isinstance(name, tuple):
        if len(name) < 2:
            raise ValueError(f"a tuple name needs at least two parts, got {name!r}")
        key = "|".join(_escape(p) for p in name)
    else:
        key = _escape(name)
    if key in _reserved() or key.startswith("_") or key == "":
        key = _RESERVED_PREFIX + key
    return key


def _pyg_key(name: Name) -> str:
    """The key torch_geometric's ModuleDict / ParameterDict used (older mmgraph state dicts)."""
    from torch_geometric.nn.module_dict import ModuleDict

    return ModuleDict.to_internal_key(name)


class _Named(nn.Module):
    """Shared part: entries by name in insertion order, and reading state dicts of older mmgraph.

    Subclasses say where torch keeps their entries (`_modules` or `_parameters`) and how one is
    registered.
    """

    _table = ""

    def __init__(self, entries: Mapping[Name, Any] | None, legacy: Legacy):
        super().__init__()
        self._names: dict[str, Name] = {}
        self._legacy = legacy
        for name, value in (entries or {}).items():
            self[name] = value

    def _key(self, name: Name) -> str:
        return param_key(tuple(name) if isinstance(name, list) else name)

    def _register(self, key: str, value: Any) -> None:
        raise NotImplementedError

    def __setitem__(self, name: Name, value: Any) -> None:
        key = self._key(name)
        self._register(key, value)
        self._names[key] = tuple(name) if isinstance(name, list) else name

    def __getitem__(self, name: Name) -> Any:
        key = self._key(name)
        if key not in self._names:
            raise KeyError(name)
        return getattr(self, self._table)[key]

    def __contains__(self, name: object) -> bool:
        try:
            return self._key(name) in self._names  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[Name]:
        return iter(self._names.values())

    def keys(self) -> list[Name]:
        return list(self._names.values())

    def values(self) -> list[Any]:
        table = getattr(self, self._table)
        return [table[k] for k in self._names]

    def items(self) -> list[tuple[Name, Any]]:
        table = getattr(self, self._table)
        return [(name, table[k]) for k, name in self._names.items()]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._rename_legacy(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _rename_legacy(self, state_dict: dict, prefix: str) -> None:
        """Rename entries saved under the older keys (positions or PyG's) to the name keys."""
        if self._legacy is None:
            return
        names = list(self._names.items())
        old = {(str(i) if self._legacy == "position" else _pyg_key(name)): key
               for i, (key, name) in enumerate(names)}
        old = {o: new for o, new in old.items() if o != new}
        segments = {k[len(prefix):].split(".", 1)[0] for k in state_dict if k.startswith(prefix)}
        if not old or segments & set(old.values()) or not segments & set(old):
            return  # nothing differs, already new keys, or no old ones
        for k in [k for k in state_dict if k.startswith(prefix)]:
            segment, dot, rest = k[len(prefix):].partition(".")
            if segment in old:
                state_dict[prefix + old[segment] + dot + rest] = state_dict.pop(k)


class NamedModuleDict(_Named):
    """Modules keyed by a name or a tuple of names (an edge type, a (type, feature) pair)."""

    _table = "_modules"

    def __init__(self, modules: Mapping[Name, nn.Module] | None = None, *, legacy: Legacy = None):
        super().__init__(modules, legacy)

    def _register(self, key: str, value: nn.Module) -> None:
        self.add_module(key, value)


class NamedParameterDict(_Named):
    """Parameters keyed by a name or a tuple of names."""

    _table = "_parameters"

    def __init__(self, parameters: Mapping[Name, nn.Parameter] | None = None, *, legacy: Legacy = None):
        super().__init__(parameters, legacy)

    def _register(self, key: str, value: nn.Parameter) -> None:
        self.register_parameter(key, value)

    def name_rows(self, name: Name, rows: Sequence[Name]) -> None:
        """Declare that row i of the parameter of `name` belongs to `rows[i]`."""
        name_rows(self, self._key(name), rows, label=name)


def _reserved() -> frozenset[str]:
    global _RESERVED
    if _RESERVED is None:
        _RESERVED = frozenset(dir(NamedModuleDict)) | frozenset(dir(NamedParameterDict)) | {"training"}
    return _RESERVED


_RESERVED: frozenset[str] | None = None


def name_rows(module: nn.Module, attribute: str, names: Sequence[Name], *, label: Name | None = None) -> None:
    """Declare that row i of parameter `module.<attribute>` belongs to `names[i]`."""
    rows = module.__dict__.setdefault("_row_names", {})
    rows[attribute] = (attribute if label is None else label, list(names))


Entry = tuple  # (module path, name or parameter, the rest: parameter path or row name)


def parameter_names(model: nn.Module) -> dict[str, Entry | list[Entry]]:
    """What every state-dict entry of `model` belongs to, by name.

    An entry of a named dict maps to `(path, name, rest)` (e.g. `("gnn.convs.0.lin_rel",
    ("a", "to", "b"), "weight")`); a parameter stacked over names to one `(path, parameter,
    row name)` per row; any other entry to `("", None, key)`.
    """
    out: dict[str, Entry | list[Entry]] = {}
    for path, module in model.named_modules():
        at = f"{path}." if path else ""
        if isinstance(module, NamedModuleDict):
            for key, name in module._names.items():
                for rest in module._modules[key].state_dict():
                    out[f"{at}{key}.{rest}"] = (path, name, rest)
        elif isinstance(module, NamedParameterDict):
            for key, name in module._names.items():
                out[f"{at}{key}"] = (path, name, "")
        for attribute, (label, names) in module.__dict__.get("_row_names", {}).items():
            if getattr(module, attribute, None) is not None:
                out[f"{at}{attribute}"] = [(path, label, name) for name in names]
    return {key: out.get(key, ("", None, key)) for key in model.state_dict()}
