"""Results saved as JSON and loaded back exactly: ``fit.save("fit.json")``, ``scaling.load("fit.json")``.

A saved file is one JSON object::

    {"schema": "scaling.saved/v1", "type": "scaling.forms.result:FitResult", "scaling_version": "...",
     "result": {... what the command's --json prints, for reading ...},
     "state": {... every field of the object, for loading ...}}

``load`` checks ``schema`` (a file of another format version is refused with one line) and rebuilds the
object from ``state``, which encodes the frozen dataclasses of ``scaling`` field by field: floats as JSON
numbers (Python writes the shortest text that reads back to the same double, so every value is exact),
NaN and infinities, tuples, numpy arrays with their dtype, pandas Series and DataFrames with their index,
dtypes and ``attrs``, and dicts whose keys are not strings (a bootstrap's levels). A frame that two fields
share (a fit's ``data`` and its dataset's ``frame``) is written once and shared again after loading. After
loading, the object's own ``to_dict()`` must name the schema the file recorded in ``result`` (e.g.
``scaling.fit/v1``): a result saved by a version whose JSON differs is refused, not misread.

Only dataclasses defined in ``scaling`` or ``runs_db`` are rebuilt (a file cannot make ``load`` build any
other type). A field marked ``metadata={"saved": False}`` is not written (a statsmodels results object, a
user's function) and gets its default on loading. Writing is atomic: a failed save leaves no file.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaling.errors import ScalingError

FORMAT = "scaling.saved/v1"
PACKAGES = ("scaling.", "runs_db.")
TRANSIENT = {"saved": False}  # dataclass field metadata: not written, default on loading
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class SaveError(ScalingError):
    """A result holds something that cannot be written (named by its path in the object)."""


# -- encoding ---------------------------------------------------------------------------------------


class _Encoder:
    def __init__(self) -> None:
        self.frames: dict[int, int] = {}  # id(frame) -> its number in the file
        self.keep: list[Any] = []  # the frames numbered (ids stay valid while they live)

    def value(self, v: Any, where: str) -> Any:
        if v is None or isinstance(v, bool | str):
            return v
        if isinstance(v, np.generic):
            return {"$np": [v.dtype.str, self.value(v.item(), where)]}
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else {"$float": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
        if isinstance(v, list):
            return [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, tuple):
            return {"$tuple": [self.value(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, dict):
            return self.mapping(v, where)
        return self.structured(v, where)

    def structured(self, v: Any, where: str) -> Any:
        if isinstance(v, np.ndarray):
            return {"$ndarray": self.array(v, where)}
        if isinstance(v, pd.DataFrame):
            return self.frame(v, where)
        if isinstance(v, pd.Series):
            return {"$series": {"values": self.column(v.array, where), "index": self.index(v.index, where),
                                "name": self.value(v.name, where)}}
        if isinstance(v, pd.Index):
            return self.index(v, where)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return self.dataclass(v, where)
        raise SaveError(f"cannot save {where}: a {type(v).__module__}.{type(v).__qualname__} is not data "
                        "(results hold numbers, text, arrays, tables and scaling's own result objects)")

    def mapping(self, d: dict[Any, Any], where: str) -> Any:
        if all(isinstance(k, str) and not k.startswith("$") for k in d):
            return {k: self.value(x, f"{where}[{k!r}]") for k, x in d.items()}
        return {"$dict": [[self.value(k, where), self.value(x, f"{where}[{k!r}]")] for k, x in d.items()]}

    def array(self, a: np.ndarray, where: str) -> dict[str, Any]:
        if a.dtype.kind in "mM":  # datetimes and durations: their integer ticks, the unit in the dtype
            return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.view("i8").ravel().tolist()}
        if a.dtype.kind not in "biufUO":
            raise SaveError(f"cannot save {where}: an array of dtype {a.dtype}")
        return {"dtype": "object" if a.dtype.kind == "O" else a.dtype.str, "shape": list(a.shape),
                "data": [self.value(x, where) for x in a.ravel().tolist()]}

    def column(self, values: Any, where: str) -> dict[str, Any]:
        """The values of a Series, Index or column: a numpy array, a categorical, or another pandas array
        (strings, nullable integers; missing values as null)."""
        dtype = values.dtype
        if isinstance(dtype, np.dtype):
            return self.array(np.asarray(values), where)
        if isinstance(dtype, pd.CategoricalDtype):
            return {"categories": self.column(dtype.categories.array, where), "ordered": bool(dtype.ordered),
                    "codes": np.asarray(values.codes).tolist()}
        data = [None if x is None or (pd.api.types.is_scalar(x) and pd.isna(x)) else self.value(x, where)
                for x in np.asarray(values, dtype=object).tolist()]
        return {"extension": str(dtype), "data": data}

    def index(self, index: pd.Index, where: str) -> Any:
        if isinstance(index, pd.RangeIndex):
            return {"$range": [index.start, index.stop, index.step, self.value(index.name, where)]}
        if isinstance(index, pd.MultiIndex):
            raise SaveError(f"cannot save {where}: a table with a MultiIndex")
        return {"$index": {"values": self.column(index.array, where), "name": self.value(index.name, where)}}

    def frame(self, df: pd.DataFrame, where: str) -> Any:
        if id(df) in self.frames:
            return {"$ref": self.frames[id(df)]}
        self.frames[id(df)] = number = len(self.keep)
        self.keep.append(df)
        columns = [{"name": self.value(name, where), "values": self.column(df.iloc[:, i].array, f"{where}[{name!r}]")}
                   for i, name in enumerate(df.columns)]
        return {"$frame": {"id": number, "index": self.index(df.index, where), "columns": columns,
                           "columns_name": self.value(df.columns.name, where),
                           "attrs": self.value(dict(df.attrs), f"{where}.attrs")}}

    def dataclass(self, obj: Any, where: str) -> Any:
        cls = type(obj)
        if not cls.__module__.startswith(PACKAGES):
            raise SaveError(f"cannot save {where}: {cls.__module__}.{cls.__qualname__} is not a result of scaling")
        fields = {f.name: self.value(getattr(obj, f.name), f"{where}.{f.name}")
                  for f in dataclasses.fields(obj) if f.init and f.metadata.get("saved", True)}
        return {"$dataclass": {"type": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}}


def encode(obj: Any) -> Any:
    """``obj`` (a result) as JSON-ready state (see the module docstring); ``SaveError`` naming what is not data."""
    return _Encoder().value(obj, type(obj).__name__)


# -- decoding ---------------------------------------------------------------------------------------


class _Decoder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.frames: dict[int, pd.DataFrame] = {}

    def fail(self, what: str) -> ScalingError:
        return ScalingError(f"{self.path}: {what}")

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) != 1 or not next(iter(v)).startswith("$"):
            return {k: self.value(x) for k, x in v.items()}
        tag, body = next(iter(v.items()))
        handler = getattr(self, "_" + tag[1:], None)
        if handler is None:
            raise self.fail(f"unknown tag {tag!r} in the saved state (written by a newer version?)")
        return handler(body)

    def _float(self, body: str) -> float:
        return _FLOATS[body]

    def _np(self, body: list[Any]) -> Any:
        return np.dtype(body[0]).type(self.value(body[1]))

    def _tuple(self, body: list[Any]) -> tuple[Any, ...]:
        return tuple(self.value(x) for x in body)

    def _dict(self, body: list[list[Any]]) -> dict[Any, Any]:
        return {self.value(k): self.value(x) for k, x in body}

    def _ndarray(self, body: dict[str, Any]) -> np.ndarray:
        return self.array(body)

    def array(self, body: dict[str, Any]) -> np.ndarray:
        dtype, shape = body["dtype"], tuple(body["shape"])
        if dtype != "object" and np.dtype(dtype).kind in "mM":
            return np.asarray(body["data"], dtype="i8").view(dtype).reshape(shape)
        data = [self.value(x) for x in body["data"]]
        if dtype == "object":
            out = np.empty(len(data), dtype=object)
            out[:] = data
            return out.reshape(shape)
        return np.asarray(data, dtype=dtype).reshape(shape)

    def column(self, body: dict[str, Any]) -> Any:
        if "categories" in body:
            return pd.Categorical.from_codes(body["codes"], self.column(body["categories"]), ordered=body["ordered"])
        if "extension" in body:
            return pd.array([self.value(x) for x in body["data"]], dtype=body["extension"])
        return self.array(body)

    def _range(self, body: list[Any]) -> pd.RangeIndex:
        return pd.RangeIndex(body[0], body[1], body[2], name=self.value(body[3]))

    def _index(self, body: dict[str, Any]) -> pd.Index:
        return pd.Index(self.column(body["values"]), name=self.value(body["name"]))

    def _series(self, body: dict[str, Any]) -> pd.Series:
        return pd.Series(self.column(body["values"]), index=self.value(body["index"]), name=self.value(body["name"]))

    def _ref(self, number: int) -> pd.DataFrame:
        if number not in self.frames:
            raise self.fail(f"the saved state refers to table {number} before it is written")
        return self.frames[number]

    def _frame(self, body: dict[str, Any]) -> pd.DataFrame:
        df = pd.DataFrame({i: self.column(c["values"]) for i, c in enumerate(body["columns"])},
                          index=self.value(body["index"]))
        df.columns = pd.Index([self.value(c["name"]) for c in body["columns"]], name=self.value(body["columns_name"]))
        df.attrs = self.value(body["attrs"])
        self.frames[body["id"]] = df
        return df

    def _dataclass(self, body: dict[str, Any]) -> Any:
        module, _, qualname = str(body["type"]).partition(":")
        if not module.startswith(PACKAGES):
            raise self.fail(f"refusing to build {module}.{qualname}: only scaling's result types are loaded")
        try:
            cls: Any = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
        except (ImportError, AttributeError):
            raise self.fail(f"no type {module}.{qualname} in this version of scaling") from None
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise self.fail(f"{module}.{qualname} is not a result type")
        fields = body["fields"]
        known = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(fields) - set(known))
        missing = sorted(n for n, f in known.items() if n not in fields and f.metadata.get("saved", True)
                         and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        if unknown or missing:
            what = f"fields {', '.join(unknown)} unknown" if unknown else f"fields {', '.join(missing)} missing"
            raise self.fail(f"{qualname} saved by another version of scaling ({what})")
        return cls(**{k: self.value(v) for k, v in fields.items()})


def decode(state: Any, path: str = "saved state") -> Any:
    """The object ``encode`` wrote (``path`` names the file in errors)."""
    return _Decoder(path).value(state)


# -- files ------------------------------------------------------------------------------------------


def dumps(obj: Any) -> str:
    """The saved form of ``obj`` as JSON text."""
    from scaling import __version__  # lazy: the package's version, read once installed (import cycle otherwise)

    to_dict = getattr(obj, "to_dict", None)
    doc = {"schema": FORMAT, "type": f"{type(obj).__module__}:{type(obj).__qualname__}",
           "scaling_version": __version__, "result": to_dict() if callable(to_dict) else None,
           "state": encode(obj)}
    return json.dumps(doc, allow_nan=False)


def save(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` to ``path`` as JSON, atomically (nothing is left behind when it fails)."""
    out = Path(path)
    text = dumps(obj)  # everything that can fail before a file exists
    if not out.parent.exists():
        raise ScalingError(f"{out}: directory {out.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except OSError as exc:
        if "tmp" in locals():
            Path(tmp).unlink(missing_ok=True)
        raise ScalingError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return out


def load(path: str | Path) -> Any:
    """The result saved at ``path`` (``save``), checked against this version's schemas."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScalingError(f"{where}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScalingError(f"{where}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(doc, dict) or "schema" not in doc:
        raise ScalingError(f"{where}: not a saved result (no schema; write one with result.save(path))")
    if doc["schema"] != FORMAT:
        raise ScalingError(f"{where}: saved with schema {doc['schema']!r}; this version of scaling reads {FORMAT!r}")
    if not isinstance(doc.get("state"), dict):
        raise ScalingError(f"{where}: a saved result without its state")
    try:
        obj = decode(doc["state"], where)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ScalingError(f"{where}: damaged saved state ({type(exc).__name__}: {exc})") from None
    recorded = (doc.get("result") or {}).get("schema") if isinstance(doc.get("result"), dict) else None
    to_dict = getattr(obj, "to_dict", None)
    if recorded is not None and callable(to_dict):
        now = to_dict().get("schema")
        if now != recorded:
            raise ScalingError(f"{where}: a {recorded} result; this version of scaling writes {now}")
    return obj


class Saveable:
    """``save(path)`` for a result object: JSON that ``scaling.load`` reads back exactly."""

    def save(self, path: str | Path) -> Path:
        """Write this result (every field: its data, options, model, bootstrap) to ``path`` as JSON that
        ``scaling.load(path)`` reads back exactly (``scaling.core.saved``); atomic."""
        return save(self, path)
