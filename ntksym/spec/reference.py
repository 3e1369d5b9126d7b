"""The spec reference (``docs/spec.md``), rendered from what the code declares.

Every layer kind of :data:`ntksym.layers.LAYER_KINDS` gets a section with every key it declares
(type, default, meaning), read from the layer classes; activations come from the registry
(:mod:`ntksym.duals.activations`), masks from :data:`ntksym.layers.mask.MASK_KINDS`, blocks from
:mod:`ntksym.spec.blocks`.  The prose (what a key means, where users trip, one example per kind)
is :mod:`ntksym.spec.reference_text`.  ``ntksym check --keys KIND`` prints one section.

Regenerate the page after adding a kind or a key (a test compares the file with this output)::

    python -m ntksym.spec.reference > docs/spec.md

>>> print(kind_section("avg_pool").splitlines()[0])
### `avg_pool`
>>> [row[0] for row in key_rows("avg_pool")]
['window', 'stride', 'padding']
>>> undocumented()
[]
"""

from __future__ import annotations

import sys

from ntksym.duals.activations import ACTIVATION_KINDS
from ntksym.layers import LAYER_KINDS
from ntksym.layers.base import REQUIRED
from ntksym.layers.mask import MASK_KINDS
from ntksym.layers.rnn import MASK_EXTRA  # the mask keys only rnn accepts (matrices)
from ntksym.spec import reference_text as text
from ntksym.spec.blocks import BLOCK_KEYS, INSTANCE_KEYS
from ntksym.spec.emit import toml_value
from ntksym.spec.parse import COMMON_KEYS, TOP_KEYS

#: how a Key's type name reads in the reference
TYPE_TEXT = {
    "number": "number", "int": "integer", "bool": "true/false", "string": "string",
    "table": "table", "ints": "integer or [h, w]", "bool|list": "true/false or list of names",
    "numbers": "list of numbers", "strings": "list of strings", "list": "list of names",
}


def activation_kinds() -> list:
    """The layer kinds that are activations (the registry's order)."""
    return [k for k in ACTIVATION_KINDS if k in LAYER_KINDS]


def other_kinds() -> list:
    """The layer kinds that are not activations (``LAYER_KINDS`` order)."""
    return [k for k in LAYER_KINDS if k not in ACTIVATION_KINDS]


def meaning(kind, key) -> str:
    """What ``key`` of ``kind`` means: the reference's prose, else the Key's own doc, else
    (activation parameters) the registry parameter's prose; "" if nobody documented it."""
    for scope in (kind, "*"):
        doc = text.KEY_DOCS.get(scope, {}).get(key)
        if doc:
            return doc
    doc = LAYER_KINDS[kind].keys[key].doc
    if doc:
        return doc
    if kind in ACTIVATION_KINDS and key in text.ACTIVATION_PARAMS:
        return text.ACTIVATION_PARAMS[key][0]
    return ""


def default_text(kind, key) -> str:
    """The default of a key as the reference prints it."""
    default = LAYER_KINDS[kind].keys[key].default
    if isinstance(default, str) and default == REQUIRED:
        return "required"
    if default is None:
        for scope in (kind, "*"):
            t = text.NONE_DEFAULT.get(scope, {}).get(key)
            if t:
                return t
        return "none"
    return f"`{toml_value(default)}`"


def type_text(kind, key) -> str:
    spec_key = LAYER_KINDS[kind].keys[key]
    t = TYPE_TEXT.get(spec_key.type, spec_key.type)
    choices = getattr(spec_key.check, "choices", None)
    if choices:
        t += ": " + " \\| ".join(f"`{toml_value(c)}`" for c in choices)
    return t


def key_rows(kind) -> list:
    """[(key, type, default, meaning)] of every key ``kind`` declares, in declaration order."""
    return [(key, type_text(kind, key), default_text(kind, key), meaning(kind, key))
            for key in LAYER_KINDS[kind].keys]


def undocumented() -> list:
    """[(kind, key)] of declared keys without a meaning, and [(kind, "")] of kinds without a
    summary or example; empty when the reference is complete (a test checks it)."""
    out = [(kind, key) for kind in LAYER_KINDS for key in LAYER_KINDS[kind].keys
           if not meaning(kind, key)]
    for kind in other_kinds():
        if kind not in text.KIND_SUMMARY or kind not in text.KIND_EXAMPLES:
            out.append((kind, ""))
    for kind in activation_kinds():
        if not ACTIVATION_KINDS[kind].get("doc"):
            out.append((kind, ""))
    out += [("mask", k) for kind in MASK_KINDS for k in MASK_KINDS[kind]
            if k not in text.MASK_KEY_DOCS]
    out += [("mask", k) for k in MASK_EXTRA if k not in text.MASK_KEY_DOCS]
    out += [("mask", kind) for kind in MASK_KINDS if kind not in text.MASK_KIND_DOCS]
    out += [("top", k) for k in TOP_KEYS if k not in text.TOP_KEY_DOCS]
    out += [("block", k) for k in BLOCK_KEYS if k not in text.BLOCK_KEY_DOCS]
    out += [("block instance", k) for k in INSTANCE_KEYS if k not in text.INSTANCE_KEY_DOCS]
    out += [("layer", k) for k in COMMON_KEYS if k not in text.COMMON_KEY_DOCS]
    return out


def _table(rows, head=("key", "type", "default", "meaning")) -> list:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, *rest in rows:
        cells = [f"`{key}`"] + [c.replace("|", "\\|") if "\\|" not in c else c for c in rest]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _shorthand(kind, params) -> str:
    if not params:
        return kind
    return f"{kind}({', '.join(toml_value(v) for v in params.values())})"


def activation_example(kind) -> tuple:
    """(spec text, shorthand) of a small MLP using activation ``kind`` as its own layer."""
    params = {}
    for name, default in ACTIVATION_KINDS[kind]["params"].items():
        if isinstance(default, str) and default == REQUIRED:
            params[name] = text.ACTIVATION_PARAMS.get(name, ("", 1.0))[1]
    lines = [f'name = "{kind.replace("_", "-")}-mlp"', "input = { shape = [8] }",
             "[[layer]]", 'kind = "dense"', "[[layer]]", f"kind = {toml_value(kind)}"]
    lines += [f"{name} = {toml_value(v)}" for name, v in params.items()]
    lines += ["[[layer]]", 'kind = "dense"']
    return "\n".join(lines) + "\n", _shorthand(kind, params)


def kind_example(kind) -> str:
    """The example spec of a kind (hand-written, or generated for activations)."""
    if kind in text.KIND_EXAMPLES:
        return text.KIND_EXAMPLES[kind]
    return activation_example(kind)[0]


def kind_section(kind, level=3) -> str:
    """The reference of one layer kind: summary, keys, inputs, example (markdown)."""
    cls = LAYER_KINDS[kind]
    out = [f"{'#' * level} `{kind}`", ""]
    is_activation = kind in ACTIVATION_KINDS and kind not in text.KIND_SUMMARY
    summary = (ACTIVATION_KINDS[kind]["doc"] if is_activation
               else text.KIND_SUMMARY.get(kind, ""))
    if is_activation:
        summary = f"Activation: {summary}"
    out += [summary + ("" if summary.endswith(".") else "."), ""]
    rows = key_rows(kind)
    if rows:
        out += _table(rows) + [""]
    else:
        out += ["No keys of its own.", ""]
    common = ["kind", "id", "inputs", "repeat"]
    if cls.has_weights and not getattr(cls, "owns_activation", False):
        common.append("activation")
    lo, hi = cls.inputs_range
    reads = ("one input (default: the previous layer)" if (lo, hi) == (1, 1)
             else f"{lo} or more inputs, named by `inputs`")
    out += [f"Also: {', '.join(f'`{k}`' for k in common)} ([every layer](#keys-of-every-layer)). "
            f"Reads {reads}." + (" Has weights." if cls.has_weights else ""), ""]
    if is_activation:
        _, short = activation_example(kind)
        out += [f"On a weight layer: `activation = {toml_value(short)}`.", ""]
    out += ["```toml", kind_example(kind).rstrip("\n"), "```"]
    return "\n".join(out)


def kinds_listing() -> str:
    """One line per kind (``ntksym check --keys`` without a kind)."""
    lines = ["layer kinds (ntksym check --keys KIND for the keys of one; docs/spec.md):"]
    for kind in other_kinds() + activation_kinds():
        s = (text.KIND_SUMMARY.get(kind) or ACTIVATION_KINDS[kind]["doc"]).split(". ")[0]
        s = s if len(s) <= 88 else s[:85] + "..."
        lines.append(f"  {kind:16s} {s}")
    return "\n".join(lines)


def _fixed_rows(docs) -> list:
    return [(k, t, d, m) for k, (t, d, m) in docs.items()]


def _masks() -> list:
    out = [text.MASKS]
    rows = []
    for kind, keys in MASK_KINDS.items():
        rows.append((f"kind = \"{kind}\"", "", "", text.MASK_KIND_DOCS.get(kind, "")))
        for key, (typ, default) in keys.items():
            d = "required" if default == REQUIRED else f"`{toml_value(default)}`"
            rows.append((key, TYPE_TEXT.get(typ, typ), d, text.MASK_KEY_DOCS.get(key, "")))
    for key, (typ, default) in MASK_EXTRA.items():
        rows.append((key, TYPE_TEXT.get(typ, typ), f"`{toml_value(default)}`",
                     text.MASK_KEY_DOCS.get(key, "")))
    out += _table(rows) + [""]
    return out


def render() -> str:
    """The whole of docs/spec.md."""
    out = [text.INTRO, "## Top-level keys", ""]
    out += _table(_fixed_rows(text.TOP_KEY_DOCS)) + [""]
    out += ["## Keys of every layer", ""]
    out += _table(_fixed_rows(text.COMMON_KEY_DOCS)) + [""]
    out += [text.PITFALLS, text.READOUT, "## Layer kinds", ""]
    kinds = other_kinds()
    acts = activation_kinds()
    out += ["Layers: " + ", ".join(f"[`{k}`](#{k})" for k in kinds) + ".",
            "Activations: " + ", ".join(f"[`{k}`](#{k})" for k in acts) + ".", ""]
    for kind in kinds:
        out += [kind_section(kind), ""]
    out += ["## Activations", "",
            "Each activation is a layer kind of its own (`kind = \"relu\"`) and a shorthand on "
            "`dense` and `conv` (`activation = \"relu\"`). How each dual kernel is computed "
            "(closed form, Hermite expansion, quadrature) is in docs/activations.md and in "
            "`ntksym derive`.", ""]
    for kind in acts:
        out += [kind_section(kind), ""]
    out += _masks()
    out += [text.BLOCKS]
    out += _table([(k, text.BLOCK_KEY_DOCS[k]) for k in BLOCK_KEYS],
                  head=("key of a `[[block]]`", "meaning")) + [""]
    out += _table([(k, text.INSTANCE_KEY_DOCS[k]) for k in INSTANCE_KEYS],
                  head=("key of a `[[layer]]` with `block`", "meaning")) + [""]
    out += [text.BUILDER]
    return "\n".join(out).rstrip("\n") + "\n"


def keys_text(kind="") -> str:
    """What ``ntksym check --keys [KIND]`` prints: one kind's section of the reference, or
    (``kind`` empty) the list of kinds.  An unknown kind is a SpecError naming the valid ones.

    >>> print(keys_text("relu").splitlines()[2])
    Activation: max(z, 0); arc-cosine kernel of order 1 (closed form).
    """
    if not kind:
        return kinds_listing()
    if kind not in LAYER_KINDS:
        from ntksym.errors import SpecError
        from ntksym.spec.common import suggest
        raise SpecError(f"unknown layer kind {kind!r}; kinds: {', '.join(LAYER_KINDS)}",
                        key="--keys", hint=suggest(kind, LAYER_KINDS))
    return kind_section(kind)


def main(argv=None):
    """``python -m ntksym.spec.reference [KIND]``: the whole page, or one kind's section."""
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        if argv[0] not in LAYER_KINDS:
            sys.exit(f"unknown kind {argv[0]!r}; kinds: {', '.join(LAYER_KINDS)}")
        sys.stdout.write(kind_section(argv[0]) + "\n")
    else:
        sys.stdout.write(render())


if __name__ == "__main__":
    main()
