"""``ntksym bounds``: list, show, evaluate and invert the papers' bounds (a click group).

Thin commands: parse ``k=v`` pairs, call :mod:`ntksym.bounds`, print.  User errors raise
:class:`~ntksym.errors.NtksymError` (exit status 2 through ``cli.main``).

    ntksym bounds list [--json]
    ntksym bounds show yang_wang.theorem_3_5_width [--latex] [--json]
    ntksym bounds eval yang_wang.theorem_3_5_width alpha=0.5 L=3 eps=0.1 [--json]
    ntksym bounds solve yang_wang.theorem_3_5_width eps d=1e6 alpha=0.5 L=3 [--json]
"""

from __future__ import annotations

import json

import click

from ntksym.errors import NtksymError
from ntksym.report import fmt_num


def _pairs(items):
    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise NtksymError(f"expected NAME=VALUE, got '{item}'")
        try:
            out[key] = float(val) if any(c in val for c in ".eE") or "inf" in val else int(val)
        except ValueError:
            raise NtksymError(f"{key}: '{val}' is not a number") from None
    return out


def _num(v):
    return float(v) if abs(float(v)) not in (0.0, float("inf")) or v == 0 else str(v)


@click.group("bounds")
def bounds_group():
    """The theory papers' bounds: sympy expressions with symbols, assumptions and sources."""


@bounds_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output.")
def list_(as_json):
    """Every bound with its status."""
    from ntksym.bounds import all_bounds
    bounds = all_bounds()
    if as_json:
        click.echo(json.dumps({k: {"status": b.status, "relation":
                                   f"{b.lhs.name} {b.relation} {b.expr}", "source": b.source}
                               for k, b in bounds.items()}, indent=2))
        return
    click.echo(list_text(bounds))


def list_text(bounds, width=100):
    """``bounds list``: per paper, each bound's name and status, then its relation on the next
    line (wrapped where it is longer than ``width``, between the outermost terms first).

    >>> from ntksym.bounds import get
    >>> print(list_text({"yang_wang.crossover_eps": get("yang_wang.crossover_eps")}))
    yang_wang
      crossover_eps  explicit
        eps_star = L**2*sqrt(alpha)
    """
    papers = {}
    for k, b in bounds.items():
        paper, _, short = k.partition(".")
        papers.setdefault(paper, []).append((short, b))
    nw = max(len(short) for entries in papers.values() for short, _ in entries)
    lines = []
    for paper, entries in papers.items():
        lines.append(paper)
        for short, b in entries:
            lines.append(f"  {short:{nw}s}  {b.status}")
            lines += ["    " + r for r in wrap_formula(f"{b.lhs.name} {b.relation} {b.expr}",
                                                         width - 4)]
    return "\n".join(lines)


def wrap_formula(text, width):
    """Lines of at most ``width`` characters, broken at spaces as shallow in the parentheses
    as will do (between the terms of a sum or the arguments of Max before inside them);
    continuation lines are indented by two.

    >>> wrap_formula("d >= Max(a + b, c + e)", 16)
    ['d >= Max(a + b,', '  c + e)']
    >>> wrap_formula("d >= Max(a + b, c + e)", 12)
    ['d >=', '  Max(a + b,', '  c + e)']
    """
    if len(text) <= width:
        return [text]
    depth, spaces = 0, []
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == " ":       # after a comma: between arguments, before inside one
            spaces.append((i, depth - 0.5 if text[i - 1] == "," else depth))
    for limit in sorted({d for _, d in spaces}):
        lines, start, last = [], 0, None
        for i, d in spaces + [(len(text), -1)]:        # the end of the text closes the last
            if d > limit:
                continue
            if i - start > width - (2 if lines else 0) and last is not None:
                lines.append(text[start:last])
                start = last + 1
            last = i if i < len(text) else None
        lines.append(text[start:])
        lines = [lines[0]] + ["  " + ln for ln in lines[1:]]
        if all(len(ln) <= width for ln in lines):
            return lines
    return lines
@bounds_group.command("show")
@click.argument("name")
@click.option("--latex", is_flag=True, help="print the relation as LaTeX only.")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output.")
def show(name, latex, as_json):
    """Expression, symbols, assumptions, source, status and note of one bound."""
    from ntksym.bounds import get
    b = get(name)
    if as_json:
        click.echo(json.dumps(b.to_dict(), indent=2))
    elif latex:
        click.echo(b.latex())
    else:
        click.echo(b.describe())


@bounds_group.command("eval")
@click.argument("name")
@click.argument("values", nargs=-1)
@click.option("--latex", is_flag=True, help="also print the relation as LaTeX.")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output.")
def eval_(name, values, latex, as_json):
    """Value of the bound at NAME=VALUE pairs (constants with defaults may be omitted)."""
    from ntksym.bounds import get
    b = get(name)
    vals = _pairs(values)
    v = b.evaluate(**vals)
    report = b.assumption_report(**vals)
    if as_json:
        click.echo(json.dumps({"name": b.name, "lhs": b.lhs.name, "relation": b.relation,
                               "value": _num(v), "values": vals, "status": b.status,
                               "assumptions": [{"text": t, "holds": ok} for t, ok in report]},
                              indent=2))
        return
    if latex:
        click.echo(b.latex())
    click.echo(f"{b.lhs.name} {b.relation} {fmt_num(v, 6)}    [{b.status}]")
    for text, ok in report:
        if ok is False:
            click.echo(f"warning: assumption fails: {text}", err=True)


@bounds_group.command("solve")
@click.argument("name")
@click.argument("var")
@click.argument("values", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output.")
def solve(name, var, values, as_json):
    """Value(s) of VAR at which the bound holds with equality, the others given."""
    from ntksym.bounds import get
    b = get(name)
    roots = b.solve_all(var, **_pairs(values))
    if not roots:
        raise NtksymError(f"{b.name}: no solution for {var} in its domain at these values")
    if as_json:
        click.echo(json.dumps({"name": b.name, "var": var, "solutions": roots}, indent=2))
    else:
        for r in roots:
            click.echo(f"{var} = {fmt_num(r, 6)}")
