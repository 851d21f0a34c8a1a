"""Make the screenshots on the docs page (docs/images/view/*.png): ``python -m tests.view.screenshots``.

Trains small runs that grok (p = 23, half the pairs for training; a few minutes on one core) under
``runs/view/docs/`` unless they are there already, serves each view, and writes one PNG per view
(a finished mod-add run, the toy model, a folder of ablation variants, a sweep, a run in progress).
"""

from __future__ import annotations

import argparse
import shutil
import threading
from pathlib import Path

import torch

from bumps.io.runfile import atomic_save
from bumps.lowrank.model import LowRankConfig, simulate
from bumps.modadd.model import ModAddConfig
from bumps.modadd.train import train
from bumps.view import Target, make_server, url_of
from tests.view.chromium import Browser
from tests.view.fixtures import sweep_folder, truncated

ROOT = Path(__file__).resolve().parents[2]
GROKS = dict(p=23, train_frac=0.5, epochs=8000, eval_every=50, checkpoint_every=0, stop_after_grok=1500)


def make_runs(work: Path) -> dict[str, Path]:
    """The runs the screenshots show (reused when present)."""
    torch.set_num_threads(1)
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "ablation"
    for name, extra in (("baseline_seed0", {}), ("wd2_seed0", {"weight_decay": 2.0})):
        out = folder / f"{name}.pt"
        if not out.exists():
            train(ModAddConfig.from_preset("nanda", seed=0, **{**GROKS, **extra}), out)
    toy = work / "toy.pt"
    if not toy.exists():
        atomic_save(simulate(LowRankConfig(rank=4, seeds=4, steps=3000)), toy)
    sweep = work / "sweep"
    if not sweep.exists():
        sweep_folder(work)
    live = work / "live" / "training.pt"
    full = torch.load(folder / "baseline_seed0.pt", weights_only=True)
    atomic_save(truncated(full, len(full["step"]) // 2), live)
    return {"modadd": folder / "baseline_seed0.pt", "toy": toy, "ablation": folder, "sweep": sweep, "live": live}


def shoot(browser: Browser, path: Path, out: Path, height: int, events: bool = True) -> Path:
    server = make_server(Target.open(path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.goto(url_of(server))
        browser.wait_for("document.body.dataset.ready === '1'", timeout=60)
        if events:
            browser.wait_for("document.body.dataset.eventsReady === '1'", timeout=120)
        browser.wait_for("document.querySelector('#error') === null")
        return browser.screenshot(out, full_height=height, scale=0.6)
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "view" / "docs", help="Where the runs are made.")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "view", help="Where the PNGs go.")
    args = ap.parse_args()
    runs = make_runs(args.work)
    args.out.mkdir(parents=True, exist_ok=True)
    with Browser(width=1280, height=900) as b:
        for name, height, events in (
            ("modadd", 2900, True),
            ("toy", 1900, True),
            ("ablation", 1000, False),
            ("sweep", 1100, False),
            ("live", 1200, True),
        ):
            print("wrote", shoot(b, runs[name], args.out / f"{name}.png", height, events))
    shutil.rmtree(args.work / "live")


if __name__ == "__main__":
    main()
