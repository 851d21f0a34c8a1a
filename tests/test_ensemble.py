"""bumps.ensemble on a task that is no model: least squares, each member its own seed and batches.

An ensemble member must follow exactly the equations of its own single run, through interrupts, resumes,
and members that finish at different steps; the core's checks refuse what cannot be trained together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch

from bumps import ensemble
from bumps.ensemble import Interrupted, Member, StackedTrainer, StepConfig
from bumps.errors import BumpsError
from bumps.recorder import load_recorded


@dataclass(frozen=True)
class LeastSquares(StepConfig):
    seed: int = 0
    data_seed: int | None = None
    steps: int = 30
    d: int = 5
    lr: float = 0.3
    warmup: int = 4
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.98)
    eps: float = 1e-8
    record_every: int = 3
    loss_dtype: str = "float64"
    dtype: str = "float64"
    device: str = "cpu"

    def validate(self) -> None:
        if self.steps <= 0:
            raise BumpsError(f"`steps` must be > 0 (got {self.steps})")
        self.check_training()


def _batch(cfg: LeastSquares, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 * cfg.the_data_seed + step)
    x = torch.randn(16, cfg.d, generator=g, dtype=torch.float64)
    target = torch.arange(1.0, cfg.d + 1, dtype=torch.float64)
    return x, x @ target


class _Member(Member):
    noun = "a least-squares run"

    def __init__(self, cfg: LeastSquares, out, command=None):
        w = torch.randn(cfg.d, generator=torch.Generator().manual_seed(cfg.seed), dtype=torch.float64)
        super().__init__(cfg, out, command, {"w": w}, {"loss": (), "w": ("coord",)}, {"task": "least squares"})


class _Trainer(StackedTrainer):
    def _update(self) -> float:
        batches = [_batch(self.members[i].cfg, self.step) for i in self.active]
        x = torch.stack([b[0] for b in batches])  # [M, B, d]
        y = torch.stack([b[1] for b in batches])  # [M, B]
        with self._tracked():
            loss = ((x @ self.params["w"][..., None])[..., 0] - y).pow(2).mean(1)  # [M]
            grads = self._grads(loss.sum())
        if self.step % self.cfg.record_every == 0:
            for j, i in enumerate(self.active):
                self.members[i].recorder.record(self.step, loss=loss[j].detach(), w=self.params["w"][j])
        self._adamw_step(grads)
        return float(loss[0].detach())


def train(configs, outs, resume="auto", stop_at=None, autosave_every=0):
    outs = ensemble.prepare(configs, outs, resume, ("d", "betas", "eps", "device"), "train")
    members = [_Member(c, o) for c, o in zip(configs, outs, strict=True)]
    ensemble.resume_members(members, resume)
    _Trainer(members, ("w",), None, autosave_every, stop_at).run()
    return [m.run for m in members]


def _final_w(run: dict) -> torch.Tensor:
    return run["resume"]["params"]["w"]


def test_each_member_equals_its_single_run(tmp_path):
    configs = [LeastSquares(seed=s, lr=lr) for s, lr in ((0, 0.3), (1, 0.2), (2, 0.5))]
    together = train(configs, [tmp_path / f"m{c.seed}.pt" for c in configs])
    for c, run in zip(configs, together, strict=True):
        alone = train([c], [tmp_path / f"alone{c.seed}.pt"])[0]
        assert torch.equal(_final_w(run), _final_w(alone))
        assert torch.equal(run["loss"], alone["loss"]) and torch.equal(run["step"], alone["step"])
    assert not torch.equal(_final_w(together[0]), _final_w(together[1]))
    assert float(together[0]["loss"][-1]) < float(together[0]["loss"][0]) / 10  # it learns


def test_members_of_different_lengths_finish_at_their_own_steps(tmp_path):
    configs = [LeastSquares(seed=0, steps=10), LeastSquares(seed=1, steps=25)]
    short, long = train(configs, [tmp_path / "a.pt", tmp_path / "b.pt"])
    assert short["resume"]["step"] == 10 and long["resume"]["step"] == 25
    alone = train([configs[1]], [tmp_path / "alone.pt"])[0]
    assert torch.equal(_final_w(long), _final_w(alone))
    assert load_recorded(tmp_path / "a.pt")["config"]["final"]


def test_interrupt_then_rerun_continues_exactly(tmp_path):
    cfg = LeastSquares(seed=3)
    with pytest.raises(Interrupted, match="rerun the same command"):
        train([cfg], [tmp_path / "r.pt"], stop_at=13)
    saved = load_recorded(tmp_path / "r.pt")
    assert saved["resume"]["step"] == 13 and not saved["config"]["final"]
    resumed = train([cfg], [tmp_path / "r.pt"])[0]
    straight = train([cfg], [tmp_path / "s.pt"])[0]
    assert torch.equal(_final_w(resumed), _final_w(straight))
    assert torch.equal(resumed["loss"], straight["loss"])


def test_a_finished_run_is_kept_and_extended_by_more_steps(tmp_path):
    cfg = LeastSquares(seed=4, steps=12)
    first = train([cfg], [tmp_path / "e.pt"])[0]
    again = train([cfg], [tmp_path / "e.pt"])[0]
    assert torch.equal(_final_w(first), _final_w(again))
    longer = train([dataclasses.replace(cfg, steps=20)], [tmp_path / "e.pt"])[0]
    straight = train([dataclasses.replace(cfg, steps=20)], [tmp_path / "s.pt"])[0]
    assert longer["resume"]["step"] == 20 and torch.equal(_final_w(longer), _final_w(straight))


def test_refusals(tmp_path):
    a, b = LeastSquares(seed=0), LeastSquares(seed=1, steps=40)
    with pytest.raises(BumpsError, match="equal d"):
        train([a, dataclasses.replace(b, d=6)], [tmp_path / "x.pt", tmp_path / "y.pt"])
    with pytest.raises(BumpsError, match="same `out`"):
        train([a, b], [tmp_path / "x.pt", tmp_path / "x.pt"])
    with pytest.raises(BumpsError, match="one out per config"):
        train([a, b], [tmp_path / "x.pt"])
    with pytest.raises(BumpsError, match="`resume` must be auto or never"):
        train([a], [tmp_path / "x.pt"], resume="sometimes")
    with pytest.raises(Interrupted):
        train([a], [tmp_path / "x.pt"], stop_at=5)
    with pytest.raises(BumpsError, match="different steps"):
        train([a, b], [tmp_path / "x.pt", tmp_path / "y.pt"])  # x.pt is at step 5, y.pt starts at 0
    torch.save({"kind": "other"}, tmp_path / "z.pt")
    with pytest.raises(BumpsError, match="not a least-squares run this can continue"):
        train([a], [tmp_path / "z.pt"])


def test_run_paths_and_default_run_path():
    configs = [LeastSquares(seed=0), LeastSquares(seed=7)]
    assert ensemble.run_paths(configs, None, "lsq", LeastSquares()) == [
        ensemble.default_run_path("lsq", c, LeastSquares()) for c in configs
    ]
    assert ensemble.default_run_path("lsq", configs[1], LeastSquares()).as_posix() == "runs/lsq_seed7.pt"
    # steps and device do not make a new file; any other setting does
    assert ensemble.default_run_path("lsq", LeastSquares(steps=99), LeastSquares()).name == "lsq_seed0.pt"
    tagged = ensemble.default_run_path("lsq", LeastSquares(lr=0.7), LeastSquares()).name
    assert tagged.startswith("lsq_") and tagged.endswith("_seed0.pt") and tagged != "lsq_seed0.pt"
    assert [p.name for p in ensemble.run_paths(configs, "out/r{seed}.pt", "lsq", LeastSquares())] == [
        "r0.pt",
        "r7.pt",
    ]
    with pytest.raises(BumpsError, match=r"must contain \{seed\}.*runs/lsq_seed\{seed\}\.pt"):
        ensemble.run_paths(configs, "out/r.pt", "lsq", LeastSquares())


def test_step_config_methods():
    cfg = LeastSquares(seed=3, lr=0.1)
    assert cfg.the_data_seed == 3 and LeastSquares(seed=3, data_seed=8).the_data_seed == 8
    assert LeastSquares.from_dict({**cfg.as_dict(), "written_by": "an older version"}) == cfg
    for bad, message in (
        (dict(lr=0.0), "`lr` must be a positive number"),
        (dict(lr=float("nan")), "`lr` must be a positive number"),
        (dict(weight_decay=-1.0), "must be >= 0"),
        (dict(data_seed=-2), "must be >= 0"),
        (dict(dtype="float16"), "must be float64 or float32"),
    ):
        with pytest.raises(BumpsError, match=message):
            LeastSquares(**bad).validate()


def test_the_data_seed_decides_the_batches(tmp_path):
    a, b, c = LeastSquares(seed=0, data_seed=5), LeastSquares(seed=0, data_seed=5), LeastSquares(seed=0, data_seed=6)
    ra, rb, rc = train([a, b, c], [tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"])
    assert torch.equal(_final_w(ra), _final_w(rb)) and not torch.equal(_final_w(ra), _final_w(rc))
