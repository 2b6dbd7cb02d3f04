"""The project's own golden cases go through the verifier, case by case and as the CLI."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from gigajax.compat import golden, verify
from gigajax.compat.kinds import runners

GOLDEN = Path(__file__).parent / "golden"
OPS_CASES = sorted(p for p in GOLDEN.glob("*.npz") if golden.load(p).kind.startswith("ops."))


def test_ops_cases_exist():
    # Guards against an empty copy silently passing everything.
    assert len(OPS_CASES) >= 51


@pytest.mark.parametrize("path", OPS_CASES, ids=lambda p: p.stem)
def test_ops_golden_case(path):
    r = verify.run_case(path)
    assert r.status == "pass", f"{r.kind}: rel-L2 {r.worst} > {r.tolerance} {r.detail}"


def test_cli_directory_with_kinds_filter_passes(tmp_path, capsys):
    # The CLI over a directory with a kinds pattern (each ops case already ran above, and .ci/run
    # runs the CLI over every case): three small cases of different kinds, and one of a kind the
    # pattern leaves out.
    names = ("ops_bias_act_relu.npz", "ops_upsample2d_1331.npz", "ops_downsample2d_1331.npz", "stylegan3_mapping_cond.npz")
    for name in names:
        shutil.copy(GOLDEN / name, tmp_path / name)
    assert verify.main([str(tmp_path), "--kinds", "ops.*"]) == 0
    out = capsys.readouterr().out
    assert "3 cases: 3 passed" in out and "stylegan3_mapping_cond" not in out


def test_cli_unsupported_kind_fails_unless_skipped(tmp_path, capsys):
    # The smallest case of a kind gigajax does not implement yet (it changes as models land).
    todo = sorted((p.stat().st_size, p) for p in GOLDEN.glob("*.npz") if golden.load(p).kind not in runners())
    if not todo:
        pytest.skip("every golden kind is implemented")
    case = todo[0][1]
    assert verify.main([str(case)]) == 1
    assert "unsupported" in capsys.readouterr().out
    assert verify.main([str(case), "--skip-unsupported"]) == 0


def test_cli_reports_failure(tmp_path, capsys):
    # A case whose reference output is perturbed must FAIL, not pass.
    src = np.load(GOLDEN / "ops_upsample2d_1331.npz")
    arrays = {k: src[k] for k in src.files}
    arrays["output/y"] = arrays["output/y"] * 1.001
    bad = tmp_path / "perturbed.npz"
    np.savez(bad, **arrays)
    assert verify.main([str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_cli_bad_inputs(tmp_path, capsys):
    assert verify.main([str(tmp_path / "missing.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    assert verify.main([str(junk)]) == 1
    assert "ERROR" in capsys.readouterr().out
    nometa = tmp_path / "nometa.npz"
    np.savez(nometa, x=np.zeros(3))
    r = verify.run_case(nometa)
    assert r.status == "ERROR" and "no 'meta'" in r.detail
    empty = tmp_path / "empty"
    empty.mkdir()
    assert verify.main([str(empty)]) == 2


def test_kinds_filter(tmp_path):
    for name in ("ops_bias_act_relu.npz", "ops_upsample2d_1331.npz"):
        shutil.copy(GOLDEN / name, tmp_path / name)
    assert verify.main([str(tmp_path), "--kinds", "ops.bias_act"]) == 0
    assert verify.main([str(tmp_path), "--kinds", "nothing.*"]) == 2
