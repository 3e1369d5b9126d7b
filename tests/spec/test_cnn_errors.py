"""Bad convolutional specs and image data: one SpecError / DataError each, exit status 2."""

import numpy as np
import pytest

import ntksym
from cli import main
from ntksym.errors import DataError, SpecError

BASE = 'name = "bad"\ninput = {{ shape = {shape} }}\n'
CONV = '[[layer]]\nkind = "conv"\n{extra}\n'
TAIL = '[[layer]]\nkind = "global_avg_pool"\n[[layer]]\nkind = "dense"\n'

BAD_SPECS = {
    "pool window larger than the image":
        BASE.format(shape="[4, 4, 1]") + '[[layer]]\nkind = "avg_pool"\nwindow = 5\n' + TAIL,
    "conv after flatten":
        BASE.format(shape="[4, 4, 1]") + '[[layer]]\nkind = "flatten"\n'
        + CONV.format(extra="") + '[[layer]]\nkind = "dense"\n',
    "filter larger than the input under valid":
        BASE.format(shape="[4, 4, 1]") + CONV.format(extra='filter = 5\npadding = "valid"')
        + TAIL,
    "conv on a vector input":
        BASE.format(shape="[16]") + CONV.format(extra="") + TAIL,
    "unknown padding":
        BASE.format(shape="[4, 4, 1]") + CONV.format(extra='padding = "reflect"') + TAIL,
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_is_one_spec_error(case, tmp_path, capsys):
    text = BAD_SPECS[case]
    with pytest.raises(SpecError):
        ntksym.loads_spec(text).graph
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        main(["check", str(path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


GOOD = BASE.format(shape="[4, 4, 2]") + CONV.format(extra='activation = "relu"') + TAIL


@pytest.mark.parametrize("shape", [(3, 4, 4, 3), (3, 4, 5, 2), (3, 16, 2), (3, 32)])
def test_wrong_image_shape_or_channels_is_a_data_error(shape, tmp_path, capsys):
    arch = ntksym.loads_spec(GOOD)
    X = np.zeros(shape)
    with pytest.raises(DataError):
        ntksym.kernel(arch, X, progress=False)
    spec, data = tmp_path / "good.toml", tmp_path / "x.npy"
    spec.write_text(GOOD)
    np.save(data, X)
    with pytest.raises(SystemExit) as exit_:
        main(["kernel", str(spec), "--x", str(data)])
    assert exit_.value.code == 2
    assert "shape" in capsys.readouterr().err
