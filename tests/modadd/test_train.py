"""Training: the small configuration groks; interrupt + resume equals an uninterrupted run."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bumps.detect.analysis import analyze, load_source
from bumps.errors import BumpsError
from bumps.modadd.model import ModAddConfig
from bumps.modadd.train import EVAL_KEYS, Interrupted, train

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
    # the neuron table has its own cadence (neuron_every 200), and is stored once (not again under resume)
    assert saved["neuron_step"].tolist() == [0, 200, 400, 600, 800, 1000, 1200]
    assert saved["neuron_freq"].shape == (7, 256, 15) and saved["neuron_freq"].dtype == torch.float32
    assert "neuron_freq" not in saved["resume"]["records"]
    assert saved["checkpoint_step"].tolist() == [0, 200, 400, 600, 800, 1000, 1200]
    assert saved["config"]["p"] == 31 and "torch" in saved["config"]["versions"]


def test_detect_accepts_modadd_runs(grokked):
    _, out = grokked
    result = analyze(load_source(out))
    # the curve families, then the recorded scalars (losses on their own cadences)
    assert list(result["summary"])[:3] == ["freq_norm", "freq_norm_wl", "neuron_freq"]
    assert {"train_loss", "test_loss", "train_loss_every_epoch"} <= set(result["summary"])
    assert result["summary"]["neuron_freq"]["curves"] == 256 * 15
    picked = analyze(load_source(out, series=["test_loss", "freq_norm"]))
    assert list(picked["summary"]) == ["test_loss", "freq_norm"]


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
    from bumps.modadd.figures import make_modadd_figures
    from bumps.modadd.phases import phase_boundaries

    run, out = grokked
    paths = make_modadd_figures(tmp_path, out)
    assert [p.name for p in paths] == [
        "modadd_losses.png",
        "modadd_freq_norms.png",
        "modadd_weights_gini.png",
        "modadd_bumps.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in paths)
    phases = phase_boundaries(run)
    assert phases["memorisation_end"] < phases["cleanup_start"] <= phases["cleanup_end"]


# ---------------------------------------------------------------------------- ensembles, early stop, knockouts

from bumps.io.runfile import checkpoint_dir  # noqa: E402
from bumps.modadd.model import all_pairs, cross_entropy, forward_full, init_params, split_indices  # noqa: E402
from bumps.modadd.train import Intervention, _Member, checkpoints, train_many  # noqa: E402

TINY = dict(p=23, train_frac=0.5, d_model=32, d_mlp=64, n_heads=2, lr=3e-3, eval_every=20, checkpoint_every=0)


def test_single_run_follows_the_plain_pytorch_reference(tmp_path):
    """train() vs an independent loop: full-sequence forward, torch.optim.AdamW, LambdaLR warmup."""
    cfg = ModAddConfig.from_preset("nanda", epochs=60, **TINY)
    run = train(cfg, tmp_path / "r.pt")
    params = {k: v.clone().requires_grad_(True) for k, v in init_params(cfg).items()}
    opt = torch.optim.AdamW(
        list(params.values()), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(s / cfg.warmup, 1))
    tokens = all_pairs(cfg.p)
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    tr, _ = split_indices(cfg)
    losses = []
    for _ in range(cfg.epochs):
        loss = cross_entropy(forward_full(params, tokens[tr]), labels[tr])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    torch.testing.assert_close(
        run["train_loss_every_epoch"], torch.tensor(losses, dtype=torch.float64), rtol=2e-4, atol=1e-6
    )
    for k, v in params.items():
        torch.testing.assert_close(run["final_params"][k], v.detach(), rtol=1e-3, atol=2e-5)


def test_ensemble_members_equal_their_single_runs(tmp_path):
    """Members differing in seed, data seed, lr, weight decay, train fraction and loss dtype.

    In float64: in float32 both follow the same equations, but this small model's training
    amplifies rounding differences (1e-9 at epoch 50 grows to 1e-4 by epoch 100), so a float32
    comparison over hundreds of epochs tests chaos, not the code.
    """
    variants = [
        dict(seed=0),
        dict(seed=1, data_seed=5, lr=1e-3),
        dict(seed=2, weight_decay=0.3, train_frac=0.4),
        dict(seed=3, loss_dtype="float32", warmup=0),
    ]
    configs = [ModAddConfig.from_preset("nanda", epochs=300, dtype="float64", **{**TINY, **v}) for v in variants]
    runs = train_many(configs, [tmp_path / f"m{i}.pt" for i in range(len(configs))])
    for i, cfg in enumerate(configs):
        single = train(cfg, tmp_path / f"s{i}.pt")
        # the float32 loss rounds at 1e-8 and the rounding is amplified the same way: compare its first half
        upto, tol = (150, 1e-5) if cfg.loss_dtype == "float32" else (300, 1e-7)
        torch.testing.assert_close(
            runs[i]["train_loss_every_epoch"][:upto], single["train_loss_every_epoch"][:upto], rtol=tol, atol=1e-9
        )
        for key in ("test_loss", "freq_norm"):
            torch.testing.assert_close(runs[i][key][: upto // 20], single[key][: upto // 20], rtol=100 * tol, atol=1e-8)
        assert torch.equal(runs[i]["neuron_step"], single["neuron_step"])
        early = runs[i]["neuron_step"] < upto // 2  # the neuron tables before rounding has grown
        torch.testing.assert_close(
            runs[i]["neuron_freq"][early], single["neuron_freq"][early], rtol=100 * tol, atol=1e-8
        )
    # members really differ
    assert not torch.allclose(runs[0]["train_loss_every_epoch"], runs[2]["train_loss_every_epoch"])


def test_ensemble_member_groks_at_the_same_epoch_as_its_single_run(grokked, tmp_path):
    single, _ = grokked
    cfg = ModAddConfig.from_preset("nanda", epochs=1200, **SMALL)
    other = ModAddConfig.from_preset("nanda", epochs=1200, **{**SMALL, "seed": 1, "data_seed": 1})
    runs = train_many([cfg, other], [tmp_path / "a.pt", tmp_path / "b.pt"])
    assert runs[0]["grok_epoch"] == single["grok_epoch"] > 0
    assert runs[0]["key_freqs"].tolist() == single["key_freqs"].tolist()


def test_early_stop_rule():
    m = _Member(ModAddConfig.from_preset("nanda", epochs=1000, stop_after_grok=50, **TINY), Path("x.pt"), None)
    for epoch, acc, loss in ((100, 0.5, 1.0), (200, 0.995, 1e-3), (300, 1.0, 5e-7)):
        m.record(
            {
                "train_loss": loss,
                "test_loss": loss,
                "train_acc": 1.0,
                "test_acc": acc,
                **{
                    k: 0.0
                    for k in (
                        "freq_norm",
                        "freq_norm_wl",
                        "gini_embed",
                        "gini_neuron_logit",
                        "gini_freq_embed",
                        "gini_freq_neuron_logit",
                        "sum_sq_weights",
                    )
                },
            },
            epoch,
        )
    assert (m.grok_at, m.below_at) == (200, 300)
    m.epoch = 349
    assert m.should_stop() is None
    m.epoch = 350
    assert m.should_stop() == "stop-after-grok"
    m.cfg.stop_on = "grok"  # accuracy only: 50 epochs after the grok epoch
    m.epoch = 249
    assert m.should_stop() is None
    m.epoch = 250
    assert m.should_stop() == "stop-after-grok"


def test_early_stop_in_training_and_runs_that_never_grok(grokked, tmp_path):
    """Continue the grokked small run (test loss ~4e-6 at epoch 1200) until 20 epochs after loss < 1e-6."""
    _, path = grokked
    more = ModAddConfig.from_preset("nanda", epochs=4000, stop_after_grok=20, **SMALL)
    never = ModAddConfig.from_preset("nanda", epochs=60, stop_after_grok=20, **{**SMALL, "eval_every": 20})
    a = train(more, tmp_path / "a.pt", resume=path)
    b = train(never, tmp_path / "b.pt")
    assert a["config"]["stop_reason"] == "stop-after-grok"
    assert 1200 < a["test_loss_below_1e6_epoch"] and a["grok_epoch"] < 1200
    assert a["config"]["epochs_done"] == a["test_loss_below_1e6_epoch"] + 20 < 4000
    assert b["config"]["stop_reason"] == "epochs" and b["config"]["epochs_done"] == 60 and b["grok_epoch"] == -1


def test_neuron_knockout_stays_exactly_dead_and_frequency_knockout_stays_removed(tmp_path):
    from bumps.modadd.fourier import fourier_basis

    cfg = ModAddConfig.from_preset("nanda", epochs=80, **TINY)
    dead = (3, 10, 40)
    run = train(cfg, tmp_path / "k.pt", intervention=Intervention(epoch=30, neurons=dead, freqs=(2, 5)))
    final = run["final_params"]
    n = list(dead)
    assert (final["W_in"][:, n] == 0).all() and (final["W_out"][n] == 0).all() and (final["b_in"][n] == 0).all()
    assert (run["neuron_freq"][-1][n] == 0).all()
    f = fourier_basis(cfg.p)[[3, 4, 9, 10]]
    assert (f @ final["W_E"][: cfg.p]).abs().max() < 1e-5
    assert (f @ init_params(cfg)["W_E"][: cfg.p]).abs().max() > 0.05  # the control: they were there
    assert run["config"]["intervention"] == {"epoch": 30, "neurons": n, "freqs": [2, 5]}
    before = train(cfg, tmp_path / "plain.pt")
    torch.testing.assert_close(run["train_loss_every_epoch"][:30], before["train_loss_every_epoch"][:30])
    assert not torch.allclose(run["train_loss_every_epoch"][31:], before["train_loss_every_epoch"][31:])


def test_checkpoints_belong_to_their_run(tmp_path):
    cfg = ModAddConfig.from_preset("nanda", epochs=40, **{**TINY, "checkpoint_every": 10})
    first = train(cfg, tmp_path / "r.pt")
    longer = ModAddConfig.from_preset("nanda", epochs=60, **{**TINY, "checkpoint_every": 10, "seed": 4})
    # a stale checkpoint that the next run will not overwrite
    stale = checkpoint_dir(tmp_path / "r.pt") / "epoch_000030.pt"
    assert stale.exists()
    second = train(ModAddConfig.from_preset("nanda", epochs=20, **{**TINY, "checkpoint_every": 10}), tmp_path / "r.pt")
    assert not stale.exists() and first["config"]["run_id"] != second["config"]["run_id"]
    files = sorted(checkpoint_dir(tmp_path / "r.pt").glob("epoch_*.pt"))
    assert [f.name for f in files] == ["epoch_000000.pt", "epoch_000010.pt", "epoch_000020.pt"]
    assert checkpoints(tmp_path / "r.pt", second["config"]["run_id"]) == files
    # --resume A --out B carries A's checkpoints
    with pytest.raises(Interrupted):
        train(longer, tmp_path / "a.pt", stop_at=25)
    resumed = train(longer, tmp_path / "b.pt", resume=tmp_path / "a.pt")
    carried = checkpoints(tmp_path / "b.pt", resumed["config"]["run_id"])
    assert [torch.load(f, weights_only=True)["epoch"] for f in carried] == [0, 10, 20, 30, 40, 50, 60]
    assert "optimizer" in torch.load(checkpoint_dir(tmp_path / "b.pt") / "epoch_000010.pt", weights_only=True)


def test_ctrl_c_saves_at_a_step_boundary_and_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "c.pt"
    args = [
        sys.executable,
        str(root / "cli.py"),
        "grok",
        "--p",
        "23",
        "--d-model",
        "32",
        "--d-mlp",
        "64",
        "--n-heads",
        "2",
        "--train-frac",
        "0.5",
        "--eval-every",
        "10",
        "--checkpoint-every",
        "10",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen([*args, "--epochs", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (checkpoint_dir(out) / "epoch_000020.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and "--resume" in err
    saved = torch.load(out, weights_only=True)
    done = saved["config"]["epochs_done"]
    assert done >= 20 and len(saved["train_loss_every_epoch"]) == done
    assert saved["resume"]["optimizer"]["step"] == done  # the optimizer state matches the saved weights
    finish = subprocess.run(
        [*args, "--epochs", str(done + 10), "--resume", str(out)], capture_output=True, text=True, timeout=300
    )
    assert finish.returncode == 0, finish.stderr
    assert torch.load(out, weights_only=True)["config"]["epochs_done"] == done + 10


def test_resume_alone_continues_with_the_stored_settings(tmp_path):
    """`bumps grok --resume FILE` needs no other flag; an explicit flag that disagrees is refused, all listed."""
    small = ["--p", "11", "--train-frac", "0.6", "--d-model", "16", "--d-mlp", "32", "--lr", "0.01", "--threads", "1"]
    cli = [sys.executable, str(Path(__file__).resolve().parents[2] / "cli.py"), "grok"]
    run = lambda *a: subprocess.run([*cli, *map(str, a)], capture_output=True, text=True, cwd=tmp_path)  # noqa: E731
    assert run(*small, "--epochs", 30, "--out", tmp_path / "r.pt").returncode == 0
    assert run(*small, "--epochs", 60, "--out", tmp_path / "whole.pt").returncode == 0
    proc = run("--resume", tmp_path / "r.pt", "--epochs", 60)
    assert proc.returncode == 0, proc.stderr
    cont, whole = (torch.load(tmp_path / f, weights_only=True) for f in ("r.pt", "whole.pt"))
    assert cont["config"]["epochs_done"] == 60 and cont["config"]["lr"] == 0.01
    for k, v in whole["final_params"].items():
        torch.testing.assert_close(cont["final_params"][k], v)
    bad = run("--resume", tmp_path / "r.pt", "--lr", "0.5", "--d-mlp", "64")
    assert bad.returncode == 2 and "--lr=0.5 (stored 0.01); --d-mlp=64 (stored 32)" in bad.stderr


# ---------------------------------------------------------------------------- defaults of issue 23

from bumps.modadd.model import PRESETS  # noqa: E402
from bumps.modadd.train import check_outputs, default_run_path, estimate_memory, step_elements  # noqa: E402


def test_default_run_names_carry_what_distinguishes_runs():
    nanda = ModAddConfig.from_preset("nanda")
    assert str(default_run_path(nanda)) == "runs/modadd_nanda_seed0.pt"
    assert str(default_run_path(ModAddConfig.from_preset("nanda", seed=3))) == "runs/modadd_nanda_seed3.pt"
    assert str(default_run_path(ModAddConfig.from_preset("small"))) == "runs/modadd_small_seed0.pt"
    short = default_run_path(ModAddConfig.from_preset("nanda", p=11, epochs=10))
    other = default_run_path(ModAddConfig.from_preset("nanda", p=11, epochs=20))
    split = default_run_path(ModAddConfig.from_preset("nanda", data_seed=1))
    assert len({short, other, split, default_run_path(nanda)}) == 4
    assert short.name.startswith("modadd_nanda_") and short.name.endswith("_seed0.pt") and len(short.stem) == 27


def test_check_outputs_refuses_a_run_of_other_settings(tmp_path):
    cfg = ModAddConfig.from_preset("nanda", epochs=10, **{**SMALL, "checkpoint_every": 0})
    train(cfg, tmp_path / "r.pt")
    check_outputs([cfg], [tmp_path / "r.pt"], resumable=False)
    longer = ModAddConfig.from_preset("nanda", epochs=20, **{**SMALL, "checkpoint_every": 0})
    with pytest.raises(BumpsError, match=r"other settings \(epochs 10 → 20\)"):
        check_outputs([longer], [tmp_path / "r.pt"], resumable=False)
    check_outputs([longer], [tmp_path / "r.pt"], resumable=True)  # an ensemble rerun may extend its epochs
    check_outputs([longer], [tmp_path / "r.pt"], resumable=False, force=True)


def test_memory_estimate_grows_with_the_run_and_covers_a_real_one():
    small = estimate_memory([ModAddConfig.from_preset("small")])
    assert set(small) == {"inputs", "weights", "training step", "evaluation", "records"}
    nanda = estimate_memory([ModAddConfig.from_preset("nanda")])
    assert sum(nanda.values()) > sum(small.values())
    four = estimate_memory([ModAddConfig.from_preset("nanda", seed=s) for s in range(4)])
    assert four["weights"] == 4 * nanda["weights"] and four["inputs"] > nanda["inputs"]
    assert sum(estimate_memory([ModAddConfig.from_preset("nanda", p=100003)]).values()) > 1e15
    assert step_elements([ModAddConfig.from_preset("nanda")]) == 3830 * 512


@pytest.mark.slow
def test_small_preset_groks_on_one_core(tmp_path):
    """The `small` preset memorises first and groks inside its epochs in under a minute on one core (its docs)."""
    import time

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        run = train(ModAddConfig.from_preset("small", checkpoint_every=0), tmp_path / "small.pt")
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(before)
    memorised = int(run["step"][int((run["train_acc"] >= 0.99).nonzero()[0])])
    assert 0 < memorised < run["grok_epoch"] < PRESETS["small"]["epochs"]
    assert seconds < 60, seconds


@pytest.mark.slow
@pytest.mark.parametrize("kw", [dict(epochs=5), dict(epochs=5, d_mlp=4096), dict(epochs=3, p=211)])
def test_memory_estimate_is_near_the_measured_peak(kw):
    """The size guard's estimate is within 1.5x of the peak memory a short training really adds."""
    script = (
        "import resource, sys, torch\n"
        "torch.set_num_threads(1)\n"
        "from bumps.modadd.model import ModAddConfig\n"
        "from bumps.modadd.train import estimate_memory, train\n"
        f"cfg = ModAddConfig.from_preset('nanda', checkpoint_every=0, **{kw!r})\n"
        "base = int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "train(cfg, sys.argv[1])\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(sum(estimate_memory([cfg]).values()), peak - base)\n"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", script, f"{d}/r.pt"], capture_output=True, text=True, check=True)
    estimate, measured = map(int, out.stdout.split())
    assert measured / 1.5 < estimate < measured * 1.5, (estimate, measured)


def test_neuron_table_cadence_dtype_and_final_record(tmp_path):
    base = {**SMALL, "eval_every": 20, "checkpoint_every": 0}
    every = train(ModAddConfig.from_preset("nanda", epochs=130, neuron_every=0, **base), tmp_path / "every.pt")
    sparse = train(
        ModAddConfig.from_preset("nanda", epochs=130, neuron_every=50, neuron_dtype="float16", **base),
        tmp_path / "sparse.pt",
    )
    # evaluations at 0, 20, ..., 120 and the last epoch 130; a table at the first evaluation of each new
    # multiple of 50 (60 and 100; 120 is still in 100's) and at the end
    assert every["neuron_step"].tolist() == every["step"].tolist() == [0, 20, 40, 60, 80, 100, 120, 130]
    assert sparse["neuron_step"].tolist() == [0, 60, 100, 130]
    assert sparse["neuron_freq"].dtype == torch.float16
    # the same training: the sparse tables are the dense run's at those epochs, to float16 precision
    rows = [every["step"].tolist().index(e) for e in sparse["neuron_step"].tolist()]
    assert torch.allclose(sparse["neuron_freq"].float(), every["neuron_freq"][rows], atol=2e-3)
    assert torch.equal(sparse["test_loss"], every["test_loss"]) and torch.equal(sparse["key_freqs"], every["key_freqs"])


def test_early_stop_records_the_final_neuron_table(tmp_path):
    cfg = ModAddConfig.from_preset(
        "nanda", epochs=1200, stop_after_grok=0, stop_on="grok", neuron_every=100000, **{**SMALL, "checkpoint_every": 0}
    )
    run = train(cfg, tmp_path / "stop.pt")
    assert run["step"][-1] == run["grok_epoch"] < 1200
    assert run["neuron_step"].tolist() == [0, int(run["grok_epoch"])]  # epoch 0 and the stop


def test_old_run_files_without_neuron_steps_still_analyse(grokked, tmp_path):
    """A file from before the neuron cadence (the table at every evaluation, no neuron_step) still loads."""
    from bumps.io.schema import steps_of
    from bumps.io.tidy import iter_series
    from bumps.modadd.phases import classify_bumps

    _, out = grokked
    saved = torch.load(out, weights_only=True)
    # the old layout: every eval-cadence series at the neuron table's epochs, and no neuron_step
    old = {k: v for k, v in saved.items() if k != "neuron_step"}
    keep = [i for i, e in enumerate(saved["step"].tolist()) if e in saved["neuron_step"].tolist()]
    for k in EVAL_KEYS + ("step",):
        old[k] = saved[k][keep]
    assert torch.equal(steps_of(old, "neuron_freq"), old["step"])
    assert torch.equal(steps_of(saved, "neuron_freq"), saved["neuron_step"])
    series = {k: steps for k, _, steps, _ in iter_series(old)}
    assert series["neuron_freq"].tolist() == old["step"].tolist()
    assert {k: steps for k, _, steps, _ in iter_series(saved)}["neuron_freq"].tolist() == saved["neuron_step"].tolist()
    assert isinstance(classify_bumps(old), list) and isinstance(classify_bumps(saved), list)


def test_neuron_grid_is_absolute_so_continuations_share_it():
    cfg = ModAddConfig.from_preset("nanda", epochs=3000, neuron_every=200, **TINY)
    m = _Member(cfg, Path("x.pt"), None)
    m.records["neuron_step"] = [1500]  # a continuation's first record, from the checkpoint at 1500
    due = []
    for epoch in range(1510, 2010, 10):
        m.epoch = epoch
        if m.neurons_due():
            m.records["neuron_step"].append(epoch)
            due.append(epoch)
    assert due == [1600, 1800, 2000]  # the original's grid (multiples of 200), not 1700, 1900


def test_a_run_file_without_the_cadence_setting_continues_at_every_evaluation():
    from bumps.modadd.train import config_fields

    stored = {k: v for k, v in ModAddConfig.from_preset("nanda").as_dict().items() if k != "neuron_every"}
    assert config_fields(stored)["neuron_every"] == 0
    assert config_fields({**stored, "neuron_every": 200})["neuron_every"] == 200


def test_a_diverged_run_keeps_a_finite_final_neuron_table(tmp_path):
    cfg = ModAddConfig.from_preset("nanda", epochs=200, **{**TINY, "lr": 1e4, "warmup": 0, "neuron_every": 50})
    run = train(cfg, tmp_path / "div.pt")
    if run["config"]["stop_reason"] != "diverged":
        pytest.skip("this configuration did not diverge here")
    assert torch.isfinite(run["neuron_freq"]).all() and run["neuron_step"][-1] <= run["step"][-1]
