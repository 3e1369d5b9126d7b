"""Spec files: TOML text -> a validated, expanded list of layers (never evaluated as code).

The format is docs/spec.md (rendered by :mod:`ntksym.spec.reference`).  Parsing is ``tomllib``
(data only); every value is then checked against the keys its layer kind declares.  Each mistake
raises one :class:`SpecError` that names the file, line, layer and key, lists the valid choices,
and suggests the closest valid name.

>>> spec = loads_spec('''
... name = "mlp"
... input = { shape = [4] }
... [defaults]
... weight_var = 2.0
... [[layer]]
... kind = "dense"
... activation = "relu"
... repeat = 2
... [[layer]]
... kind = "dense"
... ''')
>>> [layer.kind for layer in spec.layers]
['dense', 'relu', 'dense', 'relu', 'dense']
>>> spec.layers[0].params["weight_var"]
2.0
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ntksym.errors import SpecError
from ntksym.ir.hyper import Learnable, check_hyper_name
from ntksym.layers import LAYER_KINDS
from ntksym.layers.base import REQUIRED
from ntksym.spec.blocks import expand_instance, parse_blocks
from ntksym.spec.common import MAX_LAYERS, NAME_RE, LayerSpec, suggest

TOP_KEYS = ("name", "description", "input", "defaults", "block", "layer")
COMMON_KEYS = ("kind", "id", "inputs", "repeat")
@dataclass
class Spec:
    name: str
    description: str
    input_shape: tuple
    layers: list
    path: str | None = None
    text: str = ""
    defaults: dict = field(default_factory=dict)
    #: (line, key, hyperparameter name) of every { value = ..., learn = true } table in the text
    hyper_sites: list = field(default_factory=list)

    @property
    def hash(self) -> str:
        """sha256 of the normalized content (comments and key order do not matter); a
        learnable constant counts with its name and value."""
        return self._digest(values=True)

    @property
    def structure_hash(self) -> str:
        """sha256 of the content without the values of learnable constants: what the derived
        program and its generated code depend on (equal to :attr:`hash` without them)."""
        return self._digest(values=False)

    def _digest(self, values):
        def norm(v):
            if isinstance(v, Learnable):
                return {"learn": v.name, "value": float(v)} if values else {"learn": v.name}
            return v

        doc = {"name": self.name, "input": list(self.input_shape),
               "layers": [[l.kind, {k: norm(v) for k, v in l.params.items()}, l.id, l.inputs]
                          for l in self.layers]}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    @property
    def hyperparameters(self) -> dict:
        """{name: current value} of the learnable constants, in the order they first appear
        in the spec's text (``[defaults]`` where it stands, then the layers).

        >>> s = loads_spec('name = "m"\\ninput = { shape = [2] }\\n[defaults]\\n'
        ...                'weight_var = { value = 2.0, learn = true }\\n'
        ...                '[[layer]]\\nkind = "dense"\\n'
        ...                'bias_var = { value = 0.1, learn = true }\\n')
        >>> s.hyperparameters
        {'weight_var': 2.0, 'bias_var_dense_0': 0.1}
        """
        first = {}
        for line, _, name in self.hyper_sites:
            first[name] = min(first.get(name, line or 0), line or 0)
        found = {}
        for l in self.layers:
            for v in l.params.values():
                if isinstance(v, Learnable):
                    found.setdefault(v.name, (first.get(v.name, 0), float(v)))
        order = sorted(found, key=lambda n: found[n][0])
        return {n: found[n][1] for n in order}

    def with_hyperparameters(self, values: dict) -> "Spec":
        """The same spec with learnable constants set to ``values`` ({name: value}; names not
        given keep their value).  They stay learnable.

        >>> s = loads_spec('name = "m"\\ninput = { shape = [2] }\\n[[layer]]\\nkind = "dense"\\n'
        ...                'weight_var = { value = 2.0, learn = true, name = "w" }\\n')
        >>> s.with_hyperparameters({"w": 0.5}).hyperparameters
        {'w': 0.5}
        """
        from dataclasses import replace
        unknown = set(values) - set(self.hyperparameters)
        if unknown:
            raise KeyError(f"no learnable constant named {sorted(unknown)[0]!r}; "
                           f"learnable: {', '.join(self.hyperparameters) or 'none'}")

        def setv(v):
            if isinstance(v, Learnable) and v.name in values:
                return v.with_value(float(values[v.name]))
            return v

        layers = [replace(l, params={k: setv(v) for k, v in l.params.items()})
                  for l in self.layers]
        return replace(self, layers=layers)


class _Lines:
    """Line numbers of keys in the TOML text: (section, table index, key) -> line."""

    HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"-]+)\s*\]\]?")
    KEY = re.compile(r"^\s*([A-Za-z0-9_\"-]+)\s*=")

    def __init__(self, text):
        self.keys, self.tables = {}, {}
        section, index = "", 0
        counts = {}
        for no, raw in enumerate(text.splitlines(), 1):
            m = self.HEADER.match(raw)
            if m:
                section = m.group(2).strip('"')
                counts[section] = counts.get(section, 0) + 1
                index = counts[section]
                self.tables.setdefault((section, index), no)
                continue
            m = self.KEY.match(raw)
            if m:
                self.keys.setdefault((section, index, m.group(1).strip('"')), no)

    def key(self, section, index, key):
        return self.keys.get((section, index, key), self.tables.get((section, index)))

    def layer(self, index):
        return self.tables.get(("layer", index))


def _type_error(key, expected, value):
    return f"expected {expected}, got {type(value).__name__} {value!r}"


def check_value(key, spec_key, value):
    """Type-check one value against a Key; return (value, error message or None)."""
    t = spec_key.type
    isnum = isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "number":
        if not isnum or not math.isfinite(value):
            return value, _type_error(key, "a finite number", value)
        value = value if isinstance(value, Learnable) else float(value)
    elif t == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return value, _type_error(key, "an integer", value)
    elif t == "bool":
        if not isinstance(value, bool):
            return value, _type_error(key, "true or false", value)
    elif t == "string":
        if not isinstance(value, str):
            return value, _type_error(key, "a string", value)
    elif t == "table":
        if not isinstance(value, dict):
            return value, _type_error(key, "a table { ... }", value)
    elif t == "ints":      # an int or a list of ints (filter sizes, strides)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not (isinstance(value, list) and value
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            return value, _type_error(key, "an integer or a list of integers", value)
    elif t == "bool|list":
        if not (isinstance(value, bool) or
                (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            return value, _type_error(key, "true, false or a list of parameter names", value)
    elif t == "numbers":   # a list of finite numbers (per-input scales)
        if not (isinstance(value, list) and value and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in value)):
            return value, _type_error(key, "a list of finite numbers", value)
        value = [float(v) for v in value]
    elif t == "strings":
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value, _type_error(key, "a list of strings", value)
    if spec_key.check is not None:
        msg = spec_key.check(value)
        if msg:
            return value, f"{msg}, got {value!r}"
    return value, None


LEARN_KEYS = ("value", "learn", "name")


def learnable_value(key, value, default_name):
    """A ``{ value = 2.0, learn = true [, name = "w"] }`` table of a numeric key as a
    :class:`~ntksym.ir.hyper.Learnable` (``learn = false``: the plain value); any other value
    unchanged.  Returns (value, error message or None).

    >>> learnable_value("weight_var", {"value": 2, "learn": True}, "weight_var_dense_0")
    (2.0, None)
    >>> learnable_value("weight_var", {"value": 0.0, "learn": True}, "w")[1]
    'a learnable constant needs value > 0 (its hyperparameter is log(value)), got 0.0'
    """
    if not isinstance(value, dict):
        return value, None
    for k in value:
        if k not in LEARN_KEYS:
            return value, (f"unknown key {k!r} in a learnable constant; valid: "
                           f"{', '.join(LEARN_KEYS)} "
                           f"(e.g. {key} = {{ value = 2.0, learn = true }})")
    v, learn = value.get("value"), value.get("learn", False)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return value, (f"a learnable constant needs a finite number value, e.g. "
                       f"{key} = {{ value = 2.0, learn = true }}")
    if not isinstance(learn, bool):
        return value, f"learn must be true or false, got {learn!r}"
    if not learn:
        return float(v), None
    if v <= 0:
        return value, ("a learnable constant needs value > 0 (its hyperparameter is "
                       f"log(value)), got {v!r}")
    name = value.get("name", default_name)
    err = check_hyper_name(name)
    if err:
        return value, f"{err}, got name = {name!r}"
    return Learnable(float(v), name), None


def loads_spec(text: str, path: str | None = None) -> Spec:
    """Parse and validate spec text; ``path`` is only used in messages."""
    fname = str(path) if path is not None else "<spec>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise SpecError(f"malformed TOML: {e}", file=fname,
                        line=int(m.group(1)) if m else None) from None
    lines = _Lines(text)

    def fail(msg, line=None, layer=None, key=None, hint=None):
        raise SpecError(msg, file=fname, line=line, layer=layer, key=key, hint=hint)

    for k in doc:
        if k not in TOP_KEYS:
            fail(f"unknown top-level key; valid keys: {', '.join(TOP_KEYS)}",
                 lines.key("", 0, k), key=k, hint=suggest(k, TOP_KEYS))
    name = doc.get("name")
    if name is None:
        fail("the spec needs a name, e.g. name = \"my-mlp\"", 1, key="name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        fail("name must be letters, digits, '-' or '_'", lines.key("", 0, "name"), key="name")
    description = doc.get("description", "")
    if not isinstance(description, str):
        fail("description must be a string", lines.key("", 0, "description"), key="description")

    input_shape = _parse_input(doc.get("input"), lines, fail)
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        fail("[defaults] must be a table", lines.key("", 0, "defaults"), key="defaults")
    known = {k for cls in LAYER_KINDS.values() for k in cls.keys}
    for k in defaults:
        if k not in known or k in ("width",):
            fail("unknown default; defaults apply keys of layer kinds, e.g. "
                 "weight_var, bias_var, parameterization, normalize",
                 lines.key("defaults", 1, k), key=k, hint=suggest(k, sorted(known)))
    hyper_sites = []
    defaults = dict(defaults)
    numeric = {k for cls in LAYER_KINDS.values() for k, key in cls.keys.items()
               if key.type == "number"}
    for k, v in defaults.items():
        if k not in numeric:              # a table-valued default (a mask) is not a constant
            continue
        v, err = learnable_value(k, v, k)
        if err:
            fail(err, lines.key("defaults", 1, k), key=k)
        if isinstance(v, Learnable):
            hyper_sites.append((lines.key("defaults", 1, k), k, v.name))
        defaults[k] = v

    tables = doc.get("layer")
    if tables is None:
        fail("the spec has no layers; add [[layer]] tables", 1, key="layer")
    if not isinstance(tables, list):
        fail("'layer' must be an array of tables [[layer]]", lines.key("", 0, "layer"), key="layer")

    def expand(idx, table, position, section="layer", label=None):
        return _expand_layer(idx, table, defaults, lines, fail, position, section, label,
                             hyper_sites)

    blocks = parse_blocks(doc.get("block"), lines, fail, expand)
    layers, instances = [], {}
    for idx, table in enumerate(tables, 1):
        if isinstance(table, dict) and "block" in table:
            layers.extend(expand_instance(idx, table, blocks, layers, instances, lines, fail))
        else:
            layers.extend(expand(idx, table, len(layers)))
        if len(layers) > MAX_LAYERS:
            fail(f"more than {MAX_LAYERS} layers after repeat", lines.layer(idx), layer=idx,
                 key="repeat")
    if not layers:
        fail("the spec has no layers; add [[layer]] tables", 1, key="layer")
    _check_ids(layers, fail)
    _check_hyperparameters(layers, fail)
    return Spec(name=name, description=description, input_shape=input_shape, layers=layers,
                path=str(path) if path is not None else None, text=text, defaults=defaults,
                hyper_sites=hyper_sites)


def _parse_input(inp, lines, fail):
    line = lines.key("", 0, "input") or lines.key("input", 1, "shape")
    if inp is None:
        fail("the spec needs an input shape, e.g. input = { shape = [784] }", 1, key="input")
    if not isinstance(inp, dict):
        fail("input must be a table like { shape = [784] }", line, key="input")
    for k in inp:
        if k != "shape":
            fail("unknown key in input; valid: shape", line, key=f"input.{k}",
                 hint=suggest(k, ["shape"]))
    shape = inp.get("shape")
    ok = (isinstance(shape, list) and 1 <= len(shape) <= 3 and
          all(isinstance(s, int) and not isinstance(s, bool) for s in shape))
    if not ok:
        fail("input.shape must be [d], [H, W, C] or [T, d] (integers)", line, key="input.shape")
    for i, s in enumerate(shape):
        if s < 1 and not (s == -1 and len(shape) == 2 and i == 0):
            fail("input.shape entries must be >= 1 (T = -1 marks variable-length sequences)",
                 line, key="input.shape")
    return tuple(shape)


def _expand_layer(idx, table, defaults, lines, fail, position, section="layer", label=None,
                  hyper_sites=None):
    """The LayerSpecs of one [[layer]] table (``section`` "block.layer": of a block's table),
    after ``repeat`` and the activation shorthand; ``label`` names it in messages.  A learnable
    constant of the table is named ``<key>_<id of its first layer>`` (its repeats share it);
    ``hyper_sites`` collects (line, key, name) of each learnable table."""
    from ntksym.duals.activations import parse_shorthand

    label = idx if label is None else label

    def line(key=None):
        return lines.key(section, idx, key) if key else lines.tables.get((section, idx))

    if not isinstance(table, dict):
        fail("each layer must be a table", line(), layer=label)
    kind = table.get("kind")
    if kind is None:
        fail("missing 'kind'; valid kinds: " + ", ".join(sorted(LAYER_KINDS)), line(), layer=label,
             key="kind")
    if not isinstance(kind, str) or kind not in LAYER_KINDS:
        fail("unknown kind " + repr(kind) + "; valid kinds: " + ", ".join(sorted(LAYER_KINDS)),
             line("kind"), layer=label, key="kind", hint=suggest(kind, LAYER_KINDS))
    cls = LAYER_KINDS[kind]
    allowed = set(cls.keys) | set(COMMON_KEYS) | ({"activation"} if cls.has_weights else set())
    for k in table:
        if k not in allowed:
            fail(f"unknown key for a '{kind}' layer; valid keys: {', '.join(sorted(allowed))}",
                 line(k), layer=label, key=k, hint=suggest(k, allowed))

    uid, rep = table.get("id"), table.get("repeat", 1)
    first_id = (f"{kind}_{position}" if not isinstance(uid, str) else
                uid if rep == 1 else f"{uid}_1")
    params = _validate_params(cls, table, defaults, lambda k: line(k), label, fail,
                              own=lambda key: f"{key}_{first_id}".replace("-", "_"),
                              hyper_sites=hyper_sites)
    repeat = table.get("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        fail("repeat must be an integer >= 1", line("repeat"), layer=label, key="repeat")
    user_id = table.get("id")
    if user_id is not None and (not isinstance(user_id, str) or not NAME_RE.match(user_id)):
        fail("id must be letters, digits, '-' or '_'", line("id"), layer=label, key="id")
    inputs = table.get("inputs")
    if inputs is not None and not (isinstance(inputs, list) and inputs and
                                   all(isinstance(v, str) for v in inputs)):
        fail("inputs must be a list of layer ids", line("inputs"), layer=label, key="inputs")

    act = None
    # layers that own their activation (rnn: phi acts inside the recurrence) take it as a key
    if "activation" in table and not getattr(cls, "owns_activation", False):
        text = table["activation"]
        if not isinstance(text, str):
            fail("activation must be a string like \"relu\" or \"leaky_relu(0.1)\"",
                 line("activation"), layer=label, key="activation")
        try:
            akind, aparams = parse_shorthand(text)
        except (ValueError, SpecError) as e:
            fail(str(e), line("activation"), layer=label, key="activation")
        if akind not in LAYER_KINDS:
            fail(f"unknown activation {akind!r}", line("activation"), layer=label, key="activation",
                 hint=suggest(akind, LAYER_KINDS))
        acls = LAYER_KINDS[akind]
        act = (akind, _validate_params(acls, aparams, {}, lambda k: line("activation"), label, fail,
                                       prefix="activation."))

    # count before expanding: repeat = 10**9 must not build a billion layers to refuse them
    total = position + repeat * (2 if act is not None else 1)
    if total > MAX_LAYERS:
        fail(f"more than {MAX_LAYERS} layers after repeat: the layers up to this one make "
             f"{total}" + (f" (repeat = {repeat})" if repeat > 1 else "") +
             f"; keep the total at most {MAX_LAYERS}", line("repeat"), layer=label, key="repeat")
    out = []
    for r in range(repeat):
        n = position + len(out)
        lid = user_id if user_id and repeat == 1 else (
            f"{user_id}_{r + 1}" if user_id else f"{kind}_{n}")
        out.append(LayerSpec(kind, dict(params), lid, inputs if r == 0 else None, line(), label))
        if act is not None:
            n = position + len(out)
            out.append(LayerSpec(act[0], dict(act[1]), f"{act[0]}_{n}", None, line("activation"),
                                 label))
    return out


def _validate_params(cls, table, defaults, line_of, idx, fail, prefix="", own=None,
                     hyper_sites=None):
    params = {}
    for key, spec_key in cls.keys.items():
        if key in table:
            value, where = table[key], line_of(key)
            if isinstance(value, dict) and spec_key.type == "number":
                value, err = learnable_value(key, value, own(key) if own else key)
                if err:
                    fail(err, where, layer=idx, key=prefix + key)
                if isinstance(value, Learnable) and hyper_sites is not None:
                    hyper_sites.append((where, key, value.name))
        elif key in defaults and key != "width":
            value, where = defaults[key], line_of(None)
        elif spec_key.default is REQUIRED:
            fail(f"required parameter of '{cls.kind}' is missing", line_of(None), layer=idx,
                 key=prefix + key)
            continue
        else:
            params[key] = spec_key.default
            continue
        value, err = check_value(key, spec_key, value)
        if err:
            fail(err, where, layer=idx, key=prefix + key)
        params[key] = value
    if isinstance(params.get("trainable"), list):
        names = getattr(cls, "parameter_names", ())
        for v in params["trainable"]:
            if v not in names:
                fail(f"unknown parameter {v!r} in trainable; valid: {', '.join(names)}",
                     line_of("trainable"), layer=idx, key=prefix + "trainable",
                     hint=suggest(v, names))

    def error(msg, key=None):
        # "mask.keep": the line of the inline table "mask = { ... }"
        fail(msg, line_of(key.split(".")[0] if key else None), layer=idx,
             key=(prefix + key) if key else None)

    cls.validate(params, error)
    return params


def _check_hyperparameters(layers, fail):
    """One value per hyperparameter name (a name shared by layers ties them)."""
    seen = {}
    for l in layers:
        for k, v in l.params.items():
            if not isinstance(v, Learnable):
                continue
            if v.name in seen and float(seen[v.name]) != float(v):
                fail(f"the learnable constant {v.name!r} is given two values "
                     f"({float(seen[v.name])!r} and {float(v)!r}); a shared name ties the "
                     "layers to one value", l.line, layer=l.source_index, key=k)
            seen.setdefault(v.name, v)


def _check_ids(layers, fail):
    seen = {}
    for l in layers:
        if l.id in seen or l.id == "input":
            fail(f"duplicate layer id {l.id!r}", l.line, layer=l.source_index, key="id")
        seen[l.id] = l
    for l in layers:
        if l.inputs and len(set(l.inputs)) < len(l.inputs):
            fail("inputs names a layer twice: " + ", ".join(l.inputs), l.line,
                 layer=l.source_index, key="inputs")
        for ref in l.inputs or ():
            if ref not in seen and ref != "input":
                fail(f"inputs names {ref!r}, which is no layer id; ids: " +
                     ", ".join(["input"] + list(seen)), l.line, layer=l.source_index,
                     key="inputs", hint=suggest(ref, seen))


def load_spec_file(path) -> Spec:
    """Read and validate a spec file; a missing or unreadable file is a SpecError."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise SpecError("no such spec file", file=str(path)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise SpecError(f"cannot read spec file: {e}", file=str(path)) from None
    return loads_spec(text, path=str(path))
