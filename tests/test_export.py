"""`bumps export`: TransformerLens files that reproduce bumps' logits, tidy tables that hold every value."""

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bumps.errors import BumpsError
from bumps.export import export
from bumps.io.runfile import atomic_save, read_checkpoint
from bumps.io.tidy import find_runs, iter_series, series_layout
from bumps.lowrank.model import LowRankConfig, simulate
from bumps.modadd.export import modadd_params
from bumps.modadd.model import ModAddConfig, all_pairs, forward_last
from bumps.modadd.train import train

ROOT = Path(__file__).resolve().parents[1]
HAS_TL = importlib.util.find_spec("transformer_lens") is not None
HAS_ARROW = importlib.util.find_spec("pyarrow") is not None
SMALL = dict(p=13, d_model=32, d_mlp=64, n_heads=4, epochs=30, eval_every=10, checkpoint_every=10, lr=1e-2)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: intra-op threads only add overhead (and stall on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def modadd_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("modadd")
    runs = {}
    for preset in ("nanda", "tl-demo"):
        out = folder / f"{preset}.pt"
        runs[preset] = (train(ModAddConfig.from_preset(preset, **SMALL), out), out)
    # the nanda preset trains its MLP biases: the export must carry them, not zeros
    assert runs["nanda"][0]["final_params"]["b_in"].abs().max() > 1e-4
    assert "b_in" not in runs["tl-demo"][0]["final_params"]
    return runs


@pytest.fixture(scope="module")
def lowrank_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lowrank") / "toy.pt"
    run = simulate(LowRankConfig(rank=2, dim=10, seeds=3, steps=40, record_every=10))
    atomic_save(run, out)
    return run, out


def bumps_cli(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def assert_one_line_error(proc, match):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0], proc.stderr


# ---------------------------------------------------------------------------- TransformerLens


def _tl_model(path):
    import warnings

    from transformer_lens import HookedTransformer, HookedTransformerConfig

    blob = torch.load(path, weights_only=True)  # the exported file is plain data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.x: "HookedTransformer is deprecated in 4.0"
        model = HookedTransformer(HookedTransformerConfig(**blob["cfg"]))
    model.load_state_dict(blob["state_dict"])  # strict: every key present, none extra
    return model.eval(), blob


@pytest.mark.skipif(not HAS_TL, reason="transformer-lens not installed (optional; see README)")
@pytest.mark.parametrize("preset", ["nanda", "tl-demo"])
@pytest.mark.parametrize("epoch", [None, 10])
def test_transformer_lens_logits_equal_bumps_forward_on_all_inputs(modadd_runs, tmp_path, preset, epoch):
    run, path = modadd_runs[preset]
    out = export(path, "transformer-lens", tmp_path / "tl.pt", epoch=epoch, dtype="float64")
    model, blob = _tl_model(out)
    params = (
        run["final_params"]
        if epoch is None
        else read_checkpoint(path.with_name(f"{preset}_ckpt") / f"epoch_{epoch:06d}.pt")[1]
    )
    params = {k: v.double() for k, v in params.items()}
    tokens = all_pairs(13)  # all p² inputs [a, b, =]
    with torch.no_grad():
        ours = forward_last(params, tokens)
        theirs = model(tokens)[:, -1]
    assert theirs.shape == ours.shape == (169, 14 if preset == "nanda" else 13)
    assert theirs.dtype == torch.float64
    assert (theirs - ours).abs().max().item() < 1e-10
    assert blob["bumps"]["epoch"] == (30 if epoch is None else epoch)
    if epoch is not None:  # a checkpoint differs from the final weights: the test sees which one was used
        assert not torch.allclose(blob["state_dict"]["embed.W_E"], run["final_params"]["W_E"].double())


@pytest.mark.skipif(not HAS_TL, reason="transformer-lens not installed (optional; see README)")
def test_transformer_lens_hooks_see_bumps_activations(modadd_runs, tmp_path):
    run, path = modadd_runs["nanda"]
    model, _ = _tl_model(export(path, "transformer-lens", tmp_path / "tl.pt", dtype="float64"))
    tokens = all_pairs(13)
    params = {k: v.double() for k, v in run["final_params"].items()}
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
        _, acts = forward_last(params, tokens, return_acts=True)
    assert torch.allclose(cache["blocks.0.mlp.hook_post"][:, -1], acts, atol=1e-10, rtol=0)
    pattern = cache["blocks.0.attn.hook_pattern"]  # [batch, head, query, key], causal
    assert pattern.shape == (169, 4, 3, 3)
    assert torch.allclose(pattern.sum(-1), torch.ones(169, 4, 3, dtype=torch.float64))
    assert (pattern[:, :, 0, 1:] == 0).all()
    assert torch.allclose(
        cache["embed.hook_out"] if "embed.hook_out" in cache else cache["hook_embed"], params["W_E"][tokens]
    )


def test_transformer_lens_file_keeps_float32_and_the_trained_biases(modadd_runs, tmp_path):
    run, path = modadd_runs["nanda"]
    blob = torch.load(export(path, "transformer-lens", tmp_path / "tl.pt"), weights_only=True)
    sd = blob["state_dict"]
    assert blob["cfg"]["dtype"] == torch.float32 and blob["cfg"]["d_vocab"] == 14 and blob["cfg"]["n_ctx"] == 3
    assert torch.equal(sd["blocks.0.mlp.b_in"], run["final_params"]["b_in"])
    assert torch.equal(sd["blocks.0.mlp.b_out"], run["final_params"]["b_out"])
    assert not sd["unembed.b_U"].any() and not sd["blocks.0.attn.b_O"].any()
    demo_path = export(modadd_runs["tl-demo"][1], "transformer-lens", tmp_path / "d.pt")
    demo = torch.load(demo_path, weights_only=True)
    assert demo["cfg"]["d_vocab_out"] == 13 and not demo["state_dict"]["blocks.0.mlp.b_in"].any()


def test_checkpoint_reader_accepts_old_and_new_formats(modadd_runs, tmp_path):
    run, path = modadd_runs["nanda"]
    ckpt = path.with_name("nanda_ckpt") / "epoch_000010.pt"
    epoch, params, rid = read_checkpoint(ckpt)
    assert (epoch, rid) == (10, run["config"]["run_id"]) and set(params) == set(run["final_params"])
    old = tmp_path / "old.pt"  # bumps 0.1 checkpoints: no run id
    atomic_save({"epoch": 10, "params": params}, old)
    assert read_checkpoint(old)[0::2] == (10, None)
    # the newer layout adds a run id (and maybe more); a mismatching one is a stale checkpoint
    tagged = tmp_path / "tagged.pt"
    tagged_ckpt = tmp_path / "tagged_ckpt"
    tagged_ckpt.mkdir()
    atomic_save({**run, "run_id": "abc"}, tagged)
    atomic_save({"epoch": 10, "params": params, "run_id": "abc", "extra": 1}, tagged_ckpt / "epoch_000010.pt")
    assert modadd_params({**run, "run_id": "abc"}, tagged, 10)[0] == 10
    with pytest.raises(BumpsError, match="stale checkpoint"):
        modadd_params({**run, "run_id": "other"}, tagged, 10)
    atomic_save({"params": params}, tmp_path / "bad.pt")
    with pytest.raises(BumpsError, match="not a bumps weight checkpoint"):
        read_checkpoint(tmp_path / "bad.pt")


def test_export_bad_input_is_one_line(modadd_runs, lowrank_run, tmp_path):
    _, path = modadd_runs["nanda"]
    assert_one_line_error(
        bumps_cli("export", lowrank_run[1], "--to", "transformer-lens", tmp_path / "x.pt"), "'lowrank' run"
    )
    proc = bumps_cli("export", path, "--to", "transformer-lens", tmp_path / "x.pt", "--epoch", 7)
    assert_one_line_error(proc, "--epoch 7: no checkpoint")
    assert "checkpoints at epochs 0, 10, 20" in proc.stderr
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(BumpsError, match="`to` must be one of transformer-lens, csv, parquet"):
        export(path, "onnx", tmp_path / "x.pt")
    with pytest.raises(BumpsError, match="apply to `to` transformer-lens only"):
        export(path, "csv", tmp_path / "x.csv", epoch=10)
    with pytest.raises(BumpsError, match="would overwrite an input run"):
        export(path, "csv", path)


# ---------------------------------------------------------------------------- tidy tables


def _read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def _check_rows_against_runs(header, rows, runs: dict):
    """Every CSV row's value equals the run tensor at (step, index); every value appears once."""
    col = {c: i for i, c in enumerate(header)}
    seen = {}
    for r in rows:
        run = runs[r[col["run"]]]
        key = r[col["series"]]
        axes, step_key = series_layout(run["kind"])[key]
        steps = np.arange(len(run[key])) if step_key == "epoch" else np.asarray(run[step_key])
        t = int(np.flatnonzero(steps == int(r[col["step"]]))[0])
        idx = tuple(int(r[col[a]]) - (1 if a == "frequency" else 0) for a in axes)
        for a in set(header) - {"run", "step", "series", "value", "status", *axes}:
            if not a.startswith("cfg_"):  # an axis this series lacks is empty
                assert r[col[a]] == ""
        assert float(r[col["value"]]) == float(run[key][(t, *idx)])  # exact: shortest round-trip decimals
        seen[(r[col["run"]], key)] = seen.get((r[col["run"]], key), 0) + 1
    for name, run in runs.items():
        for key, _, _, values in iter_series(run):
            assert seen[(name, key)] == values.size, (name, key)


def test_csv_holds_every_value_of_a_lowrank_run(lowrank_run, tmp_path):
    run, path = lowrank_run
    proc = bumps_cli("export", path, "--to", "csv", tmp_path / "toy.csv")
    assert proc.returncode == 0, proc.stderr
    header, rows = _read_csv(tmp_path / "toy.csv")
    assert header[:8] == ["run", "step", "series", "seed", "target", "learned", "value", "status"]
    assert all(c.startswith("cfg_") for c in header[8:])
    _check_rows_against_runs(header, rows, {"toy": run})
    assert len(rows) == 5 * (3 + 2 * 3 * 4 + 2 * 3 * 2)  # T=5: loss [3], inner_* [3,2,2], norm_* [3,2]


def test_csv_holds_every_value_of_a_modadd_run(modadd_runs, tmp_path):
    run, _ = modadd_runs["nanda"]
    if "restricted_loss" not in run:  # 30 epochs find no key frequency; give it the series a grokked run has
        run = {
            **run,
            "checkpoint_step": torch.tensor([0, 10, 20, 30]),
            "restricted_loss": torch.rand(4, dtype=torch.float64),
            "excluded_loss": torch.rand(4, dtype=torch.float64),
        }
    path = atomic_save(run, tmp_path / "nanda.pt")
    export(path, "csv", tmp_path / "m.csv")
    header, rows = _read_csv(tmp_path / "m.csv")
    assert header[:7] == ["run", "step", "series", "neuron", "frequency", "value", "status"]
    _check_rows_against_runs(header, rows, {"nanda": run})
    assert [r[1] for r in rows if r[2] == "restricted_loss"] == ["0", "10", "20", "30"]
    freqs = {int(r[4]) for r in rows if r[2] == "freq_norm"}
    assert freqs == set(range(1, 7))  # p = 13: frequencies 1..6
    assert {r[2] for r in rows} >= {"restricted_loss", "train_loss_every_epoch", "neuron_freq", "test_acc"}


def test_every_time_series_of_a_run_is_exported(modadd_runs, lowrank_run):
    """A series with time on axis 0 that the export layout forgot would make this fail."""
    for run in (modadd_runs["nanda"][0], lowrank_run[0]):
        t = len(run["step"])
        timed = {
            k for k, v in run.items() if isinstance(v, torch.Tensor) and v.ndim >= 1 and len(v) == t and k != "step"
        }
        assert timed <= set(series_layout(run["kind"])), timed - set(series_layout(run["kind"]))


def test_sweep_folder_is_one_table_with_a_run_column(lowrank_run, modadd_runs, tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / "a_ckpt").mkdir(parents=True)
    run = lowrank_run[0]
    other = simulate(LowRankConfig(rank=2, dim=10, seeds=3, steps=40, record_every=10, seed=1))
    atomic_save(run, sweep / "a.pt")
    atomic_save(other, sweep / "sub" / "b.pt")
    atomic_save({"epoch": 0, "params": {}}, sweep / "a_ckpt" / "epoch_000000.pt")  # not a run: skipped
    (sweep / "manifest.json").write_text("{}")
    assert [n for n, _ in find_runs(sweep)] == ["a", "sub/b"]
    export(sweep, "csv", tmp_path / "sweep.csv")
    header, rows = _read_csv(tmp_path / "sweep.csv")
    _check_rows_against_runs(header, rows, {"a": run, "sub/b": other})
    if importlib.util.find_spec("pandas") is not None:
        import pandas as pd

        df = pd.read_csv(tmp_path / "sweep.csv")
        assert set(df["run"]) == {"a", "sub/b"} and len(df) == len(rows)
        mean = df[df.series == "loss"].groupby("run")["value"].mean()
        assert mean["sub/b"] == pytest.approx(other["loss"].mean().item(), rel=1e-12)


@pytest.mark.skipif(not HAS_ARROW, reason="pyarrow not installed (optional extra bumps[parquet])")
def test_parquet_equals_csv(modadd_runs, tmp_path):
    import pyarrow.parquet as pq

    _, path = modadd_runs["tl-demo"]
    export(path, "csv", tmp_path / "m.csv")
    export(path, "parquet", tmp_path / "m.parquet")
    header, rows = _read_csv(tmp_path / "m.csv")
    table = pq.read_table(tmp_path / "m.parquet").to_pydict()
    assert list(table) == header and len(table["value"]) == len(rows)
    for i in (0, len(rows) // 2, len(rows) - 1):
        for c in header:
            want = rows[i][header.index(c)]
            got = table[c][i]
            assert (got is None and want == "") or str(got) == want or float(got) == float(want)
    assert sum(v is None for v in table["neuron"]) == sum(r[3] == "" for r in rows)


@pytest.mark.skipif(HAS_ARROW, reason="pyarrow is installed here")
def test_parquet_without_pyarrow_names_the_extra(lowrank_run, tmp_path):
    proc = bumps_cli("export", lowrank_run[1], "--to", "parquet", tmp_path / "x.parquet")
    assert_one_line_error(proc, "pip install 'bumps[parquet]'")
    assert not (tmp_path / "x.parquet").exists()


def test_run_settings_are_columns_of_the_tidy_table(lowrank_run, tmp_path):
    """Every row carries its run's status and settings (cfg_*), so the runs of a sweep group by setting."""
    from bumps.io.provenance import settings_of_run
    from bumps.io.tidy import settings_columns

    sweep = tmp_path / "sweep"
    fast = simulate(LowRankConfig(rank=2, dim=10, seeds=3, steps=40, record_every=10, lr=0.02))
    atomic_save(lowrank_run[0], sweep / "slow.pt")
    atomic_save(fast, sweep / "fast.pt")
    partial = {**fast, "config": {**fast["config"], "diverged_step": 30}}
    atomic_save(partial, sweep / "div.pt")
    export(sweep, "csv", tmp_path / "s.csv")
    header, rows = _read_csv(tmp_path / "s.csv")
    col = {c: i for i, c in enumerate(header)}
    settings = settings_of_run(fast["config"])
    assert {f"cfg_{k}" for k in settings} <= set(header) and "cfg_versions" not in header
    by_run = {}
    for r in rows:
        by_run.setdefault(r[col["run"]], set()).add((r[col["cfg_lr"]], r[col["cfg_seeds"]], r[col["status"]]))
    assert by_run == {
        "slow": {("0.01", "3", "finished")},
        "fast": {("0.02", "3", "finished")},
        "div": {("0.02", "3", "diverged (at step 30)")},
    }
    assert {r[col["cfg_singular_values"]] for r in rows} == {"[1.0, 1.0]"}  # lists as JSON text
    names, values = settings_columns([("a", fast), ("b", {**fast, "config": {"lr": 0.5}})])
    assert names[0] == "status" and values[1]["cfg_lr"] == 0.5 and values[1]["cfg_rank"] is None
