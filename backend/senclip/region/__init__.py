"""Regional maps from many scenes: one Dask task per scene, per-scene COGs, one mosaic.

``sources`` turns paths, globs, folders and STAC (``stac``) into :class:`~.sources.SceneRef` s;
``task`` is what a Dask worker runs for one scene (model cached per worker process);
``manifest`` holds the run record that makes reruns resume; ``mosaic`` merges the per-scene
maps by a documented overlap rule and measures areas; ``job`` ties them together on a Dask
cluster (a ``LocalCluster`` by default, or an existing scheduler).
"""
from __future__ import annotations

from senclip.region.job import RegionResult, map_region

__all__ = ["map_region", "RegionResult"]
