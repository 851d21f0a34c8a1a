"""Subnormal flushing: on inside the block, off after it, nesting, and no change to training."""

import pytest
import torch

from bumps.subnormals import flush_subnormals, flushed_throughout, flushing

TINY = 1e-39  # below float32's smallest normal, 1.18e-38


def _flushed() -> bool:
    return (torch.tensor([TINY], dtype=torch.float32) * 1.0).item() == 0.0


@pytest.fixture
def one_thread():
    """torch on one thread (flushing reaches the calling thread only), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with flush_subnormals() as on:
        pass
    if not on:
        pytest.skip("this CPU cannot flush subnormals")
    yield
    torch.set_num_threads(before)


def test_flushing_is_on_only_inside_the_block_and_nests(one_thread):
    with flush_subnormals() as on:
        assert on and _flushed() and flushing() and flushed_throughout()
        with flush_subnormals():
            assert _flushed()
        assert _flushed()  # the inner block's end leaves the outer one's setting
        with flush_subnormals(enabled=False) as inner:
            assert inner and _flushed()
    assert not _flushed() and not flushing()
    with flush_subnormals(enabled=False) as on:
        assert not on and not _flushed()
    with pytest.raises(RuntimeError), flush_subnormals():
        raise RuntimeError
    assert not _flushed() and not flushing()  # off again after a block that raised


def test_more_than_one_thread_is_not_flushed_throughout(one_thread):
    torch.set_num_threads(2)
    with flush_subnormals() as on:
        assert on and flushing() and not flushed_throughout()


def test_training_with_subnormal_gradients_is_bitwise_the_same_flushed(tmp_path, monkeypatch, one_thread):
    """Continue a run whose logits are far apart (the wrong classes' float32 gradients subnormal), through
    bumps.modadd.train.train_many, with flushing (its default) and without: the same weights."""
    import contextlib
    import dataclasses

    from bumps.io.runfile import atomic_save
    from bumps.modadd import train as modadd_train
    from bumps.modadd.model import ModAddConfig, all_pairs, cross_entropy, forward_last, split_indices

    cfg = ModAddConfig.from_preset("nanda", p=23, d_model=32, d_mlp=64, n_heads=2, epochs=4, checkpoint_every=2)
    first = modadd_train.train_many([cfg], [tmp_path / "first.pt"])[0]
    ckpt = torch.load(sorted((tmp_path / "first_ckpt").glob("*.pt"))[-1], weights_only=True)
    ckpt["params"]["W_U"] = ckpt["params"]["W_U"] * 400  # logits tens apart: wrong-class softmax ~1e-40
    atomic_save(ckpt, tmp_path / "start.pt")

    tokens, (train_idx, _) = all_pairs(cfg.p), split_indices(cfg)
    logits = forward_last(ckpt["params"], tokens[train_idx]).requires_grad_(True)
    cross_entropy(logits, ((tokens[:, 0] + tokens[:, 1]) % cfg.p)[train_idx]).backward()
    assert ((logits.grad != 0) & (logits.grad.abs() < 1.18e-38)).sum() > 0  # the state has subnormal gradients

    longer = dataclasses.replace(cfg, epochs=10)
    flushed = modadd_train.train_many([longer], [tmp_path / "flushed.pt"], resume=[tmp_path / "start.pt"])[0]
    monkeypatch.setattr(modadd_train, "flush_subnormals", lambda: contextlib.nullcontext())
    plain = modadd_train.train_many([longer], [tmp_path / "plain.pt"], resume=[tmp_path / "start.pt"])[0]
    # recorded inside train_many's block: True only if it trained flushed, on one thread
    assert first["config"]["subnormals_flushed"] and flushed["config"]["subnormals_flushed"]
    assert not plain["config"]["subnormals_flushed"]
    for k, v in flushed["final_params"].items():
        assert torch.equal(v, plain["final_params"][k]), k
    assert torch.equal(flushed["train_loss_every_epoch"], plain["train_loss_every_epoch"])
