"""Resume: mid-epoch checkpoints continue exactly; --resume says where each setting came from and
refuses settings that would silently make a different run (senclip_train.resume)."""
from __future__ import annotations

import csv
import logging
import shutil

import pytest
import torch

from senclip.core.errors import InputError


class Killed(Exception):
    pass


def _kill_at(n):
    def on_step(step, loss):
        if step == n:
            raise Killed
    return on_step


def _weights(path):
    return torch.load(path, weights_only=True)


def _assert_same_run(a_path, b_path):
    a, b = _weights(a_path), _weights(b_path)
    assert (a["step"], a["epoch"]) == (b["step"], b["epoch"])
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for i, st in a["optimizer"]["state"].items():
        assert torch.equal(st["exp_avg"], b["optimizer"]["state"][i]["exp_avg"]), i


def test_killed_twice_mid_epoch_resumes_bit_identical(train_cfg, tmp_path):
    """6 batches per epoch, a checkpoint every 4 steps: killed at step 5 the run resumes from
    step 4 (epoch 1, batch 4), killed again at step 11 from step 8 (epoch 2, batch 2). Dropout in
    the reference head draws from the global RNG, so the RNG state must come back too."""
    from senclip_train.train import train

    kw = dict(epochs=2, save_every=4, head="reference")
    full = train(train_cfg(out=str(tmp_path / "a"), **kw))
    last = tmp_path / "b" / "last.pt"
    with pytest.raises(Killed):
        train(train_cfg(out=str(tmp_path / "b"), **kw), on_step=_kill_at(5))
    assert (_weights(last)["epoch"], _weights(last)["batch"], _weights(last)["step"]) == (0, 4, 4)
    torch.manual_seed(1234)  # whatever RNG state the new process starts with must not matter
    with pytest.raises(Killed):
        train(train_cfg(out=str(tmp_path / "b"), **kw), resume=last, on_step=_kill_at(11))
    assert (_weights(last)["epoch"], _weights(last)["batch"], _weights(last)["step"]) == (1, 2, 8)
    torch.manual_seed(99)
    resumed = train(train_cfg(out=str(tmp_path / "b"), **kw), resume=last)
    assert resumed.step == full.step == 12
    _assert_same_run(full.checkpoint, resumed.checkpoint)
    rows = list(csv.DictReader(open(tmp_path / "b" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 13))


def _cli(args, capsys):
    from senclip_train.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    return e.value.code, out, err


def _run_args(sen2lucas, tiny_vit, out, epochs=1):
    root, lst, ef, _ = sen2lucas
    return ["pretrain", "--root", str(root), "--list", str(lst), "--embeddings", str(ef), "--init", str(tiny_vit),
            "--out", str(out), "--epochs", str(epochs), "--batch-size", "8", "--queue-size", "16", "--lr", "1e-3",
            "--num-workers", "0", "--device", "cpu", "--save-every", "0", "--seed", "3"]


def _first_run(sen2lucas, tiny_vit, out, capsys, epochs=1):
    code, _, err = _cli(_run_args(sen2lucas, tiny_vit, out, epochs), capsys)
    assert code == 0, err
    return out / "last.pt"


def test_cli_refuses_conflicting_options_on_resume(sen2lucas, tiny_vit, tmp_path, capsys):
    out = tmp_path / "run"
    last = _first_run(sen2lucas, tiny_vit, out, capsys)
    before = last.read_bytes()
    # the first command again (--batch-size 8 and the rest match), two options changed, one more epoch
    args = _run_args(sen2lucas, tiny_vit, out, epochs=2) + ["--resume", "auto", "--lr", "0.01", "--bands", "1,2,3"]
    code, _, err = _cli(args, capsys)
    assert code == 2
    assert "--lr 0.01 (the checkpoint has 0.001)" in err
    assert "--bands 1,2,3 (the checkpoint has 3,2,1)" in err
    assert "--batch-size 8 (the checkpoint" not in err  # given, but it matches: no conflict
    assert "Drop --lr, --bands to continue" in err and "without --resume" in err
    assert last.read_bytes() == before  # nothing was trained or written


def test_cli_resume_takes_settings_from_checkpoint_and_extends_epochs(sen2lucas, tiny_vit, tmp_path, capsys):
    """Only --out and --epochs given: batch size 8, queue 16, seed 3 come from the checkpoint (the
    defaults would be 32, 512, 0), and 1 + 1 epochs end where a 2-epoch run ends."""
    once = _first_run(sen2lucas, tiny_vit, tmp_path / "two", capsys, epochs=2)
    last = _first_run(sen2lucas, tiny_vit, tmp_path / "run", capsys, epochs=1)
    code, out, err = _cli(["pretrain", "--out", str(tmp_path / "run"), "--resume", str(last), "--epochs", "2",
                           "--lr", "0.001"], capsys)
    assert code == 0, err
    assert "from the checkpoint:" in err and "--batch-size 8" in err and "--queue-size 16" in err
    assert "--seed 3" in err and "--lr 0.001" in err
    assert "changed on resume: --epochs 1 -> 2" in err
    ck = _weights(last)
    assert (ck["step"], ck["epoch"], ck["config"]["batch_size"], ck["config"]["epochs"]) == (12, 2, 8, 2)
    _assert_same_run(once, last)


def test_cli_without_resume_still_needs_the_data_options(tmp_path, capsys):
    code, _, err = _cli(["pretrain", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "Missing option '--root'" in err


def test_epochs_below_the_checkpoint_position_refused(train_cfg, tmp_path):
    from senclip_train.train import train

    with pytest.raises(Killed):
        train(train_cfg(epochs=2, out=str(tmp_path / "r")), on_step=_kill_at(10))  # last.pt: step 8, epoch 2
    with pytest.raises(InputError, match=r"--epochs 1: .*already reached epoch 2, batch 2; give --epochs 2 or more"):
        train({"epochs": 1}, resume=tmp_path / "r" / "last.pt")


def test_moved_data_resumes_other_data_refused(sen2lucas, train_cfg, tiny_vit, tmp_path, caplog):
    from senclip_train.train import train

    with pytest.raises(Killed):
        train(train_cfg(epochs=1, out=str(tmp_path / "r")), on_step=_kill_at(5))
    last = tmp_path / "r" / "last.pt"
    root, lst, ef, _ = sen2lucas
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    other = moved / "other.txt"
    other.write_text("\n".join(reversed(lst.read_text().split())) + "\n")  # same chips, another order
    with pytest.raises(InputError, match="not the 48 chips, in order"):
        train({"root": str(moved), "list_file": str(other)}, resume=last)
    init2 = tmp_path / "init2.ckpt"
    from tiny_models import make_tiny_checkpoint

    make_tiny_checkpoint(init2, "vit", seed=1)
    with pytest.raises(InputError, match="is not the .* the run was started from"):
        train({"init": str(init2)}, resume=last)
    shutil.copy(tiny_vit, tmp_path / "init_copy.ckpt")
    with caplog.at_level(logging.INFO, logger="senclip_train"):
        res = train({"root": str(moved), "list_file": str(moved / lst.name), "embeddings": str(moved / ef.name),
                     "init": str(tmp_path / "init_copy.ckpt")}, resume=last)
    assert res.step == 6
    assert f"changed on resume: --root {root} -> {moved}" in caplog.text


def test_resume_rules_without_training():
    """Which settings may change (where/how fast/how often, epochs, moved data) and which may not."""
    from senclip_train.resume import resume_config
    from senclip_train.train import TrainConfig

    cfg = TrainConfig(root="r", list_file="l", embeddings="e", init="i", out="o", lr=1e-3, epochs=4)
    ck = {"config": cfg.to_dict(), "epoch": 1, "batch": 3, "step": 9}
    free = {"out": "o2", "num_workers": 0, "device": "cpu", "save_every": 0, "keep": 5, "log_every": 1,
            "epochs": 2, "root": "moved/r"}
    merged, notes = resume_config(ck, free, "last.pt")
    assert {k: merged[k] for k in free} == free and merged["lr"] == 1e-3
    assert notes[0] == "resuming last.pt at epoch 1, batch 3, step 9"
    assert "--lr 0.001" in notes[1] and "--out" not in notes[1] and "--epochs 4 -> 2" in notes[2]
    assert resume_config(ck, dict(cfg.to_dict(), lr=None), "last.pt")[0] == cfg.to_dict()  # None: not given
    with pytest.raises(InputError) as e:
        resume_config(ck, {"temperature": 0.1, "pooling": "attn-dim", "augment": False, "seed": 0}, "last.pt")
    msg = str(e.value)
    assert "--temperature 0.1 (the checkpoint has 0.07)" in msg and "--pooling attn-dim (the checkpoint has avg)" in msg
    assert "augmentation (--no-augment) off (the checkpoint has on)" in msg and "--seed" not in msg.split("Drop")[0]
    with pytest.raises(InputError, match="already reached epoch 2, batch 3; give --epochs 2 or more"):
        resume_config(ck, {"epochs": 1}, "last.pt")
