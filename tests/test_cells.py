"""The registry of cells (csrc/rnnkit/cells.h, read by rnnkit._cells): every list of cells in the package,
the C API's enum and the Cython declarations agree with it, and nothing else decides what a cell is."""
import pathlib
import re

import numpy as np
import pytest

import rnnkit
from rnnkit import _C
from rnnkit.layers import LAYER_CLASSES, LAYER_OF_CELL
from rnnkit.reference.cells import STEPS

PKG = pathlib.Path(rnnkit.__file__).parent


def test_registry_has_every_cell_in_id_order():
    assert list(rnnkit.CELLS) == ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho", "mut1", "mut2", "mut3"]
    assert [s.id for s in rnnkit.CELLS.values()] == list(range(len(rnnkit.CELLS)))
    assert rnnkit.CELL_NAMES == rnnkit.MODES == tuple(rnnkit.CELLS)
    mut = {n: (s.gates_ih, s.gates_hh, s.bias_ih, s.bias_hh, s.states, s.raw_input)
           for n, s in rnnkit.CELLS.items() if n.startswith("mut")}
    assert mut == {"mut1": (2, 2, 3, 0, 1, True), "mut2": (2, 3, 3, 0, 1, True), "mut3": (3, 3, 3, 0, 1, False)}
    assert [n for n, s in rnnkit.CELLS.items() if s.has_cell_state] == ["lstm"]


def test_c_api_enum_and_capi_pxd_match_the_registry():
    header = (PKG / "include" / "rnnkit" / "c_api.h").read_text()
    enum = re.search(r"enum rnnkit_cell \{(.*?)\};", header, re.S).group(1)
    values = dict((name, int(v)) for name, v in re.findall(r"(RNNKIT_\w+)\s*=\s*(\d+)", enum))
    assert values == {"RNNKIT_" + spec.name.upper(): spec.id for spec in rnnkit.CELLS.values()}
    pxd = (PKG / "capi.pxd").read_text()
    for name in values:
        assert re.search(rf"^\s+{name}$", pxd, re.M), f"{name} missing from capi.pxd"


def test_reference_has_a_step_pair_for_every_cell():
    assert set(STEPS) == set(rnnkit.CELLS)


def test_every_cell_has_a_layer_class_and_a_cli_choice():
    assert set(LAYER_OF_CELL) == set(rnnkit.CELLS)
    for name, cls in LAYER_OF_CELL.items():
        kw = {"nonlinearity": "relu"} if name == "rnn_relu" else {"linear_before_reset": False} if name == "gru_cho" else {}
        assert cls(8, 8, **kw).cell == name
    assert list(LAYER_CLASSES) == ["rnn", "lstm", "gru", "mut1", "mut2", "mut3"]
    from rnnkit.charlm import cmd_train as charlm_train
    from rnnkit.seq2seq import cmd_train as seq2seq_train

    for module in (charlm_train, seq2seq_train):
        with pytest.raises(SystemExit):
            module.main(["--cell", "mut4"])
    from rnnkit.bench.grid import CELL_CHOICES

    assert CELL_CHOICES == tuple(rnnkit.CELLS)


def test_native_checks_follow_the_registry():
    """Shapes that fit one cell are refused by another: the bindings read the registry too."""
    H = 4
    x, h0 = np.zeros((2, 1, H)), np.zeros((1, H))
    for spec in rnnkit.CELLS.values():
        shapes = spec.kernel_shapes(H, H)
        w = {k: np.zeros(v) for k, v in shapes.items()}
        c0 = np.zeros((1, H)) if spec.has_cell_state else None
        y, *_ = _C.forward(spec.id, x, h0, c0, w["w_ih"], w["w_hh"], w["b_ih"], w.get("b_hh"), None, False, False)
        assert y.shape == (2, 1, H)
        with pytest.raises(ValueError, match="w_hh"):
            _C.forward(spec.id, x, h0, c0, w["w_ih"], np.zeros((spec.gates_hh * H + H, H)), None, None, None, False,
                       False)
    assert _C.train_workspace_size(rnnkit.CELLS["mut1"].id, 3, 2, 4) == 3 * 2 * 5 * 4 + 4 * 2 * 4 + 1
    with pytest.raises(ValueError, match="unknown cell id"):
        _C.train_workspace_size(len(rnnkit.CELLS), 3, 2, 4)


def test_no_code_asks_a_cell_its_name():
    """What a cell has is asked of its CellSpec / its C++ constants, never by comparing names."""
    root = pathlib.Path(__file__).resolve().parents[1]  # the repository
    if not (root / "csrc").is_dir():
        pytest.skip("a rule on the repository's sources: tests/wheel.sh runs the tests without them")
    sources = [p for p in (root / "python" / "rnnkit").rglob("*.py")] + list((root / "csrc").rglob("*.[ch]*")) + \
        list((root / "src").rglob("*.[ch]*"))
    assert len(sources) > 60
    pattern = re.compile(r"""==\s*["'](lstm|gru|rnn_tanh|gru_cho|mut\d)["']|Mode::\w+|CellId::Lstm""")
    offenders = [f"{p.relative_to(root)}:{i + 1}" for p in sources if p.exists()
                 for i, line in enumerate(p.read_text().splitlines()) if pattern.search(line)]
    assert not offenders, offenders
