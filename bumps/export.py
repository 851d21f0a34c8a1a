"""Move runs out of bumps: a mod-add model into TransformerLens, any run's curves into tidy tables.

* :func:`to_transformer_lens` turns a mod-add run's weights (final, or a checkpoint
  epoch) into ``{"cfg": HookedTransformerConfig kwargs, "state_dict": ...}`` for
  ``HookedTransformer(HookedTransformerConfig(**cfg)).load_state_dict(state_dict)``
  (transformer-lens < 4; checked against 3.9). Parameter names and shapes already
  follow TransformerLens; what bumps does not train is filled with zeros (attention
  biases, ``b_U``, and the MLP biases of presets that freeze them at 0).
* :func:`tidy_columns` lays every recorded series of one or many runs out in long
  form: one row per (run, step, series, index) with the index columns named by the
  series' axes (frequency is the 1-based frequency k; the others count from 0).

transformer-lens, pandas and pyarrow are never imported here: the file is plain
torch/CSV and parquet needs only pyarrow (``pip install 'bumps[parquet]'``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from bumps.analysis import SERIES
from bumps.errors import BumpsError
from bumps.runfile import atomic_save, atomic_write, is_run, load_run, safe_load

FORMATS = ("transformer-lens", "csv", "parquet")
N_CTX = 3  # [a, b, =]

# ---------------------------------------------------------------------------- series layout

# Series exported per run kind: key -> (axes after time, the run key holding its steps).
# Keys in bumps.analysis.SERIES take their axes from there; the rest are listed here.
_EXTRA: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "lowrank": {"loss": (("seed",), "step")},
    "modadd": {
        **{k: ((), "step") for k in ("train_loss", "test_loss", "train_acc", "test_acc", "gini_embed",
                                      "gini_neuron_logit", "gini_freq_embed", "gini_freq_neuron_logit",
                                      "sum_sq_weights")},
        "restricted_loss": ((), "checkpoint_step"),
        "excluded_loss": ((), "checkpoint_step"),
        "train_loss_every_epoch": ((), "epoch"),  # value at index e: the loss after e updates
    },
}
AXIS_ORDER = ("seed", "target", "learned", "neuron", "frequency")
AXIS_OFFSET = {"frequency": 1}  # frequency index i is frequency k = i + 1


def series_layout(kind: str) -> dict[str, tuple[tuple[str, ...], str]]:
    """Every exported series of a run kind: key -> (axis names after time, steps key)."""
    if kind not in _EXTRA:
        raise BumpsError(f"cannot export a '{kind}' run; bumps exports {', '.join(_EXTRA)} runs")
    out = {spec.key: (spec.axes, "step") for spec in SERIES[kind]}
    out.update(_EXTRA[kind])
    return out


def _steps(run: dict, key: str, n: int) -> np.ndarray:
    if key == "epoch":
        return np.arange(n, dtype=np.int64)
    return np.asarray(run[key], dtype=np.int64)


def iter_series(run: dict) -> Iterator[tuple[str, tuple[str, ...], np.ndarray, np.ndarray]]:
    """(key, axes, steps [T], values [T, ...] float64) for every recorded series present in ``run``."""
    for key, (axes, step_key) in series_layout(run["kind"]).items():
        if key not in run or (step_key != "epoch" and step_key not in run):
            continue
        values = torch.as_tensor(run[key]).detach().cpu().to(torch.float64).numpy()
        steps = _steps(run, step_key, values.shape[0])
        if values.ndim != 1 + len(axes) or values.shape[0] != len(steps):
            raise BumpsError(f"run series {key!r} has shape {tuple(values.shape)}; expected [T={len(steps)}"
                             f"{''.join(', ' + a for a in axes)}]")
        yield key, axes, steps, values


def tidy_chunk(run_name: str, key: str, axes: tuple[str, ...], steps: np.ndarray, values: np.ndarray,
               all_axes: tuple[str, ...]) -> dict[str, np.ndarray | None]:
    """Long-form columns of one series: run, step, series, one column per axis (None: not this series'), value."""
    t, shape = values.shape[0], values.shape[1:]
    per_step = int(np.prod(shape)) if shape else 1
    grid = np.indices(shape).reshape(len(shape), -1) if shape else np.zeros((0, 1), dtype=np.int64)
    cols: dict[str, np.ndarray | None] = {
        "run": np.full(t * per_step, run_name, dtype=object),
        "step": np.repeat(steps, per_step),
        "series": np.full(t * per_step, key, dtype=object),
    }
    for name in all_axes:
        if name in axes:
            cols[name] = np.tile(grid[axes.index(name)], t).astype(np.int64) + AXIS_OFFSET.get(name, 0)
        else:
            cols[name] = None
    cols["value"] = values.reshape(-1)
    return cols


def find_runs(path: str | Path) -> list[tuple[str, dict]]:
    """(name, run) for a run file, or for every run file in a sweep folder (recursively; *_ckpt skipped)."""
    path = Path(path)
    if not path.exists():
        raise BumpsError(f"no such file or folder: {path}")
    if not path.is_dir():
        return [(path.stem, load_run(path))]
    runs = []
    for f in sorted(path.rglob("*.pt")):
        rel = f.relative_to(path)
        if f.name.startswith(".") or any(part.endswith("_ckpt") for part in rel.parts[:-1]):
            continue
        obj = safe_load(f)
        if is_run(obj):
            runs.append((rel.with_suffix("").as_posix(), obj))
    if not runs:
        raise BumpsError(f"{path} holds no bumps run files (*.pt with format 'bumps.run')")
    return runs


def tidy_columns(runs: list[tuple[str, dict]]) -> Iterator[dict[str, np.ndarray | None]]:
    """Long-form column chunks, one per (run, series), all with the same column names."""
    present = {a for _, run in runs for _, (axes, _) in series_layout(run["kind"]).items() for a in axes}
    all_axes = tuple(a for a in AXIS_ORDER if a in present)
    for name, run in runs:
        for key, axes, steps, values in iter_series(run):
            yield tidy_chunk(name, key, axes, steps, values, all_axes)


def _n_chunks(runs) -> int:
    return sum(1 for _, run in runs for key in series_layout(run["kind"]) if key in run)


def write_csv(chunks, out: str | Path, progress: Callable[[int], None] | None = None) -> Path:
    """Write long-form chunks to one CSV (values as shortest round-trip decimals; empty: axis not used)."""
    def write(fh) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        w = csv.writer(text, lineterminator="\n")
        header = None
        for i, cols in enumerate(chunks):
            if header is None:
                header = list(cols)
                w.writerow(header)
            n = len(cols["value"])
            w.writerows(zip(*[("",) * n if cols[c] is None else cols[c].tolist() for c in header], strict=True))
            if progress:
                progress(i + 1)
        text.flush()
        text.detach()

    return atomic_write(out, write)


def write_parquet(chunks, out: str | Path, progress: Callable[[int], None] | None = None) -> Path:
    """Write long-form chunks to one parquet file (index columns nullable int64, run/series dictionary-encoded)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BumpsError("writing parquet needs pyarrow: pip install 'bumps[parquet]' (or export --to csv)") from None
    tables = []
    for i, cols in enumerate(chunks):
        arrays = {}
        n = len(cols["value"])
        for c, v in cols.items():
            if c in ("run", "series"):
                arrays[c] = pa.array(v.tolist(), pa.string()).dictionary_encode()
            elif v is None:
                arrays[c] = pa.nulls(n, pa.int64())
            else:
                arrays[c] = pa.array(v)
        tables.append(pa.table(arrays))
        if progress:
            progress(i + 1)
    table = pa.concat_tables(tables, promote_options="permissive")
    return atomic_write(out, lambda fh: pq.write_table(table, fh))


# ---------------------------------------------------------------------------- TransformerLens


def _ckpt_dir(run_path: Path) -> Path:
    return run_path.with_name(run_path.stem + "_ckpt")  # as bumps.grok writes them


def _run_id(run: dict) -> str | None:
    rid = run.get("run_id", (run.get("config") or {}).get("run_id"))
    return None if rid is None else str(rid)


def read_checkpoint(path: str | Path) -> tuple[int, dict[str, torch.Tensor], str | None]:
    """(epoch, params, run id or None) from a weight checkpoint, old ({epoch, params}) or new (+ run_id, ...)."""
    obj = safe_load(path)
    if not isinstance(obj, dict) or "epoch" not in obj or not isinstance(obj.get("params"), dict):
        raise BumpsError(f"{path} is not a bumps weight checkpoint (needs keys 'epoch' and 'params')")
    rid = obj.get("run_id")
    return int(obj["epoch"]), obj["params"], None if rid is None else str(rid)


def modadd_params(run: dict, run_path: str | Path, epoch: int | None = None) -> tuple[int, dict[str, torch.Tensor]]:
    """The weights of a mod-add run: final, or at ``epoch`` from its checkpoint folder."""
    if run.get("kind") != "modadd":
        raise BumpsError(f"{run_path} is a '{run.get('kind')}' run; only modadd runs export to transformer-lens")
    done = int(run["config"].get("epochs_done", -1))
    if epoch is None:
        return done, run["final_params"]
    ckpt_dir = _ckpt_dir(Path(run_path))
    ckpt = ckpt_dir / f"epoch_{epoch:06d}.pt"
    if not ckpt.exists():
        if epoch == done:
            return done, run["final_params"]
        have = sorted(int(f.stem.split("_")[1]) for f in ckpt_dir.glob("epoch_*.pt")) if ckpt_dir.is_dir() else []
        listed = (f"checkpoints at epochs {', '.join(map(str, have[:6]))}{', ...' if len(have) > 6 else ''} "
                  f"and the final epoch {done}") if have else f"no checkpoints in {ckpt_dir}; the final epoch is {done}"
        raise BumpsError(f"--epoch {epoch}: no checkpoint {ckpt} ({listed})")
    got, params, rid = read_checkpoint(ckpt)
    mine = _run_id(run)
    if rid is not None and mine is not None and rid != mine:
        raise BumpsError(f"{ckpt} belongs to run {rid}, not to {run_path} (run {mine}); it is a stale checkpoint")
    if got != epoch:
        raise BumpsError(f"{ckpt} holds epoch {got}, not {epoch}")
    return got, params


def tl_config(cfg: dict, dtype: torch.dtype) -> dict:
    """HookedTransformerConfig keyword arguments for a bumps mod-add config dict."""
    p = int(cfg["p"])
    return {
        "n_layers": 1, "d_model": int(cfg["d_model"]), "d_head": int(cfg["d_model"]) // int(cfg["n_heads"]),
        "n_heads": int(cfg["n_heads"]), "d_mlp": int(cfg["d_mlp"]), "d_vocab": p + 1,
        "d_vocab_out": p + 1 if cfg["out_vocab"] == "p+1" else p, "n_ctx": N_CTX, "act_fn": "relu",
        "normalization_type": None, "attn_only": False, "positional_embedding_type": "standard",
        "default_prepend_bos": False, "dtype": dtype,
    }


def tl_state_dict(params: dict[str, torch.Tensor], cfg: dict, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """TransformerLens state dict: bumps' weights plus zeros for everything bumps does not train."""
    d, h, m = cfg["d_model"], cfg["n_heads"], cfg["d_mlp"]
    dh, v_out = d // h, params["W_U"].shape[1]
    w = {k: v.detach().cpu().to(dtype) for k, v in params.items()}
    z = lambda *shape: torch.zeros(shape, dtype=dtype)  # noqa: E731
    return {
        "embed.W_E": w["W_E"],  # [d_vocab, d_model]
        "pos_embed.W_pos": w["W_pos"],  # [n_ctx, d_model]
        "blocks.0.attn.W_Q": w["W_Q"], "blocks.0.attn.W_K": w["W_K"], "blocks.0.attn.W_V": w["W_V"],  # [H, d, dh]
        "blocks.0.attn.W_O": w["W_O"],  # [H, dh, d]
        "blocks.0.attn.b_Q": z(h, dh), "blocks.0.attn.b_K": z(h, dh), "blocks.0.attn.b_V": z(h, dh),
        "blocks.0.attn.b_O": z(d),
        # buffers in the 2.x layout (transformer-lens 3.x keeps its own mask when the shapes differ)
        "blocks.0.attn.mask": torch.tril(torch.ones(N_CTX, N_CTX, dtype=torch.bool)),
        "blocks.0.attn.IGNORE": torch.tensor(-torch.inf),
        "blocks.0.mlp.W_in": w["W_in"], "blocks.0.mlp.b_in": w.get("b_in", z(m)),  # [d, m], [m]
        "blocks.0.mlp.W_out": w["W_out"], "blocks.0.mlp.b_out": w.get("b_out", z(d)),  # [m, d], [d]
        "unembed.W_U": w["W_U"], "unembed.b_U": z(v_out),  # [d, d_vocab_out]
    }


def to_transformer_lens(run: dict, run_path: str | Path, epoch: int | None = None,
                        dtype: str | None = None) -> dict:
    """{"cfg", "state_dict", "bumps"} for a mod-add run at ``epoch`` (default: final weights)."""
    got, params = modadd_params(run, run_path, epoch)
    if dtype is not None and dtype not in ("float32", "float64"):
        raise BumpsError(f"--dtype must be float32 or float64 (got {dtype!r})")
    dt = getattr(torch, dtype) if dtype else params["W_E"].dtype
    cfg = run["config"]
    return {"cfg": tl_config(cfg, dt), "state_dict": tl_state_dict(params, cfg, dt),
            "bumps": {"run": os.fspath(run_path), "epoch": got, "config": cfg}}


# ---------------------------------------------------------------------------- entry point


def export(path: str | Path, to: str, out: str | Path, epoch: int | None = None, dtype: str | None = None,
           progress_factory: Callable[[int], tuple] | None = None) -> Path:
    """`bumps export`: write ``path`` (run file, or sweep folder for tables) to ``out`` in format ``to``.

    ``progress_factory(total)`` returns (context manager, advance(i) callback) for long table writes.
    """
    if to not in FORMATS:
        raise BumpsError(f"--to must be one of {', '.join(FORMATS)} (got {to!r})")
    path, out = Path(path), Path(out)
    if to == "transformer-lens":
        if path.is_dir():
            raise BumpsError(f"{path} is a folder; --to transformer-lens exports one run file")
        if out.resolve() == path.resolve():
            raise BumpsError(f"output {out} is the run file itself; choose another OUT")
        return atomic_save(to_transformer_lens(load_run(path), path, epoch, dtype), out)
    if epoch is not None or dtype is not None:
        raise BumpsError(f"--epoch and --dtype apply to --to transformer-lens only, not --to {to}")
    runs = find_runs(path)
    inputs = {path / f"{name}.pt" for name, _ in runs} if path.is_dir() else {path}
    if out.resolve() in {p.resolve() for p in inputs}:
        raise BumpsError(f"output {out} would overwrite an input run; choose another OUT")
    for _, run in runs:
        series_layout(run["kind"])  # refuse unknown kinds before writing anything
    writer = write_csv if to == "csv" else write_parquet
    total = _n_chunks(runs)
    if progress_factory is None:
        return writer(tidy_columns(runs), out)
    bar, advance = progress_factory(total)
    with bar:
        return writer(tidy_columns(runs), out, advance)
