"""Export into the release format, and the benchmark harness on tiny layouts and real BEN patches."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["vit", "rn"])
def test_export_folds_head_exactly_and_backend_loads_it(train_cfg, tiny_vit, tiny_rn, tmp_path, kind):
    from senclip.models.checkpoints import build_clip, read_state_dict
    from senclip_train.model.build import model_from_training_checkpoint
    from senclip_train.model.export import export_from_training_checkpoint
    from senclip_train.train import train

    init = tiny_vit if kind == "vit" else tiny_rn
    res = train(train_cfg(init=str(init), epochs=1, save_every=0))
    clip_model, model, _ = model_from_training_checkpoint(res.checkpoint)
    assert model.head.weight.abs().sum() > 0  # the head did train, so folding matters
    out = export_from_training_checkpoint(res.checkpoint, tmp_path / "mine.ckpt")
    sd = read_state_dict(out)
    assert not any(k.startswith(("head", "pooling", "queue")) for k in sd)
    released = build_clip(sd)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        want = model.eval().head(model.visual(x))
        got = released.encode_image(x)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
        assert torch.equal(released.token_embedding.weight, clip_model.token_embedding.weight)  # text tower untouched
    if kind == "rn":
        return  # the backend's loading path is the same for both; the ViT case covers it
    from senclip.models.loading import load_model

    loaded = load_model(checkpoint=out, device="cpu")
    emb = loaded.image.encode_chips(np.zeros((2, 3, 64, 64), np.uint8))
    assert emb.shape == (2, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_reference_head_cannot_be_exported_silently(train_cfg, tmp_path):
    from senclip.core.errors import InputError
    from senclip_train.model.export import export_from_training_checkpoint
    from senclip_train.train import train

    res = train(train_cfg(epochs=1, save_every=0, head="reference"))
    with pytest.raises(InputError, match="--drop-head"):
        export_from_training_checkpoint(res.checkpoint, tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()
    with pytest.warns(Warning, match="differ"):
        export_from_training_checkpoint(res.checkpoint, tmp_path / "x.ckpt", drop_head=True)


def _eurosat(root: Path, per_class=3, ms=False):
    from PIL import Image

    from senclip_train.bench.datasets import EUROSAT_NAMES

    rng = np.random.default_rng(0)
    for i, folder in enumerate(EUROSAT_NAMES):
        d = root / "2750" / folder
        d.mkdir(parents=True)
        for j in range(per_class):
            if ms:
                from chipdata import write_chip

                write_chip(d / f"{folder}_{j}.tif", rng.integers(0, 3000, (13, 64, 64)).astype("uint16"))
            else:
                Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(d / f"{folder}_{j + 1}.jpg")
    return root


def _check_report(out: Path, name: str, n: int):
    rep = json.loads((out / f"{name}.json").read_text())
    assert rep["n_images"] == n
    md = (out / f"{name}.md").read_text()
    assert "paper protocol" in md and "honest protocol" in md and "see paper" in md
    return rep, md


def test_bench_eurosat_cli(tiny_vit, tmp_path):
    root = _eurosat(tmp_path / "es")
    out = tmp_path / "res"
    r = subprocess.run([sys.executable, "-m", "senclip_train.cli.main", "bench", "eurosat", "--root", str(root),
                        "--checkpoint", str(tiny_vit), "--out", str(out), "--device", "cpu", "--select-k", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rep, _ = _check_report(out, "eurosat", 30)
    for proto in ("paper", "honest"):
        res = rep["results"][proto]
        assert 0 <= res["top1"] <= res["top5"] <= 1
        assert np.array(res["confusion_matrix"]).sum() == 30 and len(res["per_class"]) == 10
    assert all(len(v) == 2 for v in rep["prompt_selection"]["prompts"].values())


def test_bench_eurosat_ms_and_errors(tiny_vit, tmp_path):
    from senclip.core.errors import InputError
    from senclip_train.bench.run import BenchOptions, run_bench

    root = _eurosat(tmp_path / "ms", per_class=1, ms=True)
    rep = run_bench(BenchOptions("eurosat", str(root), str(tmp_path / "o"), checkpoint=str(tiny_vit), device="cpu"))
    assert rep["n_images"] == 10
    (root / "2750" / "Forest" / "Forest_0.tif").unlink()
    with pytest.raises(InputError, match="Forest holds no images"):
        run_bench(BenchOptions("eurosat", str(root), str(tmp_path / "o"), checkpoint=str(tiny_vit), device="cpu"))
    (root / "2750" / "Forest" / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="bad.jpg cannot be decoded"):
        run_bench(BenchOptions("eurosat", str(root), str(tmp_path / "o"), checkpoint=str(tiny_vit), device="cpu"))


def _ben_patch(root: Path, name: str, labels: list[str], rng):
    from chipdata import write_chip

    d = root / name
    for b in ("B02", "B03", "B04"):
        write_chip(d / f"{name}_{b}.tif", rng.integers(0, 3000, (1, 120, 120)).astype("uint16"))
    (d / f"{name}_labels_metadata.json").write_text(json.dumps({"labels": labels}))


def test_bench_bigearthnet_torchgeo_layout(tiny_vit, tmp_path):
    from senclip_train.bench.run import BenchOptions, run_bench

    rng = np.random.default_rng(1)
    base = tmp_path / "ben" / "BigEarthNet-v1.0"
    _ben_patch(base, "P1", ["Pastures", "Coniferous forest"], rng)
    _ben_patch(base, "P2", ["Sea and ocean"], rng)
    _ben_patch(base, "P3", ["Airports"], rng)  # no 19-class label: skipped
    _ben_patch(base, "P4", ["Water bodies"], rng)  # not in the split
    (tmp_path / "ben" / "bigearthnet-test.csv").write_text("P1,S1x\nP2,S1y\nP3,S1z\n")
    rep = run_bench(BenchOptions("bigearthnet", str(tmp_path / "ben"), str(tmp_path / "o"), checkpoint=str(tiny_vit),
                                 device="cpu"))
    assert rep["n_images"] == 2 and rep["skipped_no_label"] == 1
    assert set(rep["results"]["honest"]) >= {"recall_at_k", "mAP_macro", "sample_f1"}


@pytest.fixture(scope="session")
def real_ben(tmp_path_factory):
    """The six real BigEarthNet-S2 patches shipped inside bigearthnet-common 2.8.0 (not imported)."""
    import tarfile

    cache = REPO / "build" / "data" / "pypi"
    whl = cache / "bigearthnet_common-2.8.0-py3-none-any.whl"
    if not whl.exists():
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "bigearthnet-common==2.8.0",
                            "-d", str(cache)], capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or not whl.exists():
            pytest.fail(f"bigearthnet-common==2.8.0 could not be downloaded from PyPI (the real-data test needs it): "
                        f"{r.stderr.strip()[-200:]}")
    dest = tmp_path_factory.mktemp("ben_real")
    with zipfile.ZipFile(whl) as z:
        z.extract("bigearthnet_common/BigEarthNet-S2-Example.tar.bz2", dest)
        constants = z.read("bigearthnet_common/constants.py").decode()
    with tarfile.open(dest / "bigearthnet_common" / "BigEarthNet-S2-Example.tar.bz2") as t:
        members = [m for m in t.getmembers() if (m.isfile() or m.isdir()) and ".." not in m.name
                   and not m.name.startswith("/")]
        t.extractall(dest, members=members)
    return dest / "BigEarthNet-S2-Example", constants


def test_label_mapping_matches_bigearthnet_common(real_ben):
    import ast

    from senclip_train.bench.datasets import BEN19, BEN43_TO_19

    _, src = real_ben
    tree = ast.parse(src)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("OLD2NEW_LABELS_DICT", "NEW_LABELS_ORIGINAL_ORDER"):
                found[node.targets[0].id] = ast.literal_eval(node.value)
    assert found["OLD2NEW_LABELS_DICT"] == BEN43_TO_19
    assert list(found["NEW_LABELS_ORIGINAL_ORDER"]) == BEN19


def test_bench_on_real_bigearthnet_patches(real_ben, tiny_vit, tmp_path):
    from senclip_train.bench import datasets as D
    from senclip_train.bench.run import BenchOptions, run_bench

    root, _ = real_ben
    classes, samples, skipped = D.bigearthnet_samples(root)
    assert len(samples) == 6 and skipped == 0
    by_name = {p.name: t for p, t in samples}
    t = by_name["S2A_MSIL2A_20170613T101031_87_48"]  # Non-irrigated arable land + Land principally occupied...
    assert [classes[i] for i in np.nonzero(t)[0]] == ["Arable land", classes[6]]
    rgb, bgr = D.read_bigearthnet(samples[0][0], D.RGB), D.read_bigearthnet(samples[0][0], D.BGR)
    assert rgb.shape == (3, 120, 120) and np.array_equal(rgb[::-1], bgr)
    rep = run_bench(BenchOptions("bigearthnet", str(root), str(tmp_path / "o"), checkpoint=str(tiny_vit),
                                 device="cpu", select_k=2, select_method="image-profile"))
    assert rep["n_images"] == 6 and rep["prompt_selection"]["transductive"] is True
    assert 0 <= rep["results"]["paper"]["recall_at_k"] <= 1
