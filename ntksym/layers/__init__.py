"""The layer kinds: ``LAYER_KINDS`` maps a spec ``kind`` to the class that knows everything
about it (keys, shape rule, kernel rule, finite-width forward/backward).

Adding a layer kind = one module here + one line below (plus a spec file, tests and docs).
"""

from .activation import ACTIVATION_LAYERS
from .add import Add
from .concat import Concat
from .conv import Conv
from .dense import Dense
from .layer_norm import LayerNorm
from .pool import AvgPool, Flatten, GlobalAvgPool, SumPool
from .rnn import Rnn

LAYER_KINDS = {
    "dense": Dense,
    "conv": Conv,
    "avg_pool": AvgPool,
    "sum_pool": SumPool,
    "global_avg_pool": GlobalAvgPool,
    "flatten": Flatten,
    "rnn": Rnn,
    "add": Add,
    "concat": Concat,
    "layer_norm": LayerNorm,
    **ACTIVATION_LAYERS,
}

__all__ = ["LAYER_KINDS"]
