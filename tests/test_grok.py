"""Training: the small configuration groks; interrupt + resume equals an uninterrupted run."""

import math

import pytest
import torch

from bumps.analysis import analyze, load_source
from bumps.errors import BumpsError
from bumps.grok import Interrupted, train
from bumps.modadd import ModAddConfig

SMALL = dict(p=31, train_frac=0.6, d_model=64, d_mlp=256, lr=3e-3, eval_every=50, checkpoint_every=200)


@pytest.fixture(scope="module")
def grokked(tmp_path_factory):
    out = tmp_path_factory.mktemp("grok") / "small.pt"
    return train(ModAddConfig.from_preset("nanda", epochs=1200, **SMALL), out), out


def test_small_configuration_groks(grokked):
    run, _ = grokked
    assert run["train_loss"][0] == pytest.approx(math.log(31), abs=0.3)
    assert 0 < run["grok_epoch"] <= 1200
    assert run["test_acc"][-1] >= 0.99 and run["train_acc"][-1] == 1.0
    assert len(run["key_freqs"]) >= 1 and run["single_freq_neuron_fraction"] > 0.5
    # the restricted loss (key frequencies only) is far below the excluded loss once grokked
    assert run["restricted_loss"][-1] < 0.1 < run["excluded_loss"][-1]


def test_run_file_layout(grokked):
    run, out = grokked
    saved = torch.load(out, weights_only=True)
    t = len(saved["step"])
    assert (saved["format"], saved["version"], saved["kind"]) == ("bumps.run", 1, "modadd")
    assert saved["step"][0] == 0 and saved["step"][-1] == 1200 and saved["step"].dtype == torch.int64
    for key in ("train_loss", "test_loss", "train_acc", "test_acc", "gini_embed", "sum_sq_weights"):
        assert saved[key].shape == (t,)
    assert saved["freq_norm"].shape == saved["freq_norm_wl"].shape == (t, 15)
    assert saved["neuron_freq"].shape == (t, 256, 15)
    assert saved["checkpoint_step"].tolist() == [0, 200, 400, 600, 800, 1000, 1200]
    assert saved["config"]["p"] == 31 and "torch" in saved["config"]["versions"]


def test_detect_accepts_modadd_runs(grokked):
    _, out = grokked
    result = analyze(load_source(out))
    assert set(result["summary"]) == {"freq_norm", "freq_norm_wl", "neuron_freq"}
    assert result["summary"]["neuron_freq"]["curves"] == 256 * 15


def test_interrupt_and_resume_gives_the_same_numbers(tmp_path):
    cfg = ModAddConfig.from_preset("nanda", epochs=120, **{**SMALL, "eval_every": 20, "checkpoint_every": 0})
    whole = train(cfg, tmp_path / "whole.pt")
    with pytest.raises(Interrupted, match="--resume"):
        train(cfg, tmp_path / "part.pt", stop_at=50)
    resumed = train(cfg, tmp_path / "part.pt", resume=tmp_path / "part.pt")
    for key in ("step", "train_loss", "test_loss", "freq_norm", "neuron_freq", "train_loss_every_epoch"):
        assert torch.equal(whole[key], resumed[key]), key


def test_resume_refuses_another_configuration(tmp_path):
    cfg = ModAddConfig.from_preset("nanda", epochs=30, **{**SMALL, "checkpoint_every": 0})
    train(cfg, tmp_path / "r.pt")
    before = (tmp_path / "r.pt").read_bytes()
    other = ModAddConfig.from_preset("nanda", epochs=30, **{**SMALL, "lr": 1e-3, "checkpoint_every": 0})
    with pytest.raises(BumpsError, match="lr"):
        train(other, tmp_path / "r.pt", resume=tmp_path / "r.pt")
    assert (tmp_path / "r.pt").read_bytes() == before


def test_modadd_figures_from_a_run(grokked, tmp_path):
    from bumps.figures import make_modadd_figures, phase_boundaries

    run, out = grokked
    paths = make_modadd_figures(tmp_path, out)
    assert [p.name for p in paths] == ["modadd_losses.png", "modadd_freq_norms.png", "modadd_weights_gini.png",
                                       "modadd_bumps.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    phases = phase_boundaries(run)
    assert phases["memorisation_end"] < phases["cleanup_start"] <= phases["cleanup_end"]
