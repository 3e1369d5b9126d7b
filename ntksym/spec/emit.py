"""Spec -> TOML text: the inverse of :func:`ntksym.spec.parse.loads_spec`.

:func:`spec_to_toml` writes a validated :class:`~ntksym.spec.parse.Spec` back as spec text
that parses to the same layers, ids, inputs and parameters (so the same ``Spec.hash``, graph,
derivation and kernels).  What it writes is normalized, not the original file:

* every layer is its own ``[[layer]]`` table, after ``repeat``, the ``activation`` shorthand
  and ``[[block]]`` instances are expanded (blocks are written out as their layers);
* a key is written only where its value differs from what the parser would fill in (the
  ``[defaults]`` value, else the key's default); an ``id`` only where it differs from the
  default ``{kind}_{n}``; ``inputs`` wherever the spec named them;
* ``[defaults]`` is kept as written (it is part of what the spec means); comments are lost.

>>> from ntksym.spec.parse import loads_spec
>>> spec = loads_spec('name = "m"\\ninput = { shape = [3] }\\n[defaults]\\nweight_var = 2.0\\n'
...                   '[[layer]]\\nkind = "dense"\\nactivation = "relu"\\nrepeat = 2\\n'
...                   '[[layer]]\\nkind = "dense"\\n')
>>> text = spec_to_toml(spec)
>>> print(text)  # doctest: +ELLIPSIS
# written by ntksym ...
name = "m"
input = { shape = [3] }
<BLANKLINE>
[defaults]
weight_var = 2.0
<BLANKLINE>
[[layer]]
kind = "dense"
<BLANKLINE>
[[layer]]
kind = "relu"
...
>>> loads_spec(text).hash == spec.hash
True
"""

from __future__ import annotations

import json
import math
import re

from ntksym.ir.hyper import Learnable
from ntksym.layers import LAYER_KINDS

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(v) -> str:
    """A TOML literal for a spec value: bool, int, float, str, list or dict (inline table).

    >>> toml_value([1, 2.5, "a"]), toml_value({"kind": "bernoulli", "keep": 0.5})
    ('[1, 2.5, "a"]', '{ kind = "bernoulli", keep = 0.5 }')
    """
    if isinstance(v, Learnable):     # a float with a name: write it as it was written
        return toml_value({"value": float(v), "learn": True, "name": v.name})
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"a spec value must be finite, got {v!r}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v).replace("\x7f", "\\u007F")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as a TOML value")


def toml_key(k) -> str:
    """A bare key when TOML allows one, else a quoted key.

    >>> toml_key("weight_var"), toml_key("a b")
    ('weight_var', '"a b"')
    """
    return k if _BARE_KEY.match(k) else json.dumps(k)


def layer_table(layer, position, defaults, header="[[layer]]") -> list:
    """The lines of one expanded layer's table (``position``: its index among all layers):
    only the keys whose value differs from what the parser would fill in.

    >>> from ntksym.spec.common import LayerSpec
    >>> layer_table(LayerSpec("dense", {"weight_var": 2.0, "bias_var": 0.0}, "dense_0"), 0,
    ...             {"weight_var": 1.0})
    ['[[layer]]', 'kind = "dense"', 'weight_var = 2.0']
    """
    cls = LAYER_KINDS[layer.kind]
    lines = [header, f"kind = {toml_value(layer.kind)}"]
    if layer.id != f"{layer.kind}_{position}":
        lines.append(f"id = {toml_value(layer.id)}")
    if layer.inputs is not None:
        lines.append(f"inputs = {toml_value(list(layer.inputs))}")
    for key, spec_key in cls.keys.items():
        if key not in layer.params:
            continue          # dropped by validation (an absent mask): absent again
        value = layer.params[key]
        filled = defaults[key] if key in defaults and key != "width" else spec_key.default
        if value is None or _same(value, filled):
            continue
        lines.append(f"{toml_key(key)} = {toml_value(value)}")
    return lines


def _same(value, filled):
    # 2 == 2.0 as the parser makes numbers floats; bools and numbers never mix (True == 1);
    # a learnable constant is never the same as a filled-in value (its name ties symbols)
    if isinstance(value, Learnable) or isinstance(filled, (Learnable, dict)):
        return False
    if isinstance(value, bool) != isinstance(filled, bool):
        return False
    try:
        return bool(value == filled)
    except Exception:
        return False


def spec_to_toml(spec) -> str:
    """The TOML text of a validated Spec (normalized; see the module docstring)."""
    out = ["# written by ntksym (Architecture.to_toml): layers expanded, one table each",
           f"name = {toml_value(spec.name)}"]
    if spec.description:
        out.append(f"description = {toml_value(spec.description)}")
    out.append(f"input = {{ shape = {toml_value(list(spec.input_shape))} }}")
    if spec.defaults:
        out += ["", "[defaults]"]
        out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in spec.defaults.items()]
    for i, layer in enumerate(spec.layers):
        out.append("")
        out += layer_table(layer, i, spec.defaults)
    return "\n".join(out) + "\n"
