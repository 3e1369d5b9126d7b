"""Paths and spec builders shared by the tests.

A plain module (the tests folder is on pytest's pythonpath), so that module-level code such as
parametrize lists can import it; tests/conftest.py hands the same things to test functions as
fixtures (``root``, ``spec_dir``, ``cntk_spec``).  Tests never import conftest itself.

Prefer a shipped file, ``ntksym.load_spec(SPEC_DIR / "cntk_gap_depth3.toml")``, with
``arch.with_input_shape(...)`` for small inputs; :func:`cntk_toml` is for the variants no
shipped file covers (another readout variance, a strided or masked layer, a bias ...).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = ROOT / "spec"


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return str(v)


def _table(header, keys):
    return f"[{header}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in keys.items())


def cntk_toml(shape, convs=({},), *, first=None, readout="global_avg_pool", dense=None,
              defaults=None, name="cntk"):
    """Spec text of Arora et al.'s (2019) CNTK on inputs of ``shape``: c_sigma = 2
    (``[defaults] weight_var = 2.0``), an unnormalized first conv of weight variance 1
    (Sigma^(0) = x^T x'), more ReLU convs (3 x 3, zero 'same' padding unless a layer says
    otherwise), the readout (``global_avg_pool`` for CNTK-GAP, ``flatten`` for CNTK-V) and a
    dense output layer.

    ``first``, each dict of ``convs``, ``dense`` and ``defaults`` add or override that
    table's keys (``convs=[{"repeat": 2}]`` for depth 4, ``first={"trainable": False}`` ...).

    >>> import ntksym
    >>> a = ntksym.loads_spec(cntk_toml([5, 5, 2], [{"padding": "valid"}], readout="flatten"))
    >>> [a.graph.nodes[n]["kind"] for n in a.graph.nodes]
    ['input', 'conv', 'relu', 'conv', 'relu', 'flatten', 'dense']
    """
    text = f'name = "{name}"\ninput = {{ shape = {_toml_value(list(shape))} }}\n'
    text += _table("defaults", {"weight_var": 2.0, **(defaults or {})})
    text += _table("[layer]", {"kind": "conv", "normalize": False, "weight_var": 1.0,
                               "activation": "relu", **(first or {})})
    for conv in convs:
        text += _table("[layer]", {"kind": "conv", "activation": "relu", **conv})
    text += _table("[layer]", {"kind": readout})
    return text + _table("[layer]", {"kind": "dense", **(dense or {})})


def assert_input_gradient_matches_finite_differences(arch, X, width=5, seed=0, h=1e-6):
    """The finite network's backward pass is the adjoint of its forward pass: the gradient of
    the output w.r.t. the input, contracted with a random direction V, equals the central
    finite difference (f(X + hV) - f(X - hV)) / 2h."""
    import numpy as np

    from ntksym.empirical.network import FiniteNetwork
    from ntksym.layers import LAYER_KINDS

    net = FiniteNetwork(arch.finite_graph(width), seed=seed)
    _, caches = net.forward(X)
    deltas = net.backward(caches, len(X))
    first = net.order[0]
    attrs = net.graph.nodes[first]
    grad_in = LAYER_KINDS[attrs["kind"]].backward(attrs, net.weights[first], caches[first],
                                                  deltas[first])[0]
    V = np.random.default_rng(seed + 1).standard_normal(X.shape)
    out = net.graph.graph["output"]
    fd = (net.forward(X + h * V)[0][out] - net.forward(X - h * V)[0][out])[:, 0] / (2 * h)
    directional = (grad_in * V).reshape(len(X), -1).sum(axis=1)
    np.testing.assert_allclose(fd, directional, rtol=1e-5, atol=1e-8)
