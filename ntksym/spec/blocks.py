"""Blocks: a sub-graph written once in a ``[[block]]`` table and instantiated by ``[[layer]]``
tables that name it, so that a 50-block residual MLP or a Wide ResNet is a short file.

A block is a name and its own ``[[block.layer]]`` tables, written like ``[[layer]]`` tables.
Inside a block, ``inputs`` name the block's own layer ids or ``block_input``: what the
instance receives (the layer before it, or the instance's ``inputs``).  The instance's output is
the block's last layer.

    [[block]]
    name = "residual"
    [[block.layer]]
    kind = "relu"
    [[block.layer]]
    kind = "dense"
    id = "branch"
    [[block.layer]]
    kind = "add"
    inputs = ["block_input", "branch"]

    [[layer]]
    block = "residual"       # optional: id = "stage" (prefix of the ids), inputs = ["some_id"]
    repeat = 50              # 50 instances in a chain, each fed by the one before

Each layer of an instance gets the id ``{prefix}_{r}_{local id}``: ``prefix`` is the instance's
``id`` or else the block's name, ``r`` counts the block's instances from 1 (with an ``id`` and
no ``repeat`` the ``_{r}`` is left out), and a layer without an ``id`` in the block has the
local id ``{kind}_{k}``, k its 0-based position in the block.

>>> from ntksym.spec.parse import loads_spec
>>> spec = loads_spec('''
... name = "res"
... input = { shape = [4] }
... [[block]]
... name = "res"
... [[block.layer]]
... kind = "dense"
... id = "branch"
... [[block.layer]]
... kind = "add"
... inputs = ["block_input", "branch"]
... [[layer]]
... kind = "dense"
... width = 4
... [[layer]]
... block = "res"
... repeat = 2
... [[layer]]
... kind = "dense"
... ''')
>>> [(layer.id, layer.inputs) for layer in spec.layers]  # doctest: +NORMALIZE_WHITESPACE
[('dense_0', None), ('res_1_branch', ['dense_0']), ('res_1_add_1', ['dense_0', 'res_1_branch']),
 ('res_2_branch', ['res_1_add_1']), ('res_2_add_1', ['res_1_add_1', 'res_2_branch']),
 ('dense_5', None)]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ntksym.spec.common import MAX_LAYERS, NAME_RE, suggest

#: the name, inside a block, of what an instance receives
BLOCK_INPUT = "block_input"
BLOCK_KEYS = ("name", "description", "layer")
INSTANCE_KEYS = ("block", "id", "inputs", "repeat")


@dataclass
class Block:
    """A parsed block: its layers with local ids and local ``inputs``."""

    name: str
    layers: list
    line: int | None


def parse_blocks(tables, lines, fail, expand) -> dict:
    """{name: :class:`Block`} of the spec's ``[[block]]`` tables (None: no blocks).

    ``expand(idx, table, position, section, label)`` validates one layer table (the parser's
    own function), so a block's layers accept exactly what ``[[layer]]`` tables accept."""
    if tables is None:
        return {}
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        fail("'block' must be an array of tables [[block]]", lines.key("", 0, "block"),
             key="block")
    blocks, seen_layers = {}, 0
    for b, table in enumerate(tables, 1):
        here = lines.tables.get(("block", b))
        for k in table:
            if k not in BLOCK_KEYS:
                fail(f"unknown key for a block; valid keys: {', '.join(BLOCK_KEYS)}",
                     lines.key("block", b, k), key=k, hint=suggest(k, BLOCK_KEYS))
        name = table.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            fail("a block needs a name of letters, digits, '-' or '_', e.g. name = \"residual\"",
                 lines.key("block", b, "name") or here, key="name")
        if name in blocks:
            fail(f"two blocks are named {name!r}", lines.key("block", b, "name"), key="name")
        if not isinstance(table.get("description", ""), str):
            fail("description must be a string", lines.key("block", b, "description"),
                 key="description")
        layer_tables = table.get("layer")
        if not isinstance(layer_tables, list) or not layer_tables:
            fail(f"block {name!r} has no layers; add [[block.layer]] tables after its [[block]]",
                 here, key="layer")
        layers = []
        for j, lt in enumerate(layer_tables, 1):
            label = f"{j} of block '{name}'"
            if isinstance(lt, dict) and "block" in lt:
                fail("a block cannot instantiate a block; write its layers out",
                     lines.key("block.layer", seen_layers + j, "block"), layer=label, key="block")
            layers.extend(expand(seen_layers + j, lt, len(layers), "block.layer", label))
            if len(layers) > MAX_LAYERS:
                fail(f"block {name!r} has more than {MAX_LAYERS} layers", here, key="layer")
        seen_layers += len(layer_tables)
        _check_local_ids(name, layers, fail)
        blocks[name] = Block(name, layers, here)
    return blocks


def _check_local_ids(name, layers, fail):
    ids = {}
    for layer in layers:
        if layer.id in ids or layer.id == BLOCK_INPUT:
            fail(f"duplicate layer id {layer.id!r} in block {name!r}"
                 + (f" ({BLOCK_INPUT!r} names what the block receives)"
                    if layer.id == BLOCK_INPUT else ""),
                 layer.line, layer=layer.source_index, key="id")
        ids[layer.id] = layer
    for layer in layers:
        for ref in layer.inputs or ():
            if ref not in ids and ref != BLOCK_INPUT:
                fail(f"inputs names {ref!r}, which is no layer of block {name!r}; inside a block "
                     f"inputs name its own layers ({', '.join(ids)}) or {BLOCK_INPUT!r}",
                     layer.line, layer=layer.source_index, key="inputs",
                     hint=suggest(ref, list(ids) + [BLOCK_INPUT]))


def expand_instance(idx, table, blocks, layers, instances, lines, fail) -> list:
    """The layers of the ``[[layer]]`` table ``idx`` that instantiates a block.

    ``layers``: the spec's layers so far (the instance's default input is the last of them);
    ``instances``: {block name: instances made so far}, updated (numbers keep counting when a
    block is instantiated again)."""

    def line(key=None):
        return lines.key("layer", idx, key) if key else lines.layer(idx)

    for k in table:
        if k not in INSTANCE_KEYS:
            fail("unknown key for a layer that instantiates a block; valid keys: "
                 + ", ".join(INSTANCE_KEYS), line(k), layer=idx, key=k,
                 hint=suggest(k, INSTANCE_KEYS))
    name = table["block"]
    if not isinstance(name, str) or name not in blocks:
        fail(f"no block is named {name!r}; blocks: {', '.join(blocks) or 'none'} (define one "
             "with [[block]] and its [[block.layer]] tables)", line("block"), layer=idx,
             key="block", hint=suggest(name, blocks))
    block = blocks[name]
    repeat = table.get("repeat", 1)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        fail("repeat must be an integer >= 1", line("repeat"), layer=idx, key="repeat")
    user_id = table.get("id")
    if user_id is not None and (not isinstance(user_id, str) or not NAME_RE.match(user_id)):
        fail("id must be letters, digits, '-' or '_'", line("id"), layer=idx, key="id")
    inputs = table.get("inputs")
    if inputs is not None and not (isinstance(inputs, list) and len(inputs) == 1
                                   and isinstance(inputs[0], str)):
        fail("a block instance takes one input: inputs = [\"layer_id\"]", line("inputs"),
             layer=idx, key="inputs")
    # count before expanding: repeat = 10**9 must not build the layers to refuse them
    total = len(layers) + repeat * len(block.layers)
    if total > MAX_LAYERS:
        fail(f"more than {MAX_LAYERS} layers after expanding blocks: the layers up to this one "
             f"make {total} ({repeat} x {len(block.layers)} in block {name!r}); keep the total "
             f"at most {MAX_LAYERS}", line("repeat"), layer=idx, key="repeat")

    received = inputs[0] if inputs else (layers[-1].id if layers else "input")
    out = []
    for r in range(1, repeat + 1):
        instances[name] = instances.get(name, 0) + 1
        prefix = (user_id if repeat == 1 else f"{user_id}_{r}") if user_id else \
            f"{name}_{instances[name]}"
        ids = {layer.id: f"{prefix}_{layer.id}" for layer in block.layers}
        ids[BLOCK_INPUT] = received
        for k, layer in enumerate(block.layers):
            refs = layer.inputs if layer.inputs else ([BLOCK_INPUT] if k == 0 else None)
            new_id = ids[layer.id]
            out.append(replace(layer, id=new_id, params=dict(layer.params),
                               inputs=None if refs is None else [ids[ref] for ref in refs],
                               source_index=new_id))
        received = out[-1].id
    return out
