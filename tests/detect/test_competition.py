"""Competition events and the norm-decay phase."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bumps.detect.competition import find_competition, norm_decay_end

t = np.linspace(0, 1, 300)


def sig(center, rate=25.0):
    return 1 / (1 + np.exp(-rate * (t - center)))


def story():
    """Unit 0 rises toward target 0, then turns to target 1 as unit 1 catches up on target 0."""
    x = np.zeros((t.size, 3, 2))
    x[:, 0, 0] = 0.6 * sig(0.2) * (1 - sig(0.55))
    x[:, 1, 0] = sig(0.35, 12)
    x[:, 0, 1] = sig(0.6)
    x[:, 2, 1] = 0.05 * t  # a bystander
    return x


def test_constructed_competition_is_found_with_the_right_roles():
    (ev,) = find_competition(story())
    assert (ev.target, ev.loser, ev.winner, ev.new_target) == (0, 0, 1, 1)
    assert ev.start < ev.peak < ev.end
    assert ev.loser_drop > 0.4 and ev.winner_gain_during_fall > 0.2 and ev.new_target_gain > 0.2


def test_no_event_without_a_winner_or_a_new_target():
    x = story()
    no_winner = x.copy()
    no_winner[:, 1, 0] = 0.0
    assert find_competition(no_winner) == []
    no_new_target = x.copy()
    no_new_target[:, 0, 1] = 0.0
    assert find_competition(no_new_target) == []


def test_partners_from_an_unrelated_run_explain_nothing_here():
    x = story()
    still = np.zeros_like(x)
    assert find_competition(x, partners=still) == []
    assert len(find_competition(x, partners=x)) == 1


def test_the_loser_keeps_its_own_new_target_curve_under_partners():
    x = story()
    partners = x.copy()
    partners[:, 0, 1] = 0.0  # the partner run's unit 0 never gains target 1
    assert len(find_competition(x, partners=partners)) == 1  # the loser's own gain still counts
    own = x.copy()
    own[:, 0, 1] = 0.0
    assert find_competition(own, partners=x) == []  # ...and a partner's gain never does


def test_windows_are_local_to_the_bump():
    # A "winner" that rises only long after the loser's fall (outside the half-drop
    # window) does not explain the bump, though it ends higher than at the peak.
    x = story()
    x[:, 1, 0] = sig(0.95, 40)
    assert find_competition(x) == []


@st.composite
def alignment(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    units, targets = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.standard_normal((60, units, targets)), axis=0)
    return x, rng.permutation(units), rng.permutation(targets)


@settings(max_examples=60, deadline=None)
@given(alignment())
def test_events_do_not_depend_on_numbering_of_units_and_targets(case):
    x, pu, pt = case
    y = x[:, pu][:, :, pt]  # y[:, i, j] = x[:, pu[i], pt[j]]
    key = lambda e, u, g: (g[e.target], u[e.loser], u[e.winner], g[e.new_target], e.peak)  # noqa: E731
    ident_u, ident_t = np.arange(x.shape[1]), np.arange(x.shape[2])
    events_x = {key(e, ident_u, ident_t) for e in find_competition(x)}
    events_y = {key(e, pu, pt) for e in find_competition(y)}
    assert events_x == events_y


def test_norm_decay_end():
    steps = np.arange(6) * 10
    norms = np.array([3.0, 2.0, 1.5, 1.4, 1.6, 2.0])[:, None, None] * np.ones((1, 2, 3))
    norms[:, 1] = np.array([1.0, 1.1, 1.2, 1.3, 1.4, 1.5])[:, None]  # never decays
    assert norm_decay_end(norms, steps).tolist() == [30, 0]
