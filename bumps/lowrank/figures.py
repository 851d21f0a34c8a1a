"""The toy model's figures (the post's), regenerated into figures/, and the claims report's knockout figure.

Every figure is computed here from simulations or run files; nothing is hard-coded
except the configurations, which are listed in each function.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bumps.detect.analysis import SERIES, Source, analyze
from bumps.detect.bumps import orient_by_peak
from bumps.detect.competition import norm_decay_end
from bumps.detect.plots import clearest_event, draw_event
from bumps.io.png import figure_grid, pyplot, save_png
from bumps.lowrank.model import LowRankConfig, simulate

TOY = dict(dim=100, lr=0.01, init_scale=0.1, record_every=10)


def _loss_panel(ax, ranks, optimizer, steps, seeds, lr, title, init_scale=TOY["init_scale"]):
    for c, r in enumerate(ranks):
        run = simulate(
            LowRankConfig(
                rank=r, seeds=seeds, steps=steps, optimizer=optimizer, **{**TOY, "lr": lr, "init_scale": init_scale}
            )
        )
        loss = run["loss"].numpy() / (0.5 * r)  # ½‖A‖² = r/2 for unit targets: start near 1
        loss = np.clip(loss, 1e-16, None)
        below = loss < 0.9
        t90 = int(np.median(run["step"].numpy()[below.argmax(0)])) if below.any(0).all() else None
        ax.semilogy(
            run["step"], np.median(loss, 1), color=f"C{c}", lw=2, label=f"rank {r} (90% of loss left at step {t90})"
        )
        ax.semilogy(run["step"], loss, color=f"C{c}", lw=0.4, alpha=0.4)
    ax.set_xlabel("step")
    ax.set_ylabel("loss / ½‖A‖²")
    ax.set_ylim(1e-8, 3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def fig_loss_by_rank(out: Path) -> Path:
    """GD loss for ranks 1, 2, 4, 10, 100 (d = 100): the plateau shrinks as rank grows."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _loss_panel(
        ax, [1, 2, 4, 10, 100], "gd", 2500, 8, TOY["lr"], "GD, d=100, σ=0.1, lr=0.01: median (thick) and 8 seeds (thin)"
    )
    return save_png(fig, out / "lowrank_loss_by_rank.png")


def fig_adam_loss_by_rank(out: Path) -> Path:
    """GD vs Adam from a small init (σ = 0.01) at ranks 1, 4, 10, 100.

    With GD full rank escapes ~4x sooner than rank 1; with Adam every rank sits on
    a plateau of about the same length (Adam's per-entry step does not grow with
    the signal), so full rank "regains" a plateau relative to rank 1.
    """
    plt = pyplot()
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
    plt = pyplot()
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
                ax.plot(
                    step,
                    x[:, m, k],
                    color=f"C{k}",
                    ls=["-", "--", ":", "-."][m % 4],
                    lw=1.3,
                    label=f"target {m} · learned {k}" if r <= 2 or m == 0 else None,
                )
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
    fig, axes = figure_grid(2)
    ev = clearest_event(result["competition"])
    x = orient_by_peak(run["inner_a"].numpy())[:, ev["index"][0]].transpose(0, 2, 1)  # [T, K, r]
    draw_event(
        axes[0],
        x,
        run["step"].numpy(),
        ev,
        f"seed {ev['index'][0]}: learned {ev['loser']} and {ev['winner']} both grow toward "
        f"target {ev['target']}; {ev['loser']} turns to target {ev['new_target']}",
    )
    axes[0].set_ylabel("a_m · ã_k")
    s = result["summary"]["inner_a"]
    drops = np.array([b["drop"] for b in result["bumps"]])
    heights = np.array([b["height"] for b in result["bumps"]])
    axes[1].scatter(heights, drops, s=8, c=[b["explained_by_competition"] for b in result["bumps"]], cmap="coolwarm")
    axes[1].set_xlabel("bump peak height")
    axes[1].set_ylabel("drop")
    axes[1].set_title(
        f"all {s['bumps']} bumps in 64 seeds: {s['explained_by_competition']} explained by "
        f"competition (red), chance baseline {s['explained_by_chance_baseline']}",
        fontsize=9,
    )
    return save_png(fig, out / "lowrank_competition.png")


LOWRANK_FIGURES = (fig_loss_by_rank, fig_inner_products, fig_competition, fig_adam_loss_by_rank)
LOWRANK_FIGURE_FILES = (
    "lowrank_loss_by_rank.png",
    "lowrank_inner_products.png",
    "lowrank_competition.png",
    "lowrank_adam_vs_gd.png",
)
# What the toy figures record as their settings: they are fixed by this module's configurations.
LOWRANK_SETTINGS = {"figures": "lowrank", "toy": TOY}


def make_lowrank_figures(out: str | Path = "runs/figures") -> list[Path]:
    """The post's four toy figures (:data:`LOWRANK_FIGURES`), simulated here, into the folder ``out``.

    Parameters
    ----------
    out : str or Path
        The folder for the PNGs (:data:`LOWRANK_FIGURE_FILES`).

    Returns
    -------
    list of pathlib.Path
        The PNGs written.
    """
    out = Path(out)
    return [f(out) for f in LOWRANK_FIGURES]


def knockout_figure(report: dict):
    """Persistence and median drop ratio, competitor vs control, per knockout config and time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    labels, rows = [], []
    for name, s in report["knockout_summary"].items():
        for at in ("peak", "start"):
            if s.get(at, {}).get("bumps"):
                labels.append(f"{name}\n{at}")
                rows.append(s[at])
    x = np.arange(len(rows))
    for ax, (comp, ctl, title) in zip(
        axes,
        [
            ("competitor_persists", "control_persists", "bump persists"),
            ("competitor_drop_ratio", "control_drop_ratio", "median drop ratio"),
        ],
        strict=True,
    ):
        for off, key, color, lab in (
            (-0.18, comp, "C3", "competitor knocked out"),
            (0.18, ctl, "C0", "control knocked out"),
        ):
            v = np.array([r[key]["value"] for r in rows])
            err = np.array([[r[key]["value"] - r[key]["ci_low"], r[key]["ci_high"] - r[key]["value"]] for r in rows]).T
            ax.bar(x + off, v, 0.36, yerr=err if len(rows) else None, color=color, label=lab, capsize=2)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_title(title + " (95% CI over seeds)", fontsize=9)
    axes[0].legend(fontsize=7)
    return fig
