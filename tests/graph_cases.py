"""The graph architectures of issue #11 (the tracker's 14) that every oracle checks: spec texts,
small enough for plain-numpy recursions, neural-tangents references and finite networks.

Each case: (spec text, input shape).  Widths of hidden layers are left to the network (n).
"""

HEAD = '[defaults]\nweight_var = 2.0\nbias_var = 0.1\n'

RESIDUAL_MLP = '''name = "g-residual-mlp"
input = { shape = [5] }
''' + HEAD + '''
[[block]]
name = "res"
[[block.layer]]
kind = "relu"
[[block.layer]]
kind = "dense"
[[block.layer]]
kind = "relu"
[[block.layer]]
kind = "dense"
id = "branch"
[[block.layer]]
kind = "add"
inputs = ["block_input", "branch"]
scales = [1.0, 0.5]

[[layer]]
kind = "dense"
[[layer]]
block = "res"
repeat = 2
[[layer]]
kind = "relu"
[[layer]]
kind = "dense"
'''

DENSE_SHORTCUT = '''name = "g-dense-shortcut"
input = { shape = [5] }
''' + HEAD + '''
[[layer]]
kind = "dense"
activation = "relu"
[[layer]]
kind = "dense"
activation = "leaky_relu(0.2)"
[[layer]]
kind = "dense"
id = "branch"
[[layer]]
kind = "dense"
inputs = ["relu_1"]
weight_var = 1.0
id = "shortcut"
[[layer]]
kind = "add"
inputs = ["branch", "shortcut"]
[[layer]]
kind = "erf"
[[layer]]
kind = "dense"
'''

CONCAT_RELU_ERF = '''name = "g-concat-relu-erf"
input = { shape = [5] }
''' + HEAD + '''
[[layer]]
kind = "dense"
activation = "relu"
[[layer]]
kind = "dense"
inputs = ["input"]
weight_var = 1.5
activation = "erf"
[[layer]]
kind = "concat"
inputs = ["relu_1", "erf_3"]
[[layer]]
kind = "dense"
activation = "relu"
[[layer]]
kind = "dense"
'''

LAYER_NORM_MLP = '''name = "g-layer-norm-mlp"
input = { shape = [5] }
''' + HEAD + '''
[[layer]]
kind = "dense"
[[layer]]
kind = "layer_norm"
[[layer]]
kind = "relu"
[[layer]]
kind = "dense"
[[layer]]
kind = "layer_norm"
[[layer]]
kind = "erf"
[[layer]]
kind = "dense"
'''

RESIDUAL_CNN_GAP = '''name = "g-residual-cnn-gap"
input = { shape = [5, 5, 2] }
''' + HEAD + '''
[[layer]]
kind = "conv"
filter = [3, 3]
padding = "same"
id = "stem"
[[layer]]
kind = "relu"
[[layer]]
kind = "conv"
filter = [3, 3]
padding = "same"
activation = "relu"
[[layer]]
kind = "conv"
filter = [3, 3]
padding = "same"
id = "branch"
[[layer]]
kind = "add"
inputs = ["stem", "branch"]
[[layer]]
kind = "relu"
[[layer]]
kind = "global_avg_pool"
[[layer]]
kind = "dense"
'''

RESIDUAL_CNN_POOL = '''name = "g-residual-cnn-pool"
input = { shape = [6, 6, 2] }
''' + HEAD + '''
[[layer]]
kind = "conv"
filter = [3, 3]
padding = "same"
activation = "relu"
[[layer]]
kind = "conv"
filter = [3, 3]
padding = "same"
activation = "relu"
[[layer]]
kind = "conv"
filter = [3, 3]
padding = "same"
id = "branch"
[[layer]]
kind = "conv"
filter = [1, 1]
inputs = ["relu_1"]
id = "shortcut"
[[layer]]
kind = "add"
inputs = ["shortcut", "branch"]
[[layer]]
kind = "relu"
[[layer]]
kind = "avg_pool"
window = [2, 2]
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
'''

CASES = {
    "residual_mlp": RESIDUAL_MLP,
    "dense_shortcut": DENSE_SHORTCUT,
    "concat_relu_erf": CONCAT_RELU_ERF,
    "layer_norm_mlp": LAYER_NORM_MLP,
    "residual_cnn_gap": RESIDUAL_CNN_GAP,
    "residual_cnn_pool": RESIDUAL_CNN_POOL,
}
