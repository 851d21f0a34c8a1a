"""Content or offset: a trained model's predictable loss on sequences whose repeats sit elsewhere.

With repeats back to back (placement ``"consecutive"`` or ``"end"``) the token to predict is always the
one 15 positions back, so a head that attends at that fixed offset does the job as well as an induction
head (which finds the previous occurrence of the current token by content). Sequences with random gaps
between the repeats (placement ``"gaps"``) tell them apart: only the content-based circuit keeps its
predictable loss low there. :func:`placement_loss` measures it from a run file's weights.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from bumps.induction.data import fixed_sets
from bumps.induction.model import InductionConfig
from bumps.induction.train import test_losses

TRANSFER_SEED = 2_000_000_007  # data seed of the transfer sets: never a training or test seed of a study


def placement_loss(run: dict, placement: str = "gaps", n: int = 512, at: int | None = None) -> float:
    """Predictable-position loss of a run's model on ``n`` fresh sequences of another placement.

    Parameters
    ----------
    run : dict
        A loaded :mod:`bumps.induction.train` run file (its ``resume`` weights, or a checkpoint).
    placement : {"consecutive", "end", "gaps"}, default "gaps"
        Where the repeats of the evaluation sequences go (:mod:`bumps.induction.data`); every other size
        is the run's.
    n : int, default 512
        Sequences, drawn from the seed :data:`TRANSFER_SEED`.
    at : int, optional
        Step of the checkpoint to read (a key of ``run["checkpoints"]``); None: the run's last weights.

    Returns
    -------
    float
        Mean cross-entropy (nats) over the predictable predictions (chance: ln vocab).
    """
    cfg = replace(InductionConfig.from_dict(run["config"]), placement=placement, device="cpu")
    state = run["resume"] if at is None else run["checkpoints"][str(at)]
    params = {k: v[None].to(getattr(torch, cfg.dtype)) for k, v in state["params"].items()}
    (tokens, starts), _ = fixed_sets(cfg.layout, n, 1, TRANSFER_SEED)
    with torch.no_grad():
        return test_losses(params, tokens, starts, cfg)[1]
