"""The torch-free tokenizer must give open_clip's ids exactly: the text encoder was trained on them."""
from __future__ import annotations

import numpy as np

from senclip.models.encoders.tokenizer import ClipTokenizer, get_tokenizer, truncation_warning

LONG = "a satellite image of " + " and ".join(f"field number {i} with crops" for i in range(40))
TEXTS = [
    "", " ", "Forest", "forest", "FOREST", "Sea or Lake", "Annual Crop Land", "Residential Buildings",
    "Permanent Crop Land", "Herbaceous Vegetation Land", "Highway or Road", "Industrial Buildings", "Pasture Land",
    "River", "a centered satellite photo of forest.", "An aerial view of a river winding through fields.",
    "a photo of a Château near the Côte d'Azur", "Straße mit Bäumen", "leśna droga", "лес и река",
    "森林と川", "农田", "숲", "🌲🌲 forest 🌊", "naïve café résumé", "Ærø", "İstanbul", "ﬁne ﬂowers (ligatures)",
    "fish &amp; chips", "&lt;b&gt;bold&lt;/b&gt;", "&amp;amp; double escaped", "Tom's field isn't wet, we're ok",
    "I'll, you'd, they've, I'm", "numbers 1234567890 and 3.14", "mixed123abc456", "punctuation!!! ??? ... ---",
    "tabs\tand\nnewlines   and    spaces", "  leading and trailing  ", "under_score and hy-phen and sl/ash",
    "C'EST LA VIE", "mojibake: cafÃ©", "quotes “curly” ‘single’ «guillemets»", "math ≤ ≥ ≠ ∞ √",
    "ground-level photo, looking north, of a vineyard", LONG, LONG.upper(), "x" * 300, "word " * 100,
    "a" * 76, "ab " * 38, "Sea or Lake; Forest; River", "photo of <start_of_text> token", "end <end_of_text>",
    "Ölraffinerie und Hafen", "el río y la montaña", "السد والنهر", "हरे खेत",
]


def test_at_least_fifty_cases():
    assert len(TEXTS) >= 50


def test_ids_identical_to_open_clip():
    import open_clip.tokenizer as open_clip_tokenizer  # a missing open_clip must fail, not skip
    reference = open_clip_tokenizer.SimpleTokenizer()
    ours = get_tokenizer()
    for text in TEXTS:
        assert ours.encode(text) == reference.encode(text), text
    ids, _ = ours(TEXTS)
    expected = reference(TEXTS).numpy()
    assert ids.dtype == np.int64 and ids.shape == (len(TEXTS), 77)
    np.testing.assert_array_equal(ids, expected)


def test_truncation_reported_and_ends_with_eot():
    tok = get_tokenizer()
    ids, truncated = tok(["forest", LONG, "river"])
    assert truncated == [1]
    assert ids[1, -1] == tok.eot and ids[1, 0] == tok.sot
    assert tok.n_tokens(LONG) > 77 and tok.n_tokens("forest") == 3
    msg = truncation_warning(["forest", LONG], [1], 77)
    assert "77 tokens" in msg and "satellite image" in msg


def test_short_context_and_padding():
    tok = ClipTokenizer(context_length=8)
    ids, truncated = tok("a b c d e f g h i")
    assert ids.shape == (1, 8) and truncated == [0]
    ids, truncated = tok("forest")
    assert truncated == [] and list(ids[0, 3:]) == [0] * 5


def test_module_imports_neither_torch_nor_open_clip():
    import ast
    import inspect

    import senclip.models.encoders.tokenizer as mod

    names = {a.name.split(".")[0] for n in ast.walk(ast.parse(inspect.getsource(mod)))
             if isinstance(n, (ast.Import, ast.ImportFrom)) for a in getattr(n, "names", [])}
    roots = {n.module.split(".")[0] for n in ast.walk(ast.parse(inspect.getsource(mod)))
             if isinstance(n, ast.ImportFrom) and n.module}
    assert not ({"torch", "open_clip"} & (names | roots))
