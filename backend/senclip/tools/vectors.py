"""Labelled vector features (examples, reference data, queries) and the grid cells they cover.

Features come as a GeoJSON file (RFC 7946 WGS 84, or a legacy ``"crs"`` member), any other
vector format GDAL's OGR reads (GeoPackage, Shapefile; through ``osgeo.ogr`` where it is
installed), or as GeoJSON-like dicts from the QGIS worker. They are reprojected to the raster's
CRS with rasterio. A polygon covers the grid cells whose centres lie inside it; a polygon too
small to contain any cell centre, and a point, cover the cell they touch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from senclip.core.errors import InputError

GEOMETRY_TYPES = ("Point", "MultiPoint", "Polygon", "MultiPolygon")


@dataclass
class Feature:
    geometry: dict  # GeoJSON geometry in the target CRS
    label: str | None  # value of the class field (None when no field was asked for)
    index: int  # position in the source, so results can point back at features


def read_features(source, crs, *, field: str | None = None, what: str = "features") -> list[Feature]:
    """Point/polygon features of ``source`` (a path, a GeoJSON mapping or a list of GeoJSON
    features) in ``crs``; with ``field``, each one's class label (features without one are
    an error: an unlabelled example is a mistake worth hearing about)."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    raw, src_crs = _load(source, what)
    out = []
    for i, feat in enumerate(raw):
        geom = feat.get("geometry")
        if not geom or geom.get("type") not in GEOMETRY_TYPES:
            continue
        label = None
        if field is not None:
            props = feat.get("properties") or {}
            if field not in props:
                raise InputError(f"{what}: feature {i} has no field {field!r} (fields: {', '.join(props) or 'none'}); "
                                 f"choose the class field with --field")
            if props[field] is None or str(props[field]).strip() == "":
                raise InputError(f"{what}: feature {i} has an empty {field!r}; give every feature a class")
            label = str(props[field]).strip()
        out.append(Feature(geom, label, i))
    if not out:
        raise InputError(f"{what}: no point or polygon features found in {_name(source)}")
    src = CRS.from_user_input(src_crs)
    if src != crs:
        for f in out:
            f.geometry = transform_geom(src, crs, f.geometry)
    return out


def _name(source) -> str:
    return repr(str(source)) if isinstance(source, (str, Path)) else "the given features"


def _load(source, what: str) -> tuple[list[dict], str]:
    """(GeoJSON features, CRS string) from a path or in-memory GeoJSON."""
    if isinstance(source, list):
        return source, "EPSG:4326"
    if isinstance(source, dict):
        return _geojson_features(source), _geojson_crs(source)
    p = Path(source)
    if not p.exists():
        raise InputError(f"{what} file {str(p)!r} does not exist")
    if p.suffix.lower() in (".geojson", ".json"):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"{what} file {str(p)!r} is not GeoJSON ({e})") from None
        return _geojson_features(data), _geojson_crs(data)
    return _ogr_features(p, what)


def _geojson_features(data: dict) -> list[dict]:
    if data.get("type") == "FeatureCollection":
        return list(data.get("features") or [])
    if data.get("type") == "Feature":
        return [data]
    return [{"type": "Feature", "geometry": data, "properties": {}}]


def _geojson_crs(data: dict) -> str:
    """RFC 7946 GeoJSON is WGS 84; GDAL still writes a ``crs`` member for other CRSs."""
    return (data.get("crs") or {}).get("properties", {}).get("name", "EPSG:4326")


def _ogr_features(path: Path, what: str) -> tuple[list[dict], str]:
    try:
        from osgeo import ogr, osr
    except ImportError:
        raise InputError(f"{what} file {str(path)!r}: this environment reads only GeoJSON; "
                         f"convert it (e.g. ogr2ogr -f GeoJSON out.geojson {path.name})") from None
    ds = ogr.Open(str(path))
    if ds is None or ds.GetLayerCount() == 0:
        raise InputError(f"{what} file {str(path)!r} is not a vector dataset GDAL can read")
    layer = ds.GetLayer(0)
    srs = layer.GetSpatialRef()
    if srs is None:
        raise InputError(f"{what} file {str(path)!r} has no CRS; assign one (e.g. in QGIS) and try again")
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    feats = []
    for f in layer:
        g = f.GetGeometryRef()
        feats.append({"type": "Feature", "properties": f.items(),
                      "geometry": json.loads(g.ExportToJson()) if g is not None else None})
    return feats, srs.ExportToWkt()


def feature_cells(features: list[Feature], transform, shape) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per feature, the (rows, cols) of the grid cells it covers (empty when outside the grid)."""
    from rasterio.features import geometry_mask

    rows, cols = shape
    inv = ~transform
    out = []
    for f in features:
        if f.geometry["type"] in ("Point", "MultiPoint"):
            pts = [f.geometry["coordinates"]] if f.geometry["type"] == "Point" else f.geometry["coordinates"]
            rc = [(int(np.floor(r)), int(np.floor(c))) for c, r in (inv * tuple(p[:2]) for p in pts)]
            rc = [(r, c) for r, c in rc if 0 <= r < rows and 0 <= c < cols]
            out.append((np.array([r for r, _ in rc], dtype=np.int64), np.array([c for _, c in rc], dtype=np.int64)))
            continue
        window, wt = _bbox_window(f.geometry, inv, transform, shape)
        if window is None:
            out.append((np.zeros(0, np.int64), np.zeros(0, np.int64)))
            continue
        (r0, r1), (c0, c1) = window
        for touched in (False, True):  # centres inside; else (a sliver) the cells it touches
            m = geometry_mask([f.geometry], out_shape=(r1 - r0, c1 - c0), transform=wt, invert=True,
                              all_touched=touched)
            rr, cc = np.nonzero(m)
            if len(rr):
                break
        out.append((rr + r0, cc + c0))
    return out


def _bbox_window(geom: dict, inv, transform, shape):
    """Grid window around a geometry (clipped to the grid) and its transform, or (None, None)."""
    coords = np.array(list(_coords(geom)), dtype=float)
    cs, rs = inv * (coords[:, 0], coords[:, 1])
    r0, r1 = int(np.floor(rs.min())), int(np.floor(rs.max())) + 1
    c0, c1 = int(np.floor(cs.min())), int(np.floor(cs.max())) + 1
    r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, shape[0]), min(c1, shape[1])
    if r0 >= r1 or c0 >= c1:
        return None, None
    return ((r0, r1), (c0, c1)), transform * transform.translation(c0, r0)


def _coords(geom: dict):
    def walk(x):
        if isinstance(x[0], (int, float)):
            yield x[:2]
        else:
            for y in x:
                yield from walk(y)
    yield from walk(geom["coordinates"])
