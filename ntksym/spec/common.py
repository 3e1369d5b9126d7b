"""What the spec parser and the block expander share: the layer record, names, limits."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

#: ids and names: letters, digits, '-', '_'
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
#: layers after every ``repeat`` and block instance are expanded
MAX_LAYERS = 10_000


@dataclass
class LayerSpec:
    """One layer after ``repeat`` expansion and defaults: kind, validated params, id, inputs.

    ``source_index`` names the layer in messages: the 1-based index of its [[layer]] table, or
    for a layer of a block instance its expanded id."""

    kind: str
    params: dict
    id: str
    inputs: list | None = None
    line: int | None = None
    source_index: int | str = 0


def suggest(word, choices):
    """"did you mean 'x'?" for the closest of ``choices``, or None."""
    m = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean '{m[0]}'?" if m else None
