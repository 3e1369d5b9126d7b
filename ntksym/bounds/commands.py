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
    width = max(map(len, bounds))
    for k, b in bounds.items():
        click.echo(f"{k:{width}s}  {b.status:22s}  {b.lhs.name} {b.relation} ...")


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
    click.echo(f"{b.lhs.name} {b.relation} {v}    [{b.status}]")
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
            click.echo(f"{var} = {r!r}")
