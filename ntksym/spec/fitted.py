"""A spec's text with new values of its learnable constants, everything else as written.

``ntksym fit`` writes the fitted spec in the same file format: every
``key = { value = ..., learn = true }`` table of the text gets its new value (comments, order
and layout are kept), and the result is parsed again to check that it means the fitted values.

>>> from ntksym.spec.parse import loads_spec
>>> s = loads_spec('name = "m"\\ninput = { shape = [2] }\\n[defaults]\\n'
...                'weight_var = { value = 2.0, learn = true }  # sigma_w^2\\n'
...                '[[layer]]\\nkind = "dense"\\n')
>>> print(with_values_text(s, {"weight_var": 1.25}).splitlines()[3])
weight_var = { value = 1.25, learn = true }  # sigma_w^2
"""

from __future__ import annotations

import math
import re

from ntksym.errors import SpecError

# the value of an inline table on one line: "key = { ..., value = <number>, ... }"
_VALUE = re.compile(r"(\bvalue\s*=\s*)"
                    r"([-+]?(?:[0-9_]+(?:\.[0-9_]*)?(?:[eE][-+]?[0-9_]+)?|inf|nan))")


def with_values_text(spec, values: dict) -> str:
    """The text of ``spec`` (a :class:`~ntksym.spec.parse.Spec` parsed from text) with the
    learnable constants set to ``values`` ({name: value}; others keep theirs).  SpecError when
    a constant is not written as a one-line inline table the writer can update."""
    from ntksym.spec.parse import loads_spec

    unknown = set(values) - set(spec.hyperparameters)
    if unknown:
        raise SpecError(f"no learnable constant named {sorted(unknown)[0]!r}; learnable: "
                        f"{', '.join(spec.hyperparameters) or 'none'}", file=spec.path)
    values = dict(spec.hyperparameters, **values)        # the text may hold older values
    for n, v in values.items():
        if not (math.isfinite(v) and v > 0):
            raise SpecError(f"the value of {n!r} must be finite and > 0, got {v!r}",
                            file=spec.path)
    lines = spec.text.splitlines(keepends=True)
    done = set()
    for line, key, name in spec.hyper_sites:
        if name not in values or line is None or (line, key) in done:
            continue
        done.add((line, key))
        text = lines[line - 1]
        head = re.match(r"\s*" + re.escape(key) + r"\s*=\s*\{", text)
        new, count = _VALUE.subn(lambda m: m.group(1) + repr(float(values[name])),
                                 text[head.end():] if head else "", count=1)
        if not head or count != 1:
            raise SpecError(f"cannot write the fitted value of {name!r}: write it as a one-line "
                            f"table, {key} = {{ value = ..., learn = true }}",
                            file=spec.path, line=line, key=key)
        lines[line - 1] = text[:head.end()] + new
    out = "".join(lines)
    check = loads_spec(out, spec.path).hyperparameters
    want = dict(spec.hyperparameters, **{k: float(v) for k, v in values.items()})
    if check != want:
        raise SpecError("the fitted spec does not read back the fitted values (write every "
                        "learnable constant as a one-line table { value = ..., learn = true })",
                        file=spec.path)
    return out
