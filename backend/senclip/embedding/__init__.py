"""From scene to embeddings: the tile grid, the reader thread that cuts chips and feeds an encoder, and the embedding store on disk.

May import: senclip.core, senclip.sentinel2, senclip.models.
"""
