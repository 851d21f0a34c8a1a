"""The diagonal-linear-network positive control: the recursion, the flow, the knockouts, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bumps.dln.claims import jump_errors, jump_summary, run
from bumps.dln.model import DLNConfig, Problems, flow, sample_problems
from bumps.dln.theory import continue_path, saddle_path, switch_offs
from bumps.errors import BumpsError


def _orthonormal(n: int, d: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, d)))
    return q * math.sqrt(n)  # columns with |x|^2 / n = 1, orthogonal


def _decoy_problem(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """x1 = e1, x2 = e2, x0 = (e1 + e2 + e3) / sqrt(3), y = x1 + x2: coordinate 0 switches on, then off."""
    e = _orthonormal(n, 3)
    x = np.stack([(e[:, 0] + e[:, 1] + e[:, 2]) / math.sqrt(3), e[:, 0], e[:, 1]], 1)
    return x, x[:, 1] + x[:, 2]


def test_orthogonal_design_switches_on_at_inverse_correlation():
    x = _orthonormal(10, 4)
    beta = np.array([1.5, -0.5, 0.8, -1.2])
    path = saddle_path(x, x @ beta)
    # grad L(0) = -beta (orthonormal columns): coordinate i switches on at 1 / |beta_i| and stays on
    np.testing.assert_allclose(path.times, np.sort(1 / np.abs(beta)), rtol=1e-9)
    np.testing.assert_allclose(path.betas[-1], beta, atol=1e-9)
    assert [h[0] for h in path.hits] == list(np.argsort(1 / np.abs(beta)))
    assert switch_offs(path) == []


def test_decoy_switches_off_at_the_hand_derived_time():
    x, y = _decoy_problem()
    path = saddle_path(x, y)
    # t1 = 1 / (2 / sqrt 3); then s1 = s2 = t1 grow at rate 1 - 2/3 until 1: t2 = 3 - sqrt 3
    np.testing.assert_allclose(path.times, [math.sqrt(3) / 2, 3 - math.sqrt(3)], rtol=1e-9)
    np.testing.assert_allclose(path.betas[1], [2 / math.sqrt(3), 0, 0], atol=1e-9)
    np.testing.assert_allclose(path.betas[-1], [0, 1, 1], atol=1e-9)
    (off,) = switch_offs(path)
    assert (off.coord, off.causes) == (0, (1, 2))
    np.testing.assert_allclose([off.t_on, off.t_off, off.level], [math.sqrt(3) / 2, 3 - math.sqrt(3), 2 / math.sqrt(3)])
    # removing both causes before t2 keeps the decoy on for good
    ko = continue_path(x, y, path, 1.0, (1, 2))
    assert abs(ko.betas[-1, 0]) > 0.5


def _one(x, y) -> Problems:
    return Problems(x[None], y[None], np.zeros((1, x.shape[1])), [saddle_path(x, y)], [0])


def test_simulation_approaches_theory_as_alpha_shrinks():
    cfg = DLNConfig(t_max=4.0, tail=1.0, record_dt=0.005)
    problems = _one(*_decoy_problem())
    worst = []
    for alpha in (1e-4, 1e-16):
        tr = flow(cfg, problems.gram, problems.corr, alpha)
        errors = [abs(e["error"]) for e in jump_errors(tr, problems)]
        assert len(errors) == 4 and all(np.isfinite(errors))
        worst.append(max(errors))
    assert worst[1] < 0.1 and worst[1] < worst[0] / 2


def test_integrators_agree_and_knocked_out_coordinates_stay_zero():
    cfg = DLNConfig(t_max=3.0, tail=1.0)
    problems = _one(*_decoy_problem())
    g, c = np.repeat(problems.gram, 2, 0), np.repeat(problems.corr, 2, 0)
    keep = np.ones((2, 3), bool)
    keep[1, 1] = False
    tr = flow(cfg, g, c, 1e-8, keep=keep)
    assert (tr.u[:, 1, 1] == 0).all() and (tr.v[:, 1, 1] == 0).all() and (tr.beta[:, 1, 1] == 0).all()
    gd = flow(DLNConfig(t_max=3.0, tail=1.0, integrator="gd", lr=0.001), g, c, 1e-8, keep=keep)
    assert np.abs(gd.beta[-1] - tr.beta[-1]).max() < 0.02
    # a continuation from record 200 with coordinate 2 removed: identical before, exactly zero from it on
    start = np.array([200, 200])
    keep2 = np.ones((2, 3), bool)
    keep2[:, 2] = False
    cont = flow(cfg, g, c, 1e-8, keep=keep2, start=start, ref=tr)
    np.testing.assert_array_equal(cont.beta[:200], tr.beta[:200])
    assert (cont.u[200:, :, 2] == 0).all() and (cont.v[200:, :, 2] == 0).all()


def test_a_small_study_runs_and_finds_the_switch_offs():
    cfg = DLNConfig(problems=3, alphas=(1e-4, 1e-16))
    report = run(cfg)
    small = report["alphas"][-1]
    assert small["find_bumps"]["matched"] == small["find_bumps"]["predicted"] >= 3
    ids = [c["id"] for c in report["claims"]]
    assert "jump_times" in ids and "knockout_competitor" in ids
    roles = {r["role"] for r in report["knockouts"]}
    assert roles == {"none", "competitor", "control"}
    assert all(r["drop_ratio"] == pytest.approx(1.0, abs=0.05) for r in report["knockouts"] if r["role"] == "none")


def test_sampled_problems_all_have_a_switch_off():
    problems = sample_problems(DLNConfig(problems=5))
    assert all(switch_offs(p) for p in problems.paths)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DLNConfig(alphas=(1e-4, 1e-2)).validate(),
        lambda: DLNConfig(n=3, d=5).validate(),
        lambda: DLNConfig(integrator="rk4").validate(),
        lambda: saddle_path(np.full((4, 2), np.nan), np.zeros(4)),
        lambda: saddle_path(np.ones((4, 2)), np.zeros(3)),
        lambda: saddle_path(np.ones((4, 2)), np.zeros(4), removed=(5,)),
    ],
)
def test_bad_input_is_one_line(make):
    with pytest.raises(BumpsError) as err:
        make()
    assert "\n" not in str(err.value)


def test_jump_summary_reports_signed_medians_by_event_kind():
    errors = [
        {"problem": 0, "coord": 0, "kind": "on", "theory": 1.0, "sim": 0.98, "error": -0.02},
        {"problem": 0, "coord": 0, "kind": "off", "theory": 2.0, "sim": 2.1, "error": 0.1},
        {"problem": 1, "coord": 1, "kind": "off", "theory": 2.0, "sim": 2.3, "error": 0.3},
        {"problem": 1, "coord": 2, "kind": "on", "theory": 1.0, "sim": math.nan, "error": math.nan},
    ]
    s = jump_summary(errors, 2)
    assert s["median_signed_error_on"] == pytest.approx(-0.02)  # the missing crossing is left out
    assert s["median_signed_error_off"] == pytest.approx(0.2)
    assert s["missing"] == 1 and s["problems_within_tol"] == 1  # problem 0 at exactly TOL; problem 1 late


def test_rows_read_the_registered_alpha_and_the_limit_row_the_smallest():
    from bumps.dln.claims import REGISTERED_ALPHA, registered_row

    rows = [{"alpha": a} for a in (1e-4, REGISTERED_ALPHA, 1e-32)]
    assert registered_row(rows)["alpha"] == REGISTERED_ALPHA
    assert registered_row(rows[:1])["alpha"] == 1e-4  # not simulated: the smallest there is
    report = run(DLNConfig(problems=2, alphas=(1e-8, 1e-16, 1e-32)))
    claims = {c["id"]: c for c in report["claims"]}
    by_alpha = {a["alpha"]: a["jumps"]["problems_within_tol"] for a in report["alphas"]}
    assert claims["jump_times"]["value"] == pytest.approx(by_alpha[1e-16] / 2)
    assert claims["jump_times_limit"]["value"] == pytest.approx(by_alpha[1e-32] / 2)
