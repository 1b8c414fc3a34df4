"""Writing results: class maps (grid or pixel resolution) as GeoTIFF with styles, grid rasters, previews and reports.

May import: senclip.core, senclip.embedding, senclip.zeroshot.
"""
