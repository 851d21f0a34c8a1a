"""bumps.induction.transfer: the loss of a run's weights on sequences of another placement."""

from __future__ import annotations

import math

import torch

from bumps.induction.data import Layout, fixed_sets
from bumps.induction.model import InductionConfig
from bumps.induction.train import test_losses as losses_on
from bumps.induction.train import train_induction
from bumps.induction.transfer import TRANSFER_SEED, placement_loss

SMALL = dict(n_ctx=25, vocab=20, sub_len=4, d_model=16, n_heads=2, batch_size=8, lr=1e-2, warmup=0)


def _run(tmp_path):
    cfg = InductionConfig(**SMALL, steps=8, record_every=4, checkpoint_every=4)
    return train_induction([cfg], [tmp_path / "r.pt"], autosave_every=0)[0], cfg


def test_placement_loss_reads_the_weights_on_sequences_of_the_asked_placement(tmp_path):
    run, cfg = _run(tmp_path)
    params = {k: v[None] for k, v in run["resume"]["params"].items()}
    for placement in ("gaps", "end", "consecutive"):
        lay = Layout(25, 20, 4, 3, placement)
        (tokens, starts), _ = fixed_sets(lay, 64, 1, TRANSFER_SEED)
        want = losses_on(params, tokens, starts, cfg)[1]
        assert math.isclose(placement_loss(run, placement, n=64), want, rel_tol=1e-12)
    assert placement_loss(run, "gaps", n=64) != placement_loss(run, "end", n=64)
    # a checkpoint's weights, not the last ones
    assert placement_loss(run, "gaps", n=64, at=0) != placement_loss(run, "gaps", n=64)


def test_a_model_that_predicts_nothing_scores_chance_everywhere(tmp_path):
    run, _ = _run(tmp_path)
    run["resume"]["params"]["W_U"] = torch.zeros_like(run["resume"]["params"]["W_U"])
    for placement in ("gaps", "end", "consecutive"):
        assert math.isclose(placement_loss(run, placement, n=32), math.log(20), rel_tol=1e-9)
