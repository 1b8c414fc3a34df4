"""CLIP's byte-pair-encoding tokenizer without torch or open_clip.

The ONNX backend must run where neither is installed, yet produce the very token ids the model
was trained with; so this is OpenAI CLIP's tokenizer (MIT licence, Copyright (c) 2021 OpenAI, as
redistributed by open_clip; see ``resources/LICENSE-clip-bpe.txt``) returning numpy arrays.
A test compares it id for id with open_clip's.
"""
from __future__ import annotations

import gzip
import html
from functools import lru_cache
from pathlib import Path

import numpy as np

VOCAB = Path(__file__).resolve().parent.parent / "resources" / "bpe_simple_vocab_16e6.txt.gz"
CONTEXT_LENGTH = 77


@lru_cache()
def _bytes_to_unicode() -> dict[int, str]:
    """Map every byte to a printable character so BPE never sees whitespace or control bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _pairs(word: tuple) -> set:
    return {(a, b) for a, b in zip(word, word[1:])}


def _clean(text: str) -> str:
    """open_clip's default 'lower' cleaning: fix mojibake, unescape HTML twice, collapse spaces."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).strip().lower()


class ClipTokenizer:
    """Text → int64 token ids of shape (N, context_length), padded with zeros."""

    def __init__(self, bpe_path: str | Path = VOCAB, context_length: int = CONTEXT_LENGTH) -> None:
        import regex

        merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(_bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        specials = ["<start_of_text>", "<end_of_text>"]
        vocab.extend(specials)
        self.byte_encoder = _bytes_to_unicode()
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {t: t for t in specials}
        self.pat = regex.compile("|".join(specials) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                                 regex.IGNORECASE)
        self.sot, self.eot = self.encoder[specials[0]], self.encoder[specials[1]]
        self.context_length = context_length
        self.vocab_size = len(self.encoder)

    def _bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = _pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new.extend(word[i:])
                    break
                new.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
            if len(word) == 1:
                break
            pairs = _pairs(word)
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        """BPE ids of one text, without start/end tokens and without truncation."""
        ids: list[int] = []
        for token in self.pat.findall(_clean(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(token).split(" "))
        return ids

    def n_tokens(self, text: str) -> int:
        """Length including start and end tokens: > context_length means truncation."""
        return len(self.encode(text)) + 2

    def __call__(self, texts: str | list[str]) -> tuple[np.ndarray, list[int]]:
        """Token ids (N, context_length) int64, and the indices of texts that were truncated.

        Truncation keeps the first ``context_length - 1`` tokens and ends with the end token,
        as open_clip does (silently); callers warn with the returned indices.
        """
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        truncated: list[int] = []
        for i, text in enumerate(texts):
            ids = [self.sot] + self.encode(text) + [self.eot]
            if len(ids) > self.context_length:
                ids = ids[:self.context_length]
                ids[-1] = self.eot
                truncated.append(i)
            out[i, :len(ids)] = ids
        return out, truncated


@lru_cache(maxsize=4)
def get_tokenizer(context_length: int = CONTEXT_LENGTH) -> ClipTokenizer:
    """A shared tokenizer: reading the 1.3 MB vocabulary costs ~0.3 s, do it once."""
    return ClipTokenizer(context_length=context_length)


def truncation_warning(texts: list[str], truncated: list[int], context_length: int) -> str:
    """The one message both backends give for over-long prompts."""
    shown = "; ".join(repr(texts[i][:60] + ("…" if len(texts[i]) > 60 else "")) for i in truncated[:3])
    more = f" and {len(truncated) - 3} more" if len(truncated) > 3 else ""
    return (f"{len(truncated)} prompt(s) longer than the text encoder's {context_length} tokens were truncated: "
            f"{shown}{more}; shorten them to keep their ends")
