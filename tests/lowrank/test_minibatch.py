"""The minibatch toy factorization: seeded, learns its modes in order of strength, refuses bad sizes."""

from __future__ import annotations

import numpy as np
import pytest

from bumps.errors import BumpsError
from bumps.lowrank.minibatch import MinibatchConfig, train_minibatch


def test_same_seed_same_run_and_other_seed_other_run():
    cfg = MinibatchConfig(steps=300, eval_every=30)
    a, b = train_minibatch(cfg), train_minibatch(cfg)
    assert np.array_equal(a.loss, b.loss) and np.array_equal(a.eval_loss, b.eval_loss)
    c = train_minibatch(MinibatchConfig(steps=300, eval_every=30, seed=1))
    assert not np.array_equal(a.loss, c.loss)
    assert a.eval_step.tolist() == list(range(30, 301, 30))


def test_one_strong_mode_is_learned_and_the_loss_ends_near_the_noise_floor():
    r = train_minibatch(MinibatchConfig(strengths=(8.0,), steps=2000, noise=0.05))
    assert r.eval_loss[-1] < 1e-3 * r.eval_loss[0]
    assert abs(np.median(r.loss[-500:]) / 0.05**2 - 1) < 0.3  # minibatch loss at the noise floor noise²


@pytest.mark.parametrize("field", ["dim", "batch", "steps", "eval_every"])
def test_sizes_below_one_are_refused(field):
    with pytest.raises(BumpsError, match=f"`{field}` must be >= 1"):
        train_minibatch(MinibatchConfig(**{field: 0}))
