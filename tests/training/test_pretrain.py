"""Pretraining on a synthetic Sen2LUCAS tree with a tiny CLIP: learns, resumes exactly, exports."""
from __future__ import annotations

import csv

import pytest
import torch


def _mean(xs):
    return sum(xs) / len(xs)


def test_loss_goes_down(train_cfg):
    from senclip_train.train import train

    res = train(train_cfg(epochs=5))
    assert res.step == 5 * (48 // 8)
    losses = [l for _, l in res.history]
    assert _mean(losses[-6:]) < _mean(losses[:6]) - 0.3, losses
    rows = list(csv.DictReader(open(res.checkpoint.parent / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, res.step + 1))
    assert all(1.0 <= float(r["logit_scale"]) <= 100.0 for r in rows)


@pytest.mark.parametrize("pooling,agg", [("attn-image", "sum"), ("attn-dim", "mean"), ("attn-dim", "max"),
                                         ("avg", "sum")])
def test_each_pooling_trains(train_cfg, pooling, agg):
    from senclip_train.model.build import read_training_checkpoint
    from senclip_train.train import train

    res = train(train_cfg(epochs=1, pooling=pooling, pool_aggregate=agg, save_every=0))
    assert res.step == 6 and all(torch.isfinite(torch.tensor(l)) for _, l in res.history)
    ck = read_training_checkpoint(res.checkpoint)
    pool_keys = [k for k in ck["model"] if k.startswith("pooling.")]
    assert bool(pool_keys) == (pooling != "avg")
    if pool_keys:  # attention weights received gradients and moved away from their init
        from senclip_train.model.build import build_contrastive, load_clip

        torch.manual_seed(ck["config"]["seed"])  # the same init sequence as train()
        fresh, _ = build_contrastive(load_clip(ck["config"]["init"])[0], ck["config"])
        for k in pool_keys:
            assert not torch.equal(ck["model"][k], fresh.state_dict()[k]), k


def test_kill_and_resume_is_bit_identical(train_cfg, tmp_path):
    from senclip_train.train import train

    full = train(train_cfg(epochs=2, out=str(tmp_path / "a"), save_every=4, head="reference"))

    class Killed(Exception):
        pass

    def kill_at_7(step, loss):
        if step == 7:  # mid-epoch 2 (6 batches per epoch), three steps after the step-4 checkpoint... and
            raise Killed  # after the epoch-1 checkpoint at step 6: resume redoes step 7

    with pytest.raises(Killed):
        train(train_cfg(epochs=2, out=str(tmp_path / "b"), save_every=4, head="reference"), on_step=kill_at_7)
    torch.manual_seed(1234)  # a resumed process starts from whatever RNG state: it must not matter
    resumed = train(train_cfg(out=str(tmp_path / "b"), epochs=2, save_every=4, head="reference"),
                    resume=tmp_path / "b" / "last.pt")
    assert resumed.step == full.step == 12 and resumed.epoch == full.epoch == 2
    a = torch.load(full.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["optimizer"]["state"][0]["exp_avg"], b["optimizer"]["state"][0]["exp_avg"])
    rows = list(csv.DictReader(open(tmp_path / "b" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 13))


def test_rn_trains_whole_tower(train_cfg, tiny_rn):
    from senclip_train.train import train

    res = train(train_cfg(init=str(tiny_rn), epochs=1, trainable_blocks=1, save_every=0))
    ck = torch.load(res.checkpoint, weights_only=True)
    assert any(k.startswith("layer1.") for k in ck["trainable"])
    assert ck["config"]["lr"] == 1e-3


def test_vit_last_block_only(train_cfg):
    from senclip_train.model.build import build_contrastive, load_clip
    from senclip_train.train import TrainConfig

    cfg = train_cfg(trainable_blocks=1).to_dict()
    _, trainable = build_contrastive(load_clip(cfg["init"])[0], cfg)
    assert "proj" in trainable and "ln_post.weight" in trainable
    assert not any(k.startswith("conv1") or k.startswith("ln_pre") for k in trainable)
    assert TrainConfig(root="", list_file="", embeddings="", init="", out="").lr is None  # ViT/RN default later


def test_ddp_with_torchrun_on_cpu(sen2lucas, tiny_vit, tmp_path):
    """Two processes through torchrun (gloo on CPU): the same DDP code path as multi-GPU runs."""
    import os
    import subprocess
    import sys

    from senclip_train.model.build import read_training_checkpoint

    root, lst, ef, _ = sen2lucas
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "senclip_train.cli.main", "pretrain", "--root", str(root), "--list", str(lst),
           "--embeddings", str(ef), "--init", str(tiny_vit), "--out", str(out), "--epochs", "2",
           "--batch-size", "8", "--queue-size", "16", "--lr", "1e-3", "--num-workers", "0", "--device", "cpu",
           "--save-every", "0", "--log-every", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ck = read_training_checkpoint(out / "last.pt")
    # 48 chips, 8 per rank and step, 2 ranks: 3 steps per epoch
    assert (ck["step"], ck["epoch"]) == (6, 2)
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 6  # header + one row per step, written by rank 0 only
