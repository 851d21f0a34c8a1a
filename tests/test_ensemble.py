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
    """Least squares, each member's loss scaled by its own stacked ``scale`` (1 + seed), so that rows of a
    task's own stack must follow the members out through ``_select``."""

    updates: list[int] = []  # steps of every _update, over all trainers of a test
    starts: list[int] = []  # the step at each _start
    crash_at: int | None = None  # raise (as a killed process would stop) at the start of this step

    def __init__(self, *args):
        super().__init__(*args)
        if self.active:
            self.scale = torch.tensor([1.0 + self.members[i].cfg.seed for i in self.active], dtype=torch.float64)

    def _start(self) -> None:
        self.starts.append(self.step)

    def _select(self, index: torch.Tensor) -> None:
        super()._select(index)
        self.scale = self.scale[index]

    def _update(self) -> float:
        if self.step == self.crash_at:
            raise RuntimeError("killed")
        self.updates.append(self.step)
        batches = [_batch(self.members[i].cfg, self.step) for i in self.active]
        x = torch.stack([b[0] for b in batches])  # [M, B, d]
        y = torch.stack([b[1] for b in batches])  # [M, B]
        with self._tracked():
            loss = self.scale * ((x @ self.params["w"][..., None])[..., 0] - y).pow(2).mean(1)  # [M]
            grads = self._grads(loss.sum())
        if self.step % self.cfg.record_every == 0:
            for j, i in enumerate(self.active):
                self.members[i].recorder.record(self.step, loss=loss[j].detach(), w=self.params["w"][j])
        self._adamw_step(grads)
        return float(loss[0].detach())


@pytest.fixture(autouse=True)
def _fresh_counters(monkeypatch):
    monkeypatch.setattr(_Trainer, "updates", [])
    monkeypatch.setattr(_Trainer, "starts", [])
    monkeypatch.setattr(_Trainer, "crash_at", None)


def train(configs, outs, resume="auto", stop_at=None, autosave_every=0):
    outs = ensemble.prepare(configs, outs, resume, ("d",), "train")
    members = [_Member(c, o) for c, o in zip(configs, outs, strict=True)]
    ensemble.resume_members(members, resume)
    _Trainer(members, ("w",), None, autosave_every, stop_at).run()
    return [m.run for m in members]


def _final_w(run: dict) -> torch.Tensor:
    return run["resume"]["params"]["w"]


def test_each_member_equals_its_single_run(tmp_path):
    settings = ((0, 0.3, 0.1, 4), (1, 0.2, 0.0, 0), (2, 0.5, 1.0, 10))  # seed, lr, weight decay, warm-up
    configs = [LeastSquares(seed=s, lr=lr, weight_decay=wd, warmup=w) for s, lr, wd, w in settings]
    together = train(configs, [tmp_path / f"m{c.seed}.pt" for c in configs])
    for c, run in zip(configs, together, strict=True):
        alone = train([c], [tmp_path / f"alone{c.seed}.pt"])[0]
        assert torch.equal(_final_w(run), _final_w(alone))
        assert torch.equal(run["loss"], alone["loss"]) and torch.equal(run["step"], alone["step"])
    assert float(together[0]["loss"][-1]) < float(together[0]["loss"][0]) / 10  # it learns


def test_one_member_follows_torch_adamw_with_linear_warmup(tmp_path):
    cfg = LeastSquares(seed=5, lr=0.2, weight_decay=0.3, warmup=6, steps=20)
    ours = _final_w(train([cfg], [tmp_path / "r.pt"])[0])
    w = torch.randn(cfg.d, generator=torch.Generator().manual_seed(cfg.seed), dtype=torch.float64)
    w.requires_grad_(True)
    opt = torch.optim.AdamW([w], lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(step / cfg.warmup, 1.0))
    for step in range(cfg.steps):
        x, y = _batch(cfg, step)
        opt.zero_grad()
        ((1.0 + cfg.seed) * (x @ w - y).pow(2).mean()).backward()
        opt.step()
        sched.step()
    torch.testing.assert_close(ours, w.detach(), rtol=1e-12, atol=1e-12)


def test_members_of_different_lengths_finish_at_their_own_steps(tmp_path):
    configs = [LeastSquares(seed=0, steps=10), LeastSquares(seed=1, steps=25)]
    short, long = train(configs, [tmp_path / "a.pt", tmp_path / "b.pt"])
    assert short["resume"]["step"] == 10 and long["resume"]["step"] == 25
    alone = train([configs[1]], [tmp_path / "alone.pt"])[0]
    assert torch.equal(_final_w(long), _final_w(alone))  # the rows of params and scale left with the short one
    assert load_recorded(tmp_path / "a.pt")["config"]["final"]


def test_interrupt_then_rerun_continues_exactly(tmp_path):
    cfg = LeastSquares(seed=3)
    with pytest.raises(Interrupted, match="rerun the same command"):
        train([cfg], [tmp_path / "r.pt"], stop_at=13)
    saved = load_recorded(tmp_path / "r.pt")
    assert saved["resume"]["step"] == 13 and not saved["config"]["final"]
    del _Trainer.updates[:]
    resumed = train([cfg], [tmp_path / "r.pt"])[0]
    assert _Trainer.updates == list(range(13, 30)) and _Trainer.starts == [0, 13]
    assert resumed["config"]["run_id"] == saved["config"]["run_id"]  # continued, not started again
    straight = train([cfg], [tmp_path / "s.pt"])[0]
    assert torch.equal(_final_w(resumed), _final_w(straight))
    assert torch.equal(resumed["loss"], straight["loss"]) and torch.equal(resumed["step"], straight["step"])


def test_a_member_whose_steps_end_at_the_interrupt_is_final(tmp_path):
    configs = [LeastSquares(seed=0, steps=10), LeastSquares(seed=1, steps=30)]
    with pytest.raises(Interrupted, match="b.pt"):
        train(configs, [tmp_path / "a.pt", tmp_path / "b.pt"], stop_at=10)
    a, b = load_recorded(tmp_path / "a.pt"), load_recorded(tmp_path / "b.pt")
    assert a["config"]["final"] and a["resume"]["step"] == 10
    assert not b["config"]["final"] and b["resume"]["step"] == 10


def test_autosave_is_where_a_killed_process_continues(tmp_path):
    cfg = LeastSquares(seed=6)
    _Trainer.crash_at = 8
    with pytest.raises(RuntimeError, match="killed"):
        train([cfg], [tmp_path / "r.pt"], autosave_every=5)
    saved = load_recorded(tmp_path / "r.pt")
    assert saved["resume"]["step"] == 5 and not saved["config"]["final"]
    _Trainer.crash_at = None
    del _Trainer.updates[:]
    resumed = train([cfg], [tmp_path / "r.pt"], autosave_every=5)[0]
    assert _Trainer.updates[0] == 5  # steps 5-7 again, from the autosave
    straight = train([cfg], [tmp_path / "s.pt"])[0]
    assert torch.equal(_final_w(resumed), _final_w(straight)) and torch.equal(resumed["loss"], straight["loss"])


def test_a_finished_run_is_kept_and_extended_by_more_steps(tmp_path):
    cfg = LeastSquares(seed=4, steps=12)
    first = train([cfg], [tmp_path / "e.pt"])[0]
    written = (tmp_path / "e.pt").stat().st_mtime_ns
    del _Trainer.updates[:]
    again = train([cfg], [tmp_path / "e.pt"])[0]
    assert _Trainer.updates == [] and again["config"]["run_id"] == first["config"]["run_id"]
    assert (tmp_path / "e.pt").stat().st_mtime_ns == written  # kept as it is, not written again
    longer = train([dataclasses.replace(cfg, steps=20)], [tmp_path / "e.pt"])[0]
    assert _Trainer.updates == list(range(12, 20))
    straight = train([dataclasses.replace(cfg, steps=20)], [tmp_path / "s.pt"])[0]
    assert longer["resume"]["step"] == 20 and torch.equal(_final_w(longer), _final_w(straight))
    del _Trainer.updates[:]
    train([cfg], [tmp_path / "n.pt"], resume="never")
    train([cfg], [tmp_path / "n.pt"], resume="never")
    assert len(_Trainer.updates) == 2 * cfg.steps  # never: trained again from the start


def test_refusals(tmp_path):
    a, b = LeastSquares(seed=0), LeastSquares(seed=1, steps=40)
    with pytest.raises(BumpsError, match="equal d"):
        train([a, dataclasses.replace(b, d=6)], [tmp_path / "x.pt", tmp_path / "y.pt"])
    for field, value in (("betas", (0.8, 0.9)), ("eps", 1e-6), ("record_every", 4), ("loss_dtype", "float32")):
        with pytest.raises(BumpsError, match=f"equal {field}"):  # what the stacked step shares
            train([a, dataclasses.replace(b, **{field: value})], [tmp_path / "x.pt", tmp_path / "y.pt"])
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
        (dict(lr=True), "`lr` must be a positive number"),
        (dict(weight_decay=-1.0), "must be >= 0"),
        (dict(data_seed=-2), "must be >= 0"),
        (dict(dtype="float16"), "must be float64 or float32"),
    ):
        with pytest.raises(BumpsError, match=message):
            LeastSquares(**bad).validate()


@dataclass(frozen=True)
class _Sized(StepConfig):
    steps: int = 10
    d_model: int = 8
    n_heads: int = 2
    train_size: int | None = None


def test_check_sizes_refuses_non_positive_or_bool_sizes_and_uneven_heads():
    _Sized().check_sizes("steps", "d_model")
    _Sized(train_size=5).check_sizes("steps")
    for bad, message in (
        (dict(steps=0), "`steps` must be a positive integer"),
        (dict(steps=True), "`steps` must be a positive integer"),
        (dict(steps=2.0), "`steps` must be a positive integer"),
        (dict(train_size=0), "`train_size` must be a positive integer"),
        (dict(n_heads=3), "`d_model` 8 must be divisible by `n_heads` 3"),
        (dict(n_heads=0), "`n_heads` must be a positive integer"),
    ):
        with pytest.raises(BumpsError, match=message):
            _Sized(**bad).check_sizes("steps", "d_model")
