"""Seed 001's probe-stencil regulariser ("introspection probe"), for every member of an ensemble at once.

The page: a small probe ``f`` (d_model -> probe_hidden -> ReLU -> d_mlp) predicts the MLP's hidden state
``mlp_hidden = ReLU(mlp_in @ W_in)`` from its input ``mlp_in`` (both at the last position, on the training
inputs). Each epoch: (1) model frozen, activations detached, the probes are updated on their targets by
their own optimizer; (2) probes frozen, a fresh forward pass, loss = task + lambda * sum over the stencil's
offsets of the MSE, gradients to the model only. Offsets use a buffer of the previous epoch's activations:

    k =  0   f(mlp_in(t))     vs  mlp_hidden(t)
    k = -1   f(mlp_in(t))     vs  mlp_hidden(t-1)   (buffer)
    k = +1   f(mlp_in(t-1))   vs  mlp_hidden(t)     (buffer: mlp_in(t-1))

Training is full batch on a fixed train set, so row b of the buffer is the same input as row b now.

Choices the page leaves open (all recorded in the run config as :data:`CHOICES`):

* **One forward, not two.** During phase 1 only the probes change, so phase 2's "fresh forward pass"
  computes exactly the activations phase 1 saw. The trainer therefore runs one forward with the autograd
  graph; :meth:`ProbeSet.penalty` detaches a copy for phase 1. Tested equal (values and model gradients)
  to a reference that really runs two forwards.
* **MSE reduction:** mean over the member's real (unpadded) train rows and the d_mlp units, i.e.
  ``torch.nn.functional.mse_loss(reduction="mean")``; the same in both phases. The penalty is
  ``lambda * sum_k MSE_k`` (a sum over offsets, not a mean).
* **Which side carries gradient:** whatever the page's formula gives under autograd with the probe's
  weights frozen. k = 0: both sides (through the frozen probe into ``mlp_in``, and ``mlp_hidden``
  directly); k = -1: only ``f(mlp_in(t))`` (the target is the buffer); k = +1: only ``mlp_hidden(t)``
  (the input is the buffer). Stopping either side for k = 0 would be an extra choice the page never makes.
* **Probe optimizer:** Adam (betas 0.9/0.999, eps 1e-8, no weight decay), lr ``probe_lr`` (1e-3), one
  step per epoch per probe, its own step count per probe (so a probe first updated at epoch 1 gets the
  bias correction of its first step). The probe's phase-1 loss is its own MSE (the probes are
  independent; lambda does not scale it).
* **Probe init:** PyTorch's ``nn.Linear`` default (weights and biases ~ U(+-1/sqrt(fan_in)), weight then
  bias, first layer then second), drawn for offsets -1, 0, +1 in that order, always all three, from a
  generator seeded with ``seed + PROBE_SEED_OFFSET``: the k = 0 probe of seed s starts the same in every
  stencil, and the model's own init stream is untouched.
* **Epoch 0** (no buffer yet): offsets +-1 contribute 0 to the penalty and their probes are not updated;
  k = 0 works from epoch 0. The buffer is saved with the run, so a resumed run continues exactly.
* **Controls** (``probe_kind``): ``frozen`` = the same initial probe, never trained (no phase 1);
  ``hidden-l2`` = ``lambda * mean(mlp_hidden^2)`` (same reduction; no probe, stencil ignored).
* **Size-matched frozen probe** (``probe_kind="frozen-matched"``): the frozen initial probe gives the
  gradient's direction and a *shadow* learned probe gives its size. The shadow probes start from the
  same initial weights, are trained in phase 1 exactly as the ``learned`` kind's probes are (on this
  run's own detached activations) and contribute no gradient. The penalty is

      lambda * sum_k MSE_frozen,k * (sum_k MSE_shadow,k / sum_k MSE_frozen,k).detach()

  so its value is ``lambda * sum_k MSE_shadow,k`` (what a trained probe's penalty is on the same
  activations, every epoch) and its model gradient is the frozen probe's gradient times that ratio
  (0 while the frozen sum is 0, e.g. epoch 0 of a stencil without k = 0). The shadow probes and their
  Adam state are saved with the run (keys ``shadow-1``, ``shadow0``, ``shadow1`` beside the frozen
  probes' ``-1``, ``0``, ``1``), so a resumed run continues exactly.

All (member, offset) probes live in stacked tensors ``[P, ...]`` (P = active pairs only, so inactive
offsets cost nothing) and are evaluated with batched matmuls; probes of different widths are zero-padded
to the widest (padded units stay exactly zero under Adam: zero input weights, zero gradient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from bumps.errors import BumpsError

OFFSETS = (-1, 0, 1)
KINDS = ("learned", "frozen", "hidden-l2", "frozen-matched")
PROBE_SEED_OFFSET = 1_000_003
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
CHOICES = {
    "forward": "one forward with graph; phase 1 uses its detached copy (model frozen in phase 1, so identical)",
    "mse": "mean over real train rows and d_mlp; penalty = lambda * sum over offsets",
    "gradient_side": "k=0 both sides; k=-1 probe input side; k=+1 hidden side (buffer is constant)",
    "probe_optimizer": "Adam betas (0.9, 0.999) eps 1e-8 no weight decay, lr probe_lr, per-probe step count",
    "probe_init": "nn.Linear default, offsets -1,0,+1 drawn in order from Generator(seed + 1000003)",
    "epoch0": "offsets +-1 contribute 0 and are not updated until a buffer exists",
    "frozen": "initial probe never trained",
    "hidden-l2": "lambda * mean(mlp_hidden^2)",
    "frozen-matched": "frozen initial probe rescaled every epoch: lambda * sum MSE_frozen * "
    "(sum MSE_shadow / sum MSE_frozen).detach(), shadow = a learned probe from the same init, no gradient",
}
SHADOW = "shadow"  # state key prefix of a frozen-matched member's shadow probes


def check_probe_settings(stencil: Sequence[int], weight: float, hidden: int, lr: float, kind: str) -> tuple:
    """Validate probe settings; returns the stencil sorted. Raises BumpsError with the flag to fix."""
    stencil = tuple(int(k) for k in stencil)
    bad = [k for k in stencil if k not in OFFSETS]
    if bad:
        raise BumpsError(f"`probe_stencil` offsets must be from -1, 0, 1 (got {bad[0]}); e.g. `probe_stencil` -1,0,1")
    if len(set(stencil)) != len(stencil):
        raise BumpsError(f"`probe_stencil` lists an offset twice ({','.join(map(str, stencil))}); give each once")
    if not math.isfinite(weight) or weight < 0:
        raise BumpsError(f"`probe_weight` must be finite and >= 0 (got {weight})")
    if hidden < 1:
        raise BumpsError(f"`probe_hidden` must be >= 1 (got {hidden})")
    if not math.isfinite(lr) or lr <= 0:
        raise BumpsError(f"`probe_lr` must be finite and > 0 (got {lr})")
    if kind not in KINDS:
        raise BumpsError(f"`probe_kind` must be one of {', '.join(KINDS)} (got {kind!r})")
    return tuple(sorted(stencil))


def _settings(cfg) -> dict:
    stencil = check_probe_settings(cfg.probe_stencil, cfg.probe_weight, cfg.probe_hidden, cfg.probe_lr, cfg.probe_kind)
    kind = cfg.probe_kind
    active = kind == "hidden-l2" or bool(stencil)
    return dict(
        kind=kind,
        stencil=stencil if kind != "hidden-l2" else (),
        weight=float(cfg.probe_weight),
        hidden=int(cfg.probe_hidden),
        lr=float(cfg.probe_lr),
        seed=int(cfg.seed),
        active=active,
    )


def init_probe(seed: int, d_model: int, d_mlp: int, hidden: int) -> dict[int, dict[str, Tensor]]:
    """Initial probes for offsets -1, 0, +1, as ``nn.Linear`` would draw them after ``torch.manual_seed``.

    Returned in matmul layout: W1 [d_model, hidden], b1 [hidden], W2 [hidden, d_mlp], b2 [d_mlp].
    """
    g = torch.Generator().manual_seed(seed + PROBE_SEED_OFFSET)

    def linear(fan_in, fan_out):  # nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)), then the bias
        w_bound = math.sqrt(3.0) * (math.sqrt(2.0 / (1 + 5)) / math.sqrt(fan_in))
        w = torch.empty(fan_out, fan_in).uniform_(-w_bound, w_bound, generator=g)
        b = torch.empty(fan_out).uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=g)
        return w.T.contiguous(), b

    out = {}
    for k in OFFSETS:
        w1, b1 = linear(d_model, hidden)
        w2, b2 = linear(hidden, d_mlp)
        out[k] = {"W1": w1, "b1": b1, "W2": w2, "b2": b2}
    return out


_PARAMS = ("W1", "b1", "W2", "b2")


class ProbeSet:
    """All probes of all members of an ensemble, stacked over (member, offset) pairs."""

    def __init__(self, settings: list[dict], d_model: int, d_mlp: int, device):
        self.settings, self.d_model, self.d_mlp, self.device = settings, d_model, d_mlp, torch.device(device)
        # (member, offset, shadow): a frozen-matched member has its frozen pairs, then its shadow pairs
        pairs = [
            (i, k, shadow)
            for i, s in enumerate(settings)
            if s["kind"] != "hidden-l2"
            for shadow in ((False, True) if s["kind"] == "frozen-matched" else (False,))
            for k in s["stencil"]
        ]
        self.pair_member = torch.tensor([i for i, _, _ in pairs], dtype=torch.long, device=self.device)
        self.pair_offset = torch.tensor([k for _, k, _ in pairs], dtype=torch.long, device=self.device)
        self.pair_shadow = torch.tensor([sh for _, _, sh in pairs], dtype=torch.bool, device=self.device)
        width = max([settings[i]["hidden"] for i, _, _ in pairs], default=1)
        P = len(pairs)
        self.p = {
            "W1": torch.zeros(P, d_model, width),
            "b1": torch.zeros(P, 1, width),
            "W2": torch.zeros(P, width, d_mlp),
            "b2": torch.zeros(P, 1, d_mlp),
        }
        drawn: dict[int, dict] = {}
        for j, (i, k, _) in enumerate(pairs):
            s = settings[i]
            if i not in drawn:
                drawn[i] = init_probe(s["seed"], d_model, d_mlp, s["hidden"])
            h = s["hidden"]
            self.p["W1"][j, :, :h] = drawn[i][k]["W1"]
            self.p["b1"][j, 0, :h] = drawn[i][k]["b1"]
            self.p["W2"][j, :h] = drawn[i][k]["W2"]
            self.p["b2"][j, 0] = drawn[i][k]["b2"]
        self.p = {n: t.to(self.device) for n, t in self.p.items()}
        self.exp_avg = {n: torch.zeros_like(t) for n, t in self.p.items()}
        self.exp_avg_sq = {n: torch.zeros_like(t) for n, t in self.p.items()}
        self.step = torch.zeros(P, dtype=torch.long, device=self.device)
        self.trainable = torch.tensor(
            [settings[i]["kind"] == "learned" or sh for i, _, sh in pairs], dtype=torch.bool, device=self.device
        )
        self.lr = torch.tensor([settings[i]["lr"] for i, _, _ in pairs], dtype=torch.float64, device=self.device)
        self.weight = torch.tensor([s["weight"] if s["active"] else 0.0 for s in settings], device=self.device)
        self.l2 = torch.tensor([s["kind"] == "hidden-l2" for s in settings], dtype=torch.bool, device=self.device)
        self.matched = torch.tensor(
            [s["kind"] == "frozen-matched" for s in settings], dtype=torch.bool, device=self.device
        )
        # frozen-matched diagnostics of the last penalty() call, per member (0 for other members)
        self.last_shadow_mse: Tensor | None = None  # sum_k MSE_shadow,k
        self.last_frozen_mse: Tensor | None = None  # sum_k MSE_frozen,k
        self.uses_buffer = bool((self.pair_offset != 0).any())
        self.prev_in: Tensor | None = None  # [M, B, d_model], detached activations of the previous call
        self.prev_hidden: Tensor | None = None  # [M, B, d_mlp]
        self.has_prev = torch.zeros(len(settings), dtype=torch.bool, device=self.device)
        self.last_mask: Tensor | None = None
        self.pending: dict[int, dict] = {}  # restored buffers, placed on the first penalty() call

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, configs: list, d_model: int, d_mlp: int, device) -> ProbeSet | None:
        """A ProbeSet for these members, or None when no member has a probe or hidden-l2 penalty."""
        settings = [_settings(c) for c in configs]
        if not any(s["active"] for s in settings):
            return None
        return cls(settings, d_model, d_mlp, device)

    @classmethod
    def restore(cls, configs: list, states: list[dict | None], d_model: int, d_mlp: int, device) -> ProbeSet | None:
        """Like :meth:`create`, then load each member's saved state (None: a fresh member)."""
        ps = cls.create(configs, d_model, d_mlp, device)
        if ps is None:
            return None
        for i, state in enumerate(states):
            if state is not None:
                ps._load_member(i, state)
        return ps

    def _pairs_of(self, i: int) -> list[tuple[int, str]]:
        """Member i's pairs as (pair index, state key): ``"-1"``, ``"0"``, ``"1"``; shadows ``"shadow-1"`` etc."""
        rows = zip(self.pair_member.tolist(), self.pair_offset.tolist(), self.pair_shadow.tolist(), strict=True)
        return [(j, (SHADOW if sh else "") + str(int(k))) for j, (m, k, sh) in enumerate(rows) if m == i]

    def member_state(self, i: int) -> dict | None:
        """Member i's probe weights, probe-optimizer state and previous-epoch buffer (CPU tensors).

        None for a member without probe or penalty (a baseline packed into a probe ensemble)."""
        s = self.settings[i]
        if not s["active"]:
            return None
        h = s["hidden"]

        def cut(t, j, name):
            t = t[j]
            if name == "W1":
                t = t[:, :h]
            elif name == "b1":
                t = t[0, :h]
            elif name == "W2":
                t = t[:h]
            else:
                t = t[0]
            return t.detach().cpu().clone()

        probes = {}
        for j, key in self._pairs_of(i):
            probes[key] = {
                **{n: cut(self.p[n], j, n) for n in _PARAMS},
                "exp_avg": {n: cut(self.exp_avg[n], j, n) for n in _PARAMS},
                "exp_avg_sq": {n: cut(self.exp_avg_sq[n], j, n) for n in _PARAMS},
                "step": int(self.step[j]),
            }
        buffer = None
        if i in self.pending:
            buffer = self.pending[i]
        elif self.prev_in is not None and bool(self.has_prev[i]) and any(k != 0 for k in s["stencil"]):
            rows = self.last_mask[i] > 0
            buffer = {
                "mlp_in": self.prev_in[i][rows].cpu().clone(),
                "mlp_hidden": self.prev_hidden[i][rows].cpu().clone(),
            }
        return {
            "kind": s["kind"],
            "stencil": list(s["stencil"]),
            "weight": s["weight"],
            "hidden": h,
            "lr": s["lr"],
            "seed": s["seed"],
            "probes": probes,
            "buffer": buffer,
        }

    def _load_member(self, i: int, state: dict) -> None:
        s = self.settings[i]
        for key in ("kind", "hidden"):
            if state.get(key) != s[key]:
                raise BumpsError(
                    f"saved probe state has {key}={state.get(key)!r} but the run asks for {s[key]!r}; "
                    "resume with the run's probe flags or start a new `out`"
                )
        if tuple(state.get("stencil", ())) != s["stencil"]:
            raise BumpsError(
                f"saved probe state has stencil {tuple(state.get('stencil', ()))} but the run asks for "
                f"{s['stencil']}; resume with the run's `probe_stencil` or start a new `out`"
            )
        h = s["hidden"]
        with torch.no_grad():
            for j, key in self._pairs_of(i):
                if key not in state["probes"]:
                    raise BumpsError(
                        f"saved probe state has no probe {key!r} (written by another bumps); start a new `out`"
                    )
                saved = state["probes"][key]
                for store, src in (
                    (self.p, saved),
                    (self.exp_avg, saved["exp_avg"]),
                    (self.exp_avg_sq, saved["exp_avg_sq"]),
                ):
                    store["W1"][j, :, :h] = src["W1"]
                    store["b1"][j, 0, :h] = src["b1"]
                    store["W2"][j, :h] = src["W2"]
                    store["b2"][j, 0] = src["b2"]
                self.step[j] = int(saved["step"])
        if state.get("buffer") is not None:
            self.pending[i] = state["buffer"]

    def select(self, keep: Tensor) -> None:
        """Keep only these members (indices, or a bool mask over members), in that order."""
        keep = torch.as_tensor(keep, device=self.device)
        if keep.dtype == torch.bool:
            keep = keep.nonzero().flatten()
        keep = keep.long()
        new_index = torch.full((len(self.settings),), -1, dtype=torch.long, device=self.device)
        new_index[keep] = torch.arange(len(keep), device=self.device)
        pair_keep = (new_index[self.pair_member] >= 0).nonzero().flatten()
        for store in (self.p, self.exp_avg, self.exp_avg_sq):
            for n in _PARAMS:
                store[n] = store[n][pair_keep]
        self.step, self.trainable, self.lr = self.step[pair_keep], self.trainable[pair_keep], self.lr[pair_keep]
        self.pair_offset, self.pair_shadow = self.pair_offset[pair_keep], self.pair_shadow[pair_keep]
        self.pair_member = new_index[self.pair_member[pair_keep]]
        kept = keep.tolist()
        self.pending = {kept.index(i): b for i, b in self.pending.items() if i in kept}
        self.settings = [self.settings[i] for i in kept]
        self.weight, self.l2, self.has_prev = self.weight[keep], self.l2[keep], self.has_prev[keep]
        self.matched = self.matched[keep]
        for name in ("prev_in", "prev_hidden", "last_mask", "last_shadow_mse", "last_frozen_mse"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t[keep])

    # ------------------------------------------------------------------ the two phases
    def _probe(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """[P, B, d_model] -> [P, B, d_mlp]."""
        return torch.baddbmm(params["b2"], torch.relu(torch.baddbmm(params["b1"], x, params["W1"])), params["W2"])

    def _place_pending(self, mask: Tensor, like_in: Tensor, like_hidden: Tensor) -> None:
        if self.prev_in is None:
            self.prev_in, self.prev_hidden = torch.zeros_like(like_in), torch.zeros_like(like_hidden)
        for i, buf in self.pending.items():
            rows = (mask[i] > 0).nonzero().flatten()
            if len(rows) != len(buf["mlp_in"]):
                raise BumpsError(
                    f"saved probe buffer has {len(buf['mlp_in'])} rows but member {i} has {len(rows)} "
                    "train rows; resume with the same data settings"
                )
            self.prev_in[i, rows] = buf["mlp_in"].to(like_in)
            self.prev_hidden[i, rows] = buf["mlp_hidden"].to(like_hidden)
            self.has_prev[i] = True
        self.pending = {}

    def _adam(self, grads: dict[str, Tensor], upd: Tensor) -> None:
        """torch.optim.Adam's update on the pairs in ``upd`` only (per-pair step counts and lr)."""
        b1, b2 = ADAM_BETAS
        self.step = self.step + upd.long()
        t = self.step.clamp_min(1).double()
        step_size = (self.lr / (1 - b1**t)).float().view(-1, 1, 1)
        bc2_sqrt = (1 - b2**t).sqrt().float().view(-1, 1, 1)
        u = upd.view(-1, 1, 1)
        for n in _PARAMS:
            g = grads[n]
            m = torch.where(u, torch.lerp(self.exp_avg[n], g, 1 - b1), self.exp_avg[n])
            v = torch.where(u, self.exp_avg_sq[n] * b2 + (1 - b2) * g * g, self.exp_avg_sq[n])
            self.exp_avg[n], self.exp_avg_sq[n] = m, v
            new = self.p[n] - step_size * m / (v.sqrt() / bc2_sqrt + ADAM_EPS)
            self.p[n] = torch.where(u, new, self.p[n])

    def penalty(self, mlp_in: Tensor, mlp_hidden: Tensor, mask: Tensor) -> Tensor:
        """Phase 1 (probe update on detached activations), then the phase-2 penalty per member, [M].

        mlp_in [M, B, d_model] and mlp_hidden [M, B, d_mlp] carry the model's graph; mask [M, B] is 1 on
        real train rows. Gradient of the result flows to the model only. Updates the buffer. A
        frozen-matched member's penalty is rescaled to its shadow probes' (module docstring).
        """
        M = mlp_in.shape[0]
        mask = mask.to(mlp_in.dtype)
        denom = mask.sum(1).clamp_min(1) * self.d_mlp  # [M]
        x_now, h_now = mlp_in.detach(), mlp_hidden.detach()
        if self.pending:
            self._place_pending(mask, x_now, h_now)
        out = torch.zeros(M, dtype=mlp_in.dtype, device=mlp_in.device)
        if len(self.pair_member):
            pm, off = self.pair_member, self.pair_offset
            prev_in = self.prev_in if self.prev_in is not None else x_now  # placeholder when no buffer yet
            prev_h = self.prev_hidden if self.prev_hidden is not None else h_now
            ready = (off == 0) | self.has_prev[pm]  # [P]
            # [P, B]: the MSE is a mean over real rows and d_mlp
            row_w = mask.index_select(0, pm) / denom.index_select(0, pm)[:, None]

            def gather(now, prev, j, from_prev):  # [len(j), B, d]: pairs j's members' activations, now or buffer
                # one index_select on [now; prev] (its backward is an index_add; fancy indexing's is slow)
                return torch.cat([now, prev]).index_select(0, pm.index_select(0, j) + M * from_prev.long())

            def mse(j, params, x_all, x_prev, h_all, h_prev):  # [len(j)]: pairs j only
                k = off.index_select(0, j)  # k = +1 reads its input, k = -1 its target from the buffer
                x, y = gather(x_all, x_prev, j, k == 1), gather(h_all, h_prev, j, k == -1)
                return (((self._probe(params, x) - y) ** 2).sum(-1) * row_w.index_select(0, j)).sum(-1)

            def pick(params, j):  # pairs j of the stacked weights (all of them: no copy)
                return params if len(j) == len(pm) else {n: t.index_select(0, j) for n, t in params.items()}

            upd = ready & self.trainable
            if bool(upd.any()):  # phase 1: model frozen (detached activations), probes learn (updated pairs only)
                tj = upd.nonzero().flatten()
                with torch.enable_grad():
                    leaf = {n: t.detach().requires_grad_(True) for n, t in pick(self.p, tj).items()}
                    loss = mse(tj, leaf, x_now, prev_in, h_now, prev_h).sum()
                    g = torch.autograd.grad(loss, [leaf[n] for n in _PARAMS])
                grads = {
                    n: torch.zeros_like(self.p[n]).index_copy_(0, tj, gn) for n, gn in zip(_PARAMS, g, strict=True)
                }
                self._adam(grads, upd)
            # phase 2: probes frozen (no grad to them), activations with the model's graph; a shadow probe
            # only sizes the penalty, so its MSE is computed without a graph
            frozen = {n: t.detach() for n, t in self.p.items()}
            own = (~self.pair_shadow).nonzero().flatten()
            pen = mse(own, pick(frozen, own), mlp_in, prev_in, mlp_hidden, prev_h)
            pen = torch.where(ready.index_select(0, own), pen, torch.zeros_like(pen))
            out = out.index_add(0, pm.index_select(0, own), pen)
            if bool(self.pair_shadow.any()):
                sj = self.pair_shadow.nonzero().flatten()
                with torch.no_grad():
                    pen_sh = mse(sj, pick(frozen, sj), x_now, prev_in, h_now, prev_h)
                    pen_sh = torch.where(ready.index_select(0, sj), pen_sh, torch.zeros_like(pen_sh))
                shadow = torch.zeros_like(out).index_add(0, pm.index_select(0, sj), pen_sh)
                sum_frozen = out.detach()
                ratio = torch.where(sum_frozen > 0, shadow / sum_frozen.clamp_min(1e-30), torch.zeros_like(shadow))
                out = out * torch.where(self.matched, ratio, torch.ones_like(ratio))
                self.last_shadow_mse = torch.where(self.matched, shadow, torch.zeros_like(shadow))
                self.last_frozen_mse = torch.where(self.matched, sum_frozen, torch.zeros_like(sum_frozen))
        if bool(self.l2.any()):
            l2 = ((mlp_hidden**2).sum(-1) * mask).sum(-1) / denom
            out = out + torch.where(self.l2, l2, torch.zeros_like(l2))
        out = out * self.weight.to(out.dtype)
        if self.uses_buffer:
            self.prev_in, self.prev_hidden = x_now, h_now
            self.has_prev = torch.ones_like(self.has_prev)
        self.last_mask = mask.detach()
        return out
