"""Embedding tools on a store: few-shot refinement, find similar, change between dates, accuracy against reference vectors.

May import: senclip.core, senclip.sentinel2, senclip.models, senclip.embedding, senclip.zeroshot, senclip.maps, senclip.api.
"""
