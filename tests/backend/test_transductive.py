"""Transductive zero-shot (senclip.zeroshot.transductive, knn, spatial, transductive_map) on problems whose
answer is known: Gaussian mixtures where the zero-shot text posterior is biased, a map whose
zero-shot labels are salt-and-pepper, the BMM updates against the paper's formulas written out
naively, and the CLI / few-shot wiring with its run record."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

import senclip
from senclip.zeroshot import knn, spatial, transductive
from senclip.core.errors import InputError
from senclip.zeroshot.transductive import solve, transduce
from senclip.zeroshot.head import probabilities


def mixture(n=3000, k=5, d=96, noise=0.06, bias=0.9, seed=1):
    """Unit features of k clusters and class texts pulled towards class 0 by ``bias``."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((k, d))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    label = rng.integers(0, k, n)
    x = means[label] + noise * rng.standard_normal((n, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    texts = ((1 - bias) * means + bias * means[[0]] + 0.05 * rng.standard_normal((k, d))).astype(np.float32)
    return x, label, texts


def zero_shot(x, texts):
    return probabilities(x, texts / np.linalg.norm(texts, axis=1, keepdims=True))


@pytest.mark.numeric
def test_recovers_the_clusters_where_zero_shot_is_biased():
    x, label, texts = mixture()
    zs = (zero_shot(x, texts).argmax(1) == label).mean()
    z = transduce(x, texts)
    assert zs < 0.87  # the text prior alone is biased towards class 0
    assert (z.argmax(1) == label).mean() > 0.95
    assert z.dtype == np.float32 and z.shape == (len(x), 5)
    assert np.allclose(z.sum(1), 1, atol=1e-5)


def test_the_text_prior_names_the_clusters():
    """The GMM finds clusters; the KL term decides which class each is: with the texts of two
    classes swapped, their clusters swap too."""
    x, label, texts = mixture(bias=0.3)
    swapped = texts[[1, 0, 2, 3, 4]]
    pred = transduce(x, swapped).argmax(1)
    expect = np.choose(label, [1, 0, 2, 3, 4])
    assert (pred == expect).mean() > 0.97


def naive_steps(x, texts, outer, inner, top, scale=transductive.LIKELIHOOD_SCALE, affinity=None):
    """The published updates, one cell and one class at a time, with the full Gaussian log-density:
    unit means seeded by the ŷ-weighted top cells, outer μ/Σ updates between outer + 1 z-blocks;
    ``affinity``: a dense (N, N) W̃ whose Laplacian pull W̃ z enters every z-step (None: no graph)."""
    n, d = x.shape
    k = len(texts)
    t = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    logits = 100.0 * x.astype(np.float64) @ t.T
    log_y = np.array([[logits[i, c] - logits[i].max()
                       - np.log1p(sum(np.exp(logits[i, j] - logits[i].max()) for j in range(k) if j != logits[i].argmax()))
                       for c in range(k)] for i in range(n)])  # log1p: saturated rows keep their order
    y = np.exp(log_y)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    mu = unit(np.stack([sum(y[i, c] * x[i] for i in np.argsort(-log_y[:, c])[:top]) for c in range(k)]))
    var = np.full(d, 1.0 / d)
    z = y
    for it in range(outer + 1):
        logp = np.array([[-0.5 * np.sum((x[i] - mu[c]) ** 2 / var) - 0.5 * np.sum(np.log(2 * np.pi * var))
                          for c in range(k)] for i in range(n)])
        for _ in range(inner):
            e = log_y + scale * logp + (0 if affinity is None else affinity @ z)
            z = np.exp(e - e.max(1, keepdims=True))
            z /= z.sum(1, keepdims=True)
        if it == outer:
            break
        mu = unit((z.T @ x) / z.sum(0)[:, None])
        var = sum(z[i, c] * (x[i] - mu[c]) ** 2 for i in range(n) for c in range(k)) / n
    return z


@pytest.mark.parametrize("outer", [1, 3])
def test_updates_are_the_papers_formulas(outer):
    x, _, texts = mixture(n=60, k=3, d=6, noise=0.5, bias=0.4, seed=4)
    got = transduce(x, texts, method="transclip", neighbours=0, outer=outer, inner=1, init_top=8)
    want = naive_steps(x.astype(np.float64), texts, outer, 1, 8)
    assert np.abs(got - want).max() < 1e-4


def test_defaults_are_the_published_schedule():
    """method="transclip" with the other defaults runs the published TransCLIP configuration (10 outer
    x 5 inner, top-8 seeds, s = 1/50, λ = 1, T = 100): the answer equals the naive updates with those numbers."""
    x, _, texts = mixture(n=60, k=3, d=6, noise=0.5, bias=0.4, seed=5)
    want = naive_steps(x.astype(np.float64), texts, outer=10, inner=5, top=8, scale=1 / 50)
    assert np.abs(transduce(x, texts, method="transclip", neighbours=0) - want).max() < 1e-4


def test_whole_published_solver_with_its_knn_graph():
    """GMM, Laplacian and KL terms together, default schedule, against the naive updates with a
    hand-built graph: brute-force 3 nearest cosines (self excluded), (W + Wᵀ) / 2k."""
    x, _, texts = mixture(n=120, k=3, d=8, noise=0.5, bias=0.4, seed=6)
    s = x.astype(np.float64) @ x.T.astype(np.float64)
    np.fill_diagonal(s, -np.inf)
    w = np.zeros_like(s)
    for i, row in enumerate(s):
        nb = np.argsort(-row)[:3]
        w[i, nb] = row[nb]
    want = naive_steps(x.astype(np.float64), texts, outer=10, inner=5, top=8, affinity=(w + w.T) / 6)
    assert np.abs(transduce(x, texts, method="transclip") - want).max() < 1e-4


def test_affinity_term_is_the_symmetrised_knn_cosine():
    """The first z-step on a graph of known cosines: z_i ∝ ŷ_i^λ exp(s log p_i + Σ_j w̃_ij ŷ_j)
    (z starts at ŷ), w̃ = (W + Wᵀ) / 2k."""
    x, _, texts = mixture(n=40, k=3, d=8, noise=0.5, seed=2)
    idx, sim = knn.exact_knn(x, 3)
    w = np.zeros((40, 40))
    for i in range(40):
        w[i, idx[i]] = sim[i]
    w = (w + w.T) / 6.0
    base = np.log(solve(x, texts, method="transclip", neighbours=0, outer=0, inner=1).probs)  # λ log ŷ + s log p
    e = base + w @ zero_shot(x, texts)
    want = np.exp(e - e.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    got = transduce(x, texts, method="transclip", neighbours=3, knn="exact", outer=0, inner=1)
    assert np.abs(got - want).max() < 1e-4


def test_no_overflow_with_extreme_logits():
    x, label, texts = mixture(n=500)
    z = transduce(x, texts, temperature=1e5, likelihood_scale=10.0)
    assert np.isfinite(z).all() and np.allclose(z.sum(1), 1, atol=1e-5)


def test_float16_input_and_unnormalised_rows_give_the_same_answer():
    x, _, texts = mixture(n=800)
    a = transduce(x, texts)
    b = transduce((3.0 * x).astype(np.float16), texts)
    assert (a.argmax(1) == b.argmax(1)).mean() > 0.99


def test_labelled_support_is_fixed_and_corrects_a_wrong_prompt():
    """Few-shot: class 1's prompt is class 0's, so zero-shot never finds cluster 1 (orthogonal
    cluster means: nothing else in the texts points at it); 5 labelled cells of class 1 seed its
    mean and, with the text prior weighed down (λ = 0.3), the solver recovers the cluster."""
    rng = np.random.default_rng(5)
    means = np.linalg.qr(rng.standard_normal((96, 5)))[0].T  # 5 orthonormal rows
    label = rng.integers(0, 5, 3000)
    x = means[label] + 0.06 * rng.standard_normal((3000, 96))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    bad = means.astype(np.float32)
    bad[1] = means[0]
    assert (transduce(x, bad).argmax(1)[label == 1] == 1).mean() < 0.6
    sup_idx = np.flatnonzero(label == 1)[:5]
    odd = int(np.flatnonzero(label == 3)[0])  # labelled 2 although its features say 3: stays 2
    pred = transduce(x, bad, support=(np.r_[sup_idx, odd], np.r_[np.ones(5, int), 2]), lam=0.3).argmax(1)
    assert pred[odd] == 2 and (pred[sup_idx] == 1).all()
    assert (pred[label == 1] == 1).mean() > 0.95 and (pred[label == 0] == 0).mean() > 0.95


def test_bad_inputs_say_what_is_wrong():
    x, _, texts = mixture(n=50)
    with pytest.raises(InputError, match="same D"):
        transduce(x, texts[:, :10])
    with pytest.raises(InputError, match="at least 2 classes"):
        transduce(x, texts[:1])
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        transduce(bad, texts)
    with pytest.raises(InputError, match="labelled support"):
        transduce(x, texts, support=([0, 99], [0, 1]))
    from scipy import sparse

    with pytest.raises(InputError, match=r"\(50, 50\) graph"):
        transduce(x, texts, edges=sparse.eye(49))
    with pytest.raises(InputError, match="≥ 0"):
        transduce(x, texts, edges=([0], [1], [-1.0]))
    with pytest.raises(InputError, match="kNN method"):
        transduce(x, texts, knn="annoy")


def test_package_exports_transduce_lazily():
    assert senclip.transduce is transduce


# --- kNN --------------------------------------------------------------------------------------
def low_rank(n, d=128, r=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, r)) @ rng.standard_normal((r, d)) + 0.05 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_exact_knn_matches_brute_force_and_excludes_self():
    x = low_rank(700)
    idx, sim = knn.exact_knn(x, 3)
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    want = np.argsort(-s, axis=1)[:, :3]
    assert (idx == want).mean() > 0.999
    assert not (idx == np.arange(700)[:, None]).any()
    assert np.allclose(sim, np.take_along_axis(s, idx, 1), atol=1e-5)


def test_tree_knn_finds_most_true_neighbours():
    x = low_rank(6000)
    exact, _ = knn.exact_knn(x, 3)
    got, sim = knn.feature_knn(x, 3, method="tree")
    recall = np.mean([len(set(a) & set(b)) / 3 for a, b in zip(exact, got)])
    assert recall > 0.7  # measured 0.77 (two trees + one refinement round)
    assert not (got == np.arange(6000)[:, None]).any()
    assert np.allclose(sim, np.einsum("id,ijd->ij", x, x[got]), atol=1e-5)  # full-D cosines


def test_auto_policy_and_missing_faiss(monkeypatch):
    """auto: exact for small scenes, the numpy trees above (no library needed, whether or not
    faiss is installed); faiss only on request, and its absence is a clear error."""
    assert knn.resolve("auto", knn.EXACT_MAX) == "exact"
    for present in (False, True):
        monkeypatch.setattr(knn, "faiss_available", lambda: present)
        assert knn.resolve("auto", knn.EXACT_MAX + 1) == "tree"
    assert knn.resolve("faiss", 10) == "faiss"
    import builtins

    real = builtins.__import__

    def no_faiss(name, *a, **k):
        if name == "faiss":
            raise ImportError("no faiss")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    with pytest.raises(InputError, match="pip install faiss-cpu"):
        knn.faiss_knn(np.zeros((10, 4), np.float32), 3)


# --- compiled kernels ------------------------------------------------------------------------
def random_graph(n=3000, nnz=20000, seed=0):
    from scipy import sparse

    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, n, nnz), rng.integers(0, n, nnz)
    g = sparse.csr_matrix((rng.random(nnz).astype(np.float32) * 3, (i, j)), shape=(n, n), dtype=np.float32)
    g.data[g.indptr[5]:g.indptr[6]] = 0  # a row without edges
    g.eliminate_zeros()
    return g


@pytest.mark.numeric
def test_compiled_z_step_equals_the_scipy_twin(monkeypatch):
    """The numba z-step (fused CSR product + row softmax) against scipy's product and numpy's
    softmax, the reference it replaces, on a random graph with repeated and empty rows."""
    from senclip.zeroshot import kernels

    assert kernels.compiled(), "numba must be installed for make test (requirements/backend.txt)"
    g = random_graph()
    rng = np.random.default_rng(1)
    base = (rng.standard_normal((3000, 7)) * 30).astype(np.float32)
    z = rng.dirichlet(np.ones(7), 3000).astype(np.float32)
    fast = kernels.z_step(g, base, z)
    monkeypatch.setenv("SENCLIP_NUMBA", "0")
    assert not kernels.compiled()
    slow = kernels.z_step(g, base, z)
    e = base.astype(np.float64) + g.astype(np.float64) @ z
    want = np.exp(e - e.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    assert np.abs(fast - want).max() < 1e-5 and np.abs(slow - want).max() < 1e-5
    assert np.abs(kernels.z_step(None, base, z) - kernels.z_step(g * 0, base, z)).max() < 1e-6


@pytest.mark.numeric
def test_compiled_pair_dots_equal_numpy(monkeypatch):
    from senclip.zeroshot import kernels

    x = low_rank(500)
    rng = np.random.default_rng(2)
    i, j = rng.integers(0, 500, 40000).astype(np.int32), rng.integers(0, 500, 40000)
    want = np.einsum("ij,ij->i", x[i].astype(np.float64), x[j])
    assert np.abs(kernels.pair_dots(x, i, j) - want).max() < 1e-5
    monkeypatch.setenv("SENCLIP_NUMBA", "0")
    assert np.abs(kernels.pair_dots(x, i, j) - want).max() < 1e-5


@pytest.mark.numeric
def test_solver_answers_alike_with_and_without_numba(monkeypatch):
    valid = np.ones((40, 50), bool)
    x, label, texts = mixture(n=2000, seed=7)
    edges = spatial.grid_edges(valid, x)
    fast = solve(x, texts, edges=edges)
    assert fast.record["loops"].startswith("numba ")
    monkeypatch.setenv("SENCLIP_NUMBA", "0")
    slow = solve(x, texts, edges=edges)
    assert slow.record["loops"] == "numpy/scipy" and np.abs(slow.probs - fast.probs).max() < 1e-4


def test_graph_is_knn_plus_edges_in_any_form():
    """One CSR from triplets: kNN (W + Wᵀ)/2k plus extra edges given as a matrix or (i, j, w),
    duplicates summed, times the Laplacian weight; bad edges are refused with the reason."""
    from scipy import sparse

    x = low_rank(300)
    idx, sim = knn.exact_knn(x, 3)
    w = np.zeros((300, 300))
    np.put_along_axis(w, idx, sim, axis=1)
    extra_i, extra_j = np.array([0, 0, 7]), np.array([1, 1, 9])
    extra = np.zeros((300, 300))
    np.add.at(extra, (extra_i, extra_j), 0.5)
    want = 2.0 * ((w + w.T) / 6 + extra)
    for edges in ((extra_i, extra_j, np.full(3, 0.5)), sparse.coo_matrix((np.full(3, 0.5), (extra_i, extra_j)),
                                                                          shape=(300, 300))):
        g, used = transductive._graph(x, 3, "exact", 2.0, edges, None)
        assert used == "exact" and np.abs(g.toarray() - want).max() < 1e-5
    for bad, why in (((extra_i, extra_j, -np.ones(3)), "≥ 0"), ((extra_i, extra_j + 300, np.ones(3)), "0..299"),
                     (sparse.eye(5), r"\(300, 300\)"), ((extra_i, extra_j, np.ones(2)), "one length")):
        with pytest.raises(InputError, match=why):
            transductive._graph(x, 3, "exact", 1.0, bad, None)


# --- spatial edges ----------------------------------------------------------------------------
@pytest.mark.parametrize("connectivity", [4, 8])
def test_neighbour_pairs_are_every_grid_neighbour_once(connectivity):
    valid = np.ones((5, 7), bool)
    valid[2, 3] = valid[0, 6] = False
    i, j = spatial.neighbour_pairs(valid, connectivity)
    number = -np.ones(valid.shape, int)
    number[valid] = np.arange(valid.sum())
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)] + ([(1, 1), (1, -1), (-1, 1), (-1, -1)] if connectivity == 8 else [])
    want = {frozenset((number[r, c], number[r + dr, c + dc])) for r in range(5) for c in range(7)
            for dr, dc in steps if 0 <= r + dr < 5 and 0 <= c + dc < 7 and valid[r, c] and valid[r + dr, c + dc]}
    got = [frozenset(p) for p in zip(i.tolist(), j.tolist())]
    assert len(got) == len(set(got)) and set(got) == want


def salt_and_pepper_map(seed=3):
    """60 × 60 cells in 4 class patches; per-cell noise makes ~10 % of zero-shot labels wrong,
    scattered as isolated cells."""
    rng = np.random.default_rng(seed)
    r = c = 60
    truth = ((np.arange(r)[:, None] // 20) * 2 + (np.arange(c)[None, :] // 30)) % 4
    means = rng.standard_normal((4, 64))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    x = means[truth.ravel()] + 0.40 * rng.standard_normal((r * c, 64))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    texts = (means + 0.05 * rng.standard_normal((4, 64))).astype(np.float32)
    return truth, x, texts


def isolated(labels):
    """Cells none of whose 8 neighbours shares their label (the salt and the pepper)."""
    pad = np.pad(labels, 1, constant_values=-1)
    h, w = labels.shape
    same = sum(pad[1 + dr:h + 1 + dr, 1 + dc:w + 1 + dc] == labels
               for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc)
    return int((same == 0).sum())


def test_spatial_edges_remove_salt_and_pepper():
    truth, x, texts = salt_and_pepper_map()
    valid = np.ones(truth.shape, bool)
    zs = zero_shot(x, texts).argmax(1).reshape(truth.shape)
    paper = transduce(x, texts).argmax(1).reshape(truth.shape)
    smooth = transduce(x, texts, edges=spatial.grid_edges(valid, x)).argmax(1).reshape(truth.shape)
    assert isolated(zs) > 200 and isolated(paper) > 200  # the feature graph alone does not fix it
    assert isolated(smooth) < 0.6 * isolated(zs)
    assert (smooth == truth).mean() > (zs == truth).mean() + 0.04


def test_spatial_weights_follow_embedding_similarity():
    valid = np.ones((1, 3), bool)
    x = np.array([[1, 0], [1, 0], [0, 1]], np.float32)  # cells 0, 1 alike; 1, 2 not
    w = spatial.grid_edges(valid, x, connectivity=4).toarray()
    assert w[0, 1] == w[1, 0] and w[0, 1] > 2 * w[1, 2] and w[0, 2] == 0
    assert np.isclose((w[0, 1] + w[1, 2]) / 2, spatial.DEFAULT_WEIGHT)  # mean edge = the weight
    with pytest.raises(InputError, match="4 or 8"):
        spatial.grid_edges(valid, x, connectivity=6)


# --- the store, the CLI and few-shot ----------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_checkpoint):
    from s2data import write_s2

    d = tmp_path_factory.mktemp("trans")
    return senclip.embed(write_s2(d / "scene.tif"), d / "store", checkpoint=tiny_checkpoint, tile=16, stride=8,
                         device="cpu").path


def test_cli_transductive_records_the_run(store, tmp_path, capsys):
    from senclip.cli.main import main

    out = tmp_path / "t.tif"
    with pytest.raises(SystemExit) as e:
        main(["-q", "classify", "--embeddings", str(store), "--classes", "green;blue;grey", "--out", str(out),
              "--transductive", "--spatial", "4", "--json"])
    assert e.value.code == 0, capsys.readouterr().err
    res = json.loads(capsys.readouterr().out)
    with rasterio.open(out) as ds:
        rec = json.loads(ds.tags()["SENCLIP_TRANSDUCTIVE"])
        cls = ds.read(1)
    assert rec == res["transductive"]
    assert rec["spatial"] == "4" and rec["knn"] == "exact" and rec["method"] == "realistic"
    assert rec["params"]["neighbours"] == 3 and rec["params"]["outer"] == 10 and rec["params"]["drop"] == 0.1
    assert all(set(a) == {"class", "index", "share", "dropped"} for a in rec["absent"])
    assert rec["cells"] == int(np.load(store / "valid.npy").sum()) == int((cls > 0).sum())
    plain = tmp_path / "p.tif"
    with pytest.raises(SystemExit):
        main(["-q", "classify", "--embeddings", str(store), "--classes", "green;blue;grey", "--out", str(plain)])
    with rasterio.open(plain) as ds:
        assert ds.tags()["SENCLIP_TRANSDUCTIVE"] == "off"
    with pytest.raises(SystemExit) as e:
        main(["-q", "classify", "--embeddings", str(store), "--classes", "green;blue", "--out",
              str(tmp_path / "x.tif"), "--transductive", "--calibrate", "column-mean"])
    assert e.value.code == 2 and "use one of them" in capsys.readouterr().err
    assert not (tmp_path / "x.tif").exists()


def test_fewshot_transductive_keeps_its_examples(store, tmp_path):
    from senclip.tools.fewshot import fewshot

    items = [(330100 + 60 * i, 5821500, "green") for i in range(5)] + \
            [(331200 + 60 * i, 5821500, "blue") for i in range(5)]
    ex = tmp_path / "ex.geojson"
    ex.write_text(json.dumps({"type": "FeatureCollection",
                              "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
                              "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                                            "properties": {"class": c}} for x, y, c in items]}))
    res = fewshot(store, tmp_path / "fs.tif", examples=ex, transductive=True)
    with rasterio.open(res.map.path) as ds:
        cls = ds.read(1)
        rec = json.loads(ds.tags()["SENCLIP_TRANSDUCTIVE"])
        rows, cols = rasterio.transform.rowcol(ds.transform, [p[0] for p in items], [p[1] for p in items])
    assert rec["support"] == 10
    assert [int(cls[r, c]) for r, c in zip(rows, cols)] == [1] * 5 + [2] * 5
    w = cls.shape[1]
    assert (cls[2:-2, 1: w // 2 - 2] == 1).mean() > 0.9 and (cls[2:-2, w // 2 + 2: -1] == 2).mean() > 0.9


def test_store_path_normalises_in_blocks_and_refuses_zero_cells(tmp_path, monkeypatch):
    """The store is read into one float32 array and normalised block by block (no (N, D)
    temporary); the answer equals the solver on the same rows, and an all-zero valid cell is a
    clear error."""
    from senclip.embedding.store import EmbeddingStore, StoreWriter
    from senclip.zeroshot import transductive_map

    monkeypatch.setattr(transductive_map, "NORM_ROWS", 7)  # many blocks, a short last one
    x, label, texts = mixture(n=600, k=3, d=16, seed=8)
    valid = np.ones((20, 30), bool)
    valid[3, 4:9] = False

    def write(path, rows):
        w = StoreWriter(path, rows=20, cols=30, dim=16, meta={"test": True})
        rr, cc = np.nonzero(valid)
        w.write(rr, cc, (3.0 * rows[:len(rr)]).astype(np.float16))  # not unit length: normalised on read
        w.valid[rr, cc] = True
        w.commit()

    write(tmp_path / "ok", x)
    probs, record = transductive_map.store_transduce(EmbeddingStore(tmp_path / "ok"), texts, spatial="none")
    unit = (3.0 * x[:valid.sum()]).astype(np.float16).astype(np.float32)
    want = transduce(unit, texts)
    assert np.abs(probs[valid] - want).max() < 1e-3 and (probs[~valid] == 0).all()
    bad = x.copy()
    bad[11] = 0
    write(tmp_path / "bad", bad)
    with pytest.raises(InputError, match="all-zero"):
        transductive_map.store_transduce(EmbeddingStore(tmp_path / "bad"), texts)
