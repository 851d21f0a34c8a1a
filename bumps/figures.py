"""The figures of the post (toy model) and of the paper (mod-add), regenerated into figures/.

Every figure is computed here from simulations or run files; nothing is hard-coded
except the configurations, which are listed in each function.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bumps.analysis import SERIES, Source, analyze
from bumps.competition import norm_decay_end
from bumps.detect import orient_by_peak
from bumps.lowrank import LowRankConfig, simulate
from bumps.plots import _figure, clearest_event, draw_event, save_png

TOY = dict(dim=100, lr=0.01, init_scale=0.1, record_every=10)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _loss_panel(ax, ranks, optimizer, steps, seeds, lr, title, init_scale=TOY["init_scale"]):
    for c, r in enumerate(ranks):
        run = simulate(LowRankConfig(rank=r, seeds=seeds, steps=steps, optimizer=optimizer,
                                     **{**TOY, "lr": lr, "init_scale": init_scale}))
        loss = run["loss"].numpy() / (0.5 * r)  # ½‖A‖² = r/2 for unit targets: start near 1
        loss = np.clip(loss, 1e-16, None)
        below = loss < 0.9
        t90 = int(np.median(run["step"].numpy()[below.argmax(0)])) if below.any(0).all() else None
        ax.semilogy(run["step"], np.median(loss, 1), color=f"C{c}", lw=2,
                    label=f"rank {r} (90% of loss left at step {t90})")
        ax.semilogy(run["step"], loss, color=f"C{c}", lw=0.4, alpha=0.4)
    ax.set_xlabel("step")
    ax.set_ylabel("loss / ½‖A‖²")
    ax.set_ylim(1e-8, 3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def fig_loss_by_rank(out: Path) -> Path:
    """GD loss for ranks 1, 2, 4, 10, 100 (d = 100): the plateau shrinks as rank grows."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _loss_panel(ax, [1, 2, 4, 10, 100], "gd", 2500, 8, TOY["lr"],
                "GD, d=100, σ=0.1, lr=0.01: median (thick) and 8 seeds (thin)")
    return save_png(fig, out / "lowrank_loss_by_rank.png")


def fig_adam_loss_by_rank(out: Path) -> Path:
    """GD vs Adam from a small init (σ = 0.01) at ranks 1, 4, 10, 100.

    With GD full rank escapes ~4x sooner than rank 1; with Adam every rank sits on
    a plateau of about the same length (Adam's per-entry step does not grow with
    the signal), so full rank "regains" a plateau relative to rank 1.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    _loss_panel(axes[0], [1, 4, 10, 100], "gd", 1500, 8, TOY["lr"], "GD, σ=0.01, lr=0.01", 0.01)
    _loss_panel(axes[1], [1, 4, 10, 100], "adam", 1500, 8, 3e-4, "Adam, σ=0.01, lr=3e-4", 0.01)
    return save_png(fig, out / "lowrank_adam_vs_gd.png")


def _best_bump_seed(run, min_rank: int) -> int:
    """The seed whose largest inner-product bump is biggest (0 if no bump)."""
    if run["config"]["rank"] < min_rank:
        return 0
    result = analyze(Source([(SERIES["lowrank"][0], run["inner_a"].numpy())], run["step"].numpy(), None))
    if not result["bumps"]:
        return 0
    return max(result["bumps"], key=lambda b: b["drop"])["index"][0]


def fig_inner_products(out: Path) -> Path:
    """|a_m·ã_k| over training for ranks 1, 2, 4: norm decay, plateau, S-curve, bumps."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5), sharex=True)
    for col, r in enumerate((1, 2, 4)):
        run = simulate(LowRankConfig(rank=r, seeds=16, steps=2000, **TOY))
        n = _best_bump_seed(run, 2)
        step = run["step"].numpy()
        x = orient_by_peak(run["inner_a"].numpy()[:, n])  # [T, r, K]
        decay = norm_decay_end(np.concatenate([run["norm_a"].numpy(), run["norm_b"].numpy()], -1))[n]
        ax = axes[0, col]
        for m in range(r):
            for k in range(r):
                ax.plot(step, x[:, m, k], color=f"C{k}", ls=["-", "--", ":", "-."][m % 4], lw=1.3,
                        label=f"target {m} · learned {k}" if r <= 2 or m == 0 else None)
        ax.axvspan(0, step[decay], color="0.85", zorder=0, label="norm-decay phase")
        ax.set_title(f"rank {r}, seed {n}: inner product with truth a_m·ã_k (sign: by peak)", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
        ax = axes[1, col]
        ax.semilogy(step, run["loss"].numpy()[:, n].clip(1e-16), color="k", label="loss")
        ax.semilogy(step, run["norm_a"].numpy()[:, n], lw=1, label="|ã_k|")
        ax.axvspan(0, step[decay], color="0.85", zorder=0)
        ax.set_xlabel("step")
        ax.set_title("loss and learned-vector norms", fontsize=9)
        ax.legend(fontsize=7)
    return save_png(fig, out / "lowrank_inner_products.png")


def fig_competition(out: Path) -> Path:
    """The rank-4 competition picture, chosen from detector output (largest loser drop)."""
    run = simulate(LowRankConfig(rank=4, seeds=64, steps=3000, **TOY))
    spec = SERIES["lowrank"][0]
    result = analyze(Source([(spec, run["inner_a"].numpy())], run["step"].numpy(), None))
    fig, axes = _figure(2)
    ev = clearest_event(result["competition"])
    x = orient_by_peak(run["inner_a"].numpy())[:, ev["index"][0]].transpose(0, 2, 1)  # [T, K, r]
    draw_event(axes[0], x, run["step"].numpy(), ev,
               f"seed {ev['index'][0]}: learned {ev['loser']} and {ev['winner']} both grow toward "
               f"target {ev['target']}; {ev['loser']} turns to target {ev['new_target']}")
    axes[0].set_ylabel("a_m · ã_k")
    s = result["summary"]["inner_a"]
    drops = np.array([b["drop"] for b in result["bumps"]])
    heights = np.array([b["height"] for b in result["bumps"]])
    axes[1].scatter(heights, drops, s=8, c=[b["explained_by_competition"] for b in result["bumps"]], cmap="coolwarm")
    axes[1].set_xlabel("bump peak height")
    axes[1].set_ylabel("drop")
    axes[1].set_title(f"all {s['bumps']} bumps in 64 seeds: {s['explained_by_competition']} explained by "
                      f"competition (red), chance baseline {s['explained_by_chance_baseline']}", fontsize=9)
    return save_png(fig, out / "lowrank_competition.png")


LOWRANK_FIGURES = (fig_loss_by_rank, fig_inner_products, fig_competition, fig_adam_loss_by_rank)


def make_lowrank_figures(out: str | Path = "figures") -> list[Path]:
    out = Path(out)
    return [f(out) for f in LOWRANK_FIGURES]


# ---------------------------------------------------------------------------- mod-add


def phase_boundaries(run: dict) -> dict[str, int]:
    """Memorisation / circuit formation / cleanup boundaries from the curves (the paper chose them by eye).

    * memorisation ends at the test-loss peak;
    * cleanup starts when the test loss first falls below half that peak;
    * cleanup ends when the sum of squared weights has completed 90% of its fall from
      the start of cleanup to the end of the run.
    """
    step = run["step"].numpy()
    test = run["test_loss"].numpy()
    ssw = run["sum_sq_weights"].numpy()
    i1 = int(test.argmax())
    after = np.flatnonzero((np.arange(len(test)) > i1) & (test < test[i1] / 2))
    out = {"memorisation_end": int(step[i1])}
    if len(after):
        i2 = int(after[0])
        out["cleanup_start"] = int(step[i2])
        target = ssw[i2] - 0.9 * (ssw[i2] - ssw[-1])
        done = np.flatnonzero((np.arange(len(ssw)) >= i2) & (ssw <= target))
        if len(done):
            out["cleanup_end"] = int(step[done[0]])
    return out


def _phases(ax, phases: dict[str, int]) -> None:
    for i, (name, epoch) in enumerate(phases.items()):
        ax.axvline(epoch, color="k", ls=":", lw=1)
        ax.text(epoch, 0.98 - 0.1 * i, f" {name.replace('_', ' ')} {epoch}", transform=ax.get_xaxis_transform(),
                fontsize=7, va="top", backgroundcolor=(1, 1, 1, 0.7))


def fig_modadd_losses(run: dict, out: Path) -> Path:
    plt = _plt()
    phases = phase_boundaries(run)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    step = run["step"].numpy()
    ax = axes[0]
    ax.semilogy(step, run["train_loss"], label="train loss")
    ax.semilogy(step, run["test_loss"], label="test loss")
    if "restricted_loss" in run:
        cs = run["checkpoint_step"].numpy()
        ax.semilogy(cs, run["restricted_loss"], "o-", ms=3, label="restricted loss (key freqs only)")
        ax.semilogy(cs, run["excluded_loss"], "s-", ms=3, label="excluded loss (key freqs removed, train)")
    _phases(ax, phases)
    ax.set_xlabel("epoch")
    ax.set_title(f"p={run['config']['p']}, preset {run['config']['preset']}: grok epoch {run['grok_epoch']}, "
                 f"key freqs {run['key_freqs'].tolist()}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ax = axes[1]
    ax.plot(step, run["train_acc"], label="train accuracy")
    ax.plot(step, run["test_acc"], label="test accuracy")
    _phases(ax, phases)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)
    return save_png(fig, out / "modadd_losses.png")


def fig_modadd_freq_norms(run: dict, out: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    step, norms = run["step"].numpy(), run["freq_norm"].numpy()
    keys = set(run["key_freqs"].tolist())
    for k in range(norms.shape[1]):
        if k + 1 not in keys:
            axes[0].plot(step, norms[:, k], color="0.75", lw=0.6)
    for c, k in enumerate(sorted(keys)):
        axes[0].plot(step, norms[:, k - 1], color=f"C{c}", lw=2, label=f"frequency {k}")
    _phases(axes[0], phase_boundaries(run))
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("‖W_E‖ per frequency (cos+sin)")
    axes[0].set_title("embedding norm per frequency over training (key frequencies coloured)", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].bar(np.arange(1, norms.shape[1] + 1), norms[-1],
                color=["C3" if k + 1 in keys else "0.6" for k in range(norms.shape[1])])
    axes[1].set_xlabel("frequency k")
    axes[1].set_title(f"final W_E spectrum; {100 * run['single_freq_neuron_fraction']:.0f}% of neurons "
                      "≥85% one frequency", fontsize=9)
    return save_png(fig, out / "modadd_freq_norms.png")


def fig_modadd_weights(run: dict, out: Path) -> Path:
    plt = _plt()
    phases = phase_boundaries(run)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    step = run["step"].numpy()
    axes[0].plot(step, run["sum_sq_weights"])
    axes[0].set_title("sum of squared weights", fontsize=9)
    axes[1].plot(step, run["gini_embed"], label="Gini of W_E's Fourier component norms")
    axes[1].plot(step, run["gini_neuron_logit"], label="Gini of W_L's Fourier component norms")
    axes[1].legend(fontsize=7)
    for ax in axes:
        _phases(ax, phases)
        ax.set_xlabel("epoch")
    return save_png(fig, out / "modadd_weights_gini.png")


def fig_modadd_bumps(path: Path, out: Path) -> Path:
    """The bumps that matter: key frequencies' W_E and W_L norms and the neurons' key-frequency shares.

    Left, middle: every key frequency's norm with its bumps marked, non-key frequencies in grey
    (their bumps are mostly the trivial memorise-then-clean-up shape, counted in the title).
    Right: the neurons with the largest key-frequency bumps (per-unit), each bump's peak marked.
    Classes from :func:`bumps.modadd_bumps.classify_bumps`.
    """
    from bumps.modadd_bumps import classify_bumps
    from bumps.runfile import load_run

    plt = _plt()
    run = load_run(path, kind="modadd")
    rows = classify_bumps(run)
    step = run["step"].numpy()
    keys = sorted(int(k) for k in run["key_freqs"])
    phases = phase_boundaries(run)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), constrained_layout=True)
    for ax, series, label in ((axes[0], "freq_norm", "‖W_E‖ per frequency"),
                              (axes[1], "freq_norm_wl", "‖W_L‖ per frequency")):
        x = run[series].numpy()
        for k in range(x.shape[1]):
            if k + 1 not in keys:
                ax.plot(step, x[:, k], color="0.8", lw=0.5)
        for c, k in enumerate(keys):
            ax.plot(step, x[:, k - 1], color=f"C{c}", lw=2, label=f"k={k}")
        mine = [r for r in rows if r["series"] == series]
        for r in mine:
            if r["key"]:
                c = keys.index(r["freq"])
                ax.plot(r["peak_step"], x[r["peak"], r["freq"] - 1], "v", color=f"C{c}", ms=9, mec="k")
                ax.axvspan(r["start_step"], r["end_step"], color=f"C{c}", alpha=0.08)
        _phases(ax, phases)
        n_key = sum(r["key"] for r in mine)
        n_triv = sum(r["trivial"] for r in mine)
        ax.set_title(f"{label}: {n_key} key-frequency bumps (▼), {len(mine) - n_key} non-key "
                     f"({n_triv} trivial memorise→clean-up)", fontsize=8)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    nf = run["neuron_freq"].numpy()
    neuron_rows = sorted((r for r in rows if r["series"] == "neuron_freq" and r["key"]),
                         key=lambda r: -r["drop"])[:6]
    for c, r in enumerate(neuron_rows):
        axes[2].plot(step, nf[:, r["unit"], r["freq"] - 1], color=f"C{c}", lw=1.5,
                     label=f"neuron {r['unit']}, k={r['freq']} ({r['phase']})")
        axes[2].plot(r["peak_step"], nf[r["peak"], r["unit"], r["freq"] - 1], "v", color=f"C{c}", ms=8, mec="k")
    _phases(axes[2], phases)
    n_neuron = sum(r["series"] == "neuron_freq" and r["key"] for r in rows)
    axes[2].set_title(f"neurons' share of a key frequency: {n_neuron} bumps (largest 6 drawn)", fontsize=8)
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("fraction of the neuron's variance")
    axes[2].legend(fontsize=6)
    fig.suptitle(f"{Path(path).name}: key frequencies {keys}", fontsize=9)
    return save_png(fig, out / "modadd_bumps.png")


def make_modadd_figures(out: str | Path = "figures", run_path: str | Path | None = None) -> list[Path]:
    """Figures from an existing mod-add run (default runs/modadd_nanda_seed0.pt); trains one if missing."""
    from bumps.runfile import load_run

    out = Path(out)
    path = Path(run_path or "runs/modadd_nanda_seed0.pt")
    if not path.exists():
        if run_path is not None:
            from bumps.errors import BumpsError

            raise BumpsError(f"no such run file: {path}; train one with bumps grok --out {path}")
        from bumps.grok import train
        from bumps.modadd import ModAddConfig

        train(ModAddConfig.from_preset("nanda"), path)
    run = load_run(path, kind="modadd")
    return [fig_modadd_losses(run, out), fig_modadd_freq_norms(run, out), fig_modadd_weights(run, out),
            fig_modadd_bumps(path, out)]
