"""From embeddings to class probabilities: prompt sets, the zero-shot head, and text queries against a store.

May import: senclip.core, senclip.models, senclip.embedding.
"""
