"""Time `bumps view` opening a big mod-add run (goal: first page payload < 2 s).

Synthesises a run file of the shape `bumps grok` writes for the nanda preset over 25k epochs
(p = 113, evaluation every 100 epochs: 251 records; ``neuron_freq`` [251, 512, 56] float32;
``train_loss_every_epoch`` [25000]; the final weights and the resume state with AdamW moments),
then times, from a cold cache:

* **first payload**: load the file (``weights_only=True``) and build + JSON-encode the page's
  first payload (the page payload: every scalar series as a min/max envelope, the wavetable);
* **naive payload**: the same load, then every series at full resolution and the whole neuron
  table in one JSON (what a page without downsampling and lazy records would fetch first);
* **record**: one record's spectrum and neuron table (what the slider fetches);
* **events**: the detector on the run (asked for after the page is drawn): first
  the curves (scalar series, frequency norms), then the unit families (the neuron table);
* **in Chromium** (where it is installed): from navigating to the served page to the page drawn
  (``body[data-ready]``), to the curves' events drawn, and to every event drawn.

Prints each time and size, and the ratio naive / first.

    .venv/bin/python benchmarks/bench_view.py [--epochs 25000] [--keep runs/bench_view.pt]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bumps.io.runfile import atomic_save, atomic_write, new_run
from bumps.modadd.model import ModAddConfig, init_params
from bumps.view.data import record_payload, run_payload
from bumps.view.events import run_events
from bumps.view.files import Target


def synthetic_run(epochs: int = 25_000, eval_every: int = 100, seed: int = 0) -> dict:
    """A mod-add run dict of the shape and dtypes `bumps grok` records (values: smooth curves plus noise)."""
    cfg = ModAddConfig.from_preset("nanda", epochs=epochs, eval_every=eval_every)
    rng = np.random.default_rng(seed)
    steps = np.arange(0, epochs + 1, eval_every)
    t = len(steps)
    f = (cfg.p - 1) // 2
    s = np.linspace(0, 1, t)[:, None]
    grok = 1 / (1 + np.exp(-(s - 0.4) * 30))

    def f64(x):
        return torch.tensor(x, dtype=torch.float64)

    freq = np.abs(1 + 0.3 * rng.standard_normal((t, f))).cumsum(0) / np.arange(1, t + 1)[:, None]
    nf = rng.random((t, cfg.d_mlp, f)).astype(np.float32)
    nf /= nf.sum(-1, keepdims=True)
    params = init_params(cfg)
    loss_epoch = 4.7 * np.exp(-np.arange(epochs) / 800) + 1e-7 + 1e-3 * rng.random(epochs)
    series = {
        "train_loss": f64(4.7 * np.exp(-steps / 800) + 1e-7),
        "test_loss": f64(5 * (1 - grok[:, 0]) + 1e-6),
        "train_acc": f64(np.minimum(1, steps / 1500)),
        "test_acc": f64(grok[:, 0]),
        "freq_norm": torch.tensor(freq, dtype=torch.float32),
        "freq_norm_wl": torch.tensor(freq[:, ::-1].copy(), dtype=torch.float32),
        "neuron_freq": torch.from_numpy(nf),
        **{k: f64(grok[:, 0] * 0.5) for k in ("gini_embed", "gini_neuron_logit", "gini_freq_embed")},
        "gini_freq_neuron_logit": f64(grok[:, 0] * 0.6),
        "sum_sq_weights": f64(2000 * (1 - 0.7 * grok[:, 0])),
    }
    config = {**cfg.as_dict(), "epochs_done": epochs, "final": True, "stop_reason": "epochs", "first_epoch": 0}
    moments = {k: {"m": torch.zeros_like(v), "v": torch.zeros_like(v)} for k, v in params.items()}
    return new_run(
        "modadd",
        config,
        step=torch.tensor(steps, dtype=torch.int64),
        **series,
        train_loss_every_epoch=f64(loss_epoch),
        grok_epoch=int(steps[int(np.argmax(grok[:, 0] > 0.99))]),
        test_loss_below_1e6_epoch=-1,
        final_params=params,
        resume={"params": params, "optimizer": moments, "epoch": epochs, "records": {}},
        key_freqs=torch.tensor([14, 35, 41, 42, 52]),
        key_freqs_official=torch.tensor([14, 35, 41, 42, 52]),
        single_freq_neuron_fraction=0.85,
    )


def naive_payload(run: dict) -> dict:
    """Every recorded array at full resolution, the whole neuron table included."""
    return {k: v.tolist() for k, v in run.items() if isinstance(v, torch.Tensor) and v.ndim}


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def browser_times(path: Path) -> tuple[float, float, float] | None:
    """Seconds from navigation to the page drawn, the curves' events drawn and every event drawn, in headless
    Chromium (None without it)."""
    import sys
    import threading

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bumps.view.server import make_server, url_of
    from tests.view.chromium import Browser, chromium_path

    if chromium_path() is None:
        return None
    server = make_server(Target.open(path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Browser() as b:
            t = time.perf_counter()
            b.goto(url_of(server))
            b.wait_for("document.body.dataset.ready === '1'", timeout=60)
            drawn = time.perf_counter() - t
            b.wait_for("document.body.dataset.eventsPart", timeout=120)
            curves = time.perf_counter() - t
            b.wait_for("document.body.dataset.eventsReady === '1'", timeout=300)
            return drawn, curves, time.perf_counter() - t
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=25_000)
    ap.add_argument("--keep", type=Path, default=None, help="Write the synthetic run here (default: a temp dir).")
    ap.add_argument(
        "--out", type=Path, default=None, help="Write view_benchmark.md into this folder (the docs embed it)."
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "big.pt"
        atomic_save(synthetic_run(args.epochs), path)
        mb = path.stat().st_size / 1e6

        def first():
            target = Target.open(path)  # cold: a new cache, the file read and checked
            return json.dumps(run_payload(target.load(target.root), path.name), allow_nan=False)

        def naive():
            target = Target.open(path)
            return json.dumps(naive_payload(target.load(target.root)))

        t_first, body = timed(first, 3)
        t_naive, naive_body = timed(naive, 1)
        run = Target.open(path).load(path)
        t_record, rec = timed(lambda: json.dumps(record_payload(run, len(run["step"]) // 2)), 3)
        t_curves, curves = timed(lambda: run_events(run, "curves"), 1)
        t_units, units = timed(lambda: run_events(run, "units"), 1)
        in_browser = browser_times(path)
    shape = tuple(run["neuron_freq"].shape)
    rows = [
        ("load + first page payload", f"{t_first:.3f} s", f"{len(body) / 1e3:.0f} kB"),
        ("the naive payload (every array at full resolution)", f"{t_naive:.3f} s", f"{len(naive_body) / 1e6:.0f} MB"),
        ("one record for the slider", f"{t_record:.3f} s", f"{len(rec) / 1e3:.0f} kB"),
        ("events of the curves (scalar series, frequency norms)", f"{t_curves:.2f} s", f"{len(curves)} events"),
        ("events of the neuron table (every event kind)", f"{t_units:.2f} s", f"{len(units)} events"),
    ]
    if in_browser is not None:
        drawn, curve_events, every = in_browser
        rows += [
            ("in headless Chromium: the page drawn", f"{drawn:.2f} s", ""),
            ("in headless Chromium: the curves' events drawn", f"{curve_events:.2f} s", ""),
            ("in headless Chromium: every event drawn", f"{every:.2f} s", ""),
        ]
    lines = [
        f"Synthetic run: {mb:.1f} MB, `neuron_freq` {list(shape)}, `train_loss_every_epoch` [{args.epochs}]; "
        f"the first payload is {t_naive / t_first:.0f}x faster and {len(naive_body) / len(body):.0f}x smaller "
        "than the naive one (goal for the first payload: < 2 s). Made by "
        "`python benchmarks/bench_view.py --out reports/`"
        + ("" if in_browser is not None else " (Chromium not installed: no browser rows)")
        + ".",
        "",
        "| step | time | size |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out / "view_benchmark.md", lambda fh: fh.write(text.encode()))


if __name__ == "__main__":
    main()
