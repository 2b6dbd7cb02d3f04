"""experiments.stylegan_xl's stage driver on a tiny config: two stages (16 -> 32) run in order, the
32x32 stage grows the 16x16 stage's G_ema and keeps it frozen, classifier guidance runs with the
cached mnist5k classifier, finished stages are skipped on a re-run, and a longer stage resumes
from its own checkpoint."""

import json

import jax
import numpy as np
import pytest

import experiments.stylegan_xl as E
from gigajax.train.checkpoint import Checkpoints
from gigajax.train.export import load_variables

# Its module fixtures build and compile models: keep the module on one xdist worker (setup.cfg's
# --dist loadgroup) rather than building them once per worker.
pytestmark = pytest.mark.xdist_group("stylegan_xl_experiment")

TINY = dict(z_dim=8, w_dim=8, cbase=128, cmax=4, syn_layers=3, head_layers=3, margin_size=2, interp_size=64,
            proj_im_res=64, d_width_div=16, cls_weight=1.0)


def _config(kimg32=0.016):
    c = E.get_config()
    c.batch_size = 8                              # one sample per fake CPU device
    c.stages = ((16, 0.016), (32, kimg32))       # two steps each
    c.snapshot_kimg = 0.008
    c.final_metric = ""
    c.log_every = 1
    c.grid_rows = c.grid_cols = 2
    c.model.update(TINY)
    return c


def _leaves(tree):
    return jax.tree_util.tree_leaves(tree)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sgxl")
    result = E.run_stages(_config(), E.build, workdir, progress=False)
    return workdir, result


def test_stages_run_in_order_and_export(run):
    workdir, result = run
    assert result["status"] == "done"
    for res in (16, 32):
        sdir = workdir / f"stage{res}"
        variables, meta = load_variables(sdir / "G_ema.npz")
        assert meta["resolution"] == res and meta["kimg"] == pytest.approx(0.016)
        assert json.loads((sdir / "config.json").read_text())["resolution"] == res
        assert (sdir / "reals.png").exists() and list(sdir.glob("fakes*.png"))
    stem, _ = load_variables(workdir / "stage16" / "G_ema.npz")
    grown, _ = load_variables(workdir / "stage32" / "G_ema.npz")
    # the 32x32 generator keeps the stem's mapping (frozen) and its kept layers; the heads are new
    for a, b in zip(_leaves(stem["params"]["mapping"]), _leaves(grown["params"]["mapping"])):
        np.testing.assert_array_equal(a, b)
    kept = [n for n in stem["params"]["synthesis"] if n in grown["params"]["synthesis"] and n != "input"]
    assert kept, "no stem layer kept"
    for n in kept:
        for a, b in zip(_leaves(stem["params"]["synthesis"][n]), _leaves(grown["params"]["synthesis"][n])):
            np.testing.assert_array_equal(a, b)
    assert len(grown["params"]["synthesis"]) > len(stem["params"]["synthesis"])
    log = [json.loads(line) for line in (workdir / "stage32" / "metrics.jsonl").read_text().splitlines()]
    guided = [r for r in log if "Gmain/cls_ce" in r]
    assert guided and all(np.isfinite(r["Gmain/cls_ce"]) for r in guided)
    assert not any("Gmain/cls_ce" in r for r in
                   map(json.loads, (workdir / "stage16" / "metrics.jsonl").read_text().splitlines()))


def test_rerun_skips_finished_stages_and_a_longer_stage_resumes(run, capsys):
    workdir, _ = run
    steps = {res: Checkpoints(workdir / f"stage{res}", keep=99).latest_step() for res in (16, 32)}
    E.run_stages(_config(), E.build, workdir, progress=False)
    out = capsys.readouterr().out
    assert out.count("done earlier") == 2
    assert {res: Checkpoints(workdir / f"stage{res}", keep=99).latest_step() for res in (16, 32)} == steps
    E.run_stages(_config(kimg32=0.024), E.build, workdir, progress=False)     # one more step at 32x32
    out = capsys.readouterr().out
    assert "stage 1/2 (16x16): done earlier" in out and "Resuming from" in out
    assert Checkpoints(workdir / "stage16", keep=99).latest_step() == steps[16]
    assert Checkpoints(workdir / "stage32", keep=99).latest_step() == steps[32] + 1
    assert load_variables(workdir / "stage32" / "G_ema.npz")[1]["kimg"] == pytest.approx(0.024)
    assert E.last_stage_dir(workdir).endswith("stage32")


def test_bad_stages(tmp_path):
    for stages, match in [(((32, 1.0),), "start at"), (((16, 1.0), (64, 1.0)), "double"), (((16, 0.0),), "kimg > 0"),
                          ((), "non-empty")]:
        c = _config()
        c.stages = stages
        with pytest.raises(ValueError, match=match):
            E.run_stages(c, E.build, tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="train first"):
        E.last_stage_dir(tmp_path)
