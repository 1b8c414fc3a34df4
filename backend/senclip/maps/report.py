"""The accuracy report as files: JSON (everything), two CSV tables, a PNG of the error matrix and a
one-page HTML that embeds the picture. All written into a hidden folder and renamed at the end."""
from __future__ import annotations

import base64
import csv
import io
import json
from html import escape
from pathlib import Path

import numpy as np

from senclip.core.outputs import Staged, all_or_nothing, marked, prepare_output

CELL = 44


def write_report(report: dict, out, *, overwrite: bool = False) -> Path:
    path = prepare_output(out, overwrite, kind="report")
    with all_or_nothing(lambda: Staged(path, folder=True)) as writer:
        d = writer.tmp
        (d / "accuracy.json").write_text(json.dumps(marked(report), indent=2), encoding="utf-8")
        _write_csv(d / "confusion.csv", confusion_rows(report))
        _write_csv(d / "classes.csv", class_rows(report))
        png = confusion_png(report)
        (d / "confusion.png").write_bytes(png)
        (d / "report.html").write_text(html_page(report, png), encoding="utf-8")
        return writer.commit()


def _write_csv(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def confusion_rows(report: dict) -> list[list]:
    names = report["classes"]
    rows = [["map \\ reference", *names, "total"]]
    for name, row in zip(names, report["matrix"]):
        rows.append([name, *row, sum(row)])
    cols = np.asarray(report["matrix"]).sum(0).tolist() if names else []
    rows.append(["total", *cols, report["samples"]])
    return rows


def _fmt(x, pct: bool = False) -> str:
    if x is None:
        return ""
    return f"{100 * x:.1f}" if pct else f"{x:.4g}"


def class_rows(report: dict) -> list[list]:
    """Per class: precision/recall/F1 and the area-adjusted estimates with 95 % CIs."""
    aa = report["area_adjusted"]["per_class"]
    head = ["class", "precision", "recall", "f1", "map_samples", "reference_samples", "map_pixels",
            "map_area_km2", "area_km2", "area_km2_ci95", "area_proportion", "area_proportion_ci95",
            "users_accuracy", "users_accuracy_ci95", "producers_accuracy", "producers_accuracy_ci95"]
    rows = [head]
    for name in report["classes"]:
        pc, a = report["per_class"][name], aa[name]
        km2 = lambda key: None if a.get(key) is None else a[key] / 1e6  # noqa: E731
        rows.append([name, _fmt(pc["precision"]), _fmt(pc["recall"]), _fmt(pc["f1"]), pc["map_samples"],
                     pc["reference_samples"], a["map_pixels"], _fmt(km2("map_area_m2")), _fmt(km2("area_m2")),
                     _fmt(km2("area_m2_ci95")), _fmt(a["area_proportion"]), _fmt(a["area_proportion_ci95"]),
                     _fmt(a["users_accuracy"]), _fmt(a["users_accuracy_ci95"]), _fmt(a["producers_accuracy"]),
                     _fmt(a["producers_accuracy_ci95"])])
    return rows


def confusion_png(report: dict) -> bytes:
    """The error matrix as a picture: counts in cells shaded by their share of the map row."""
    from PIL import Image, ImageDraw

    from senclip.maps.preview import _font, draw_width

    names = report["classes"]
    m = np.asarray(report["matrix"], dtype=np.float64).reshape(len(names), len(names))
    font, small = _font(13), _font(11)
    label_w = int(max([draw_width(n, font) for n in names] + [60])) + 16
    top = label_w + 40
    k = len(names)
    w, h = label_w + 30 + CELL * k + 20, top + CELL * k + 60
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), "Error matrix (rows: map, columns: reference)", fill="black", font=font)
    # column labels, drawn rotated
    for j, name in enumerate(names):
        tw = int(draw_width(name, font)) + 4
        lab = Image.new("RGBA", (tw, 18), (255, 255, 255, 0))
        ImageDraw.Draw(lab).text((2, 1), name, fill="black", font=font)
        lab = lab.rotate(90, expand=True)
        img.paste(lab, (label_w + 30 + j * CELL + CELL // 2 - 9, top - 6 - lab.size[1]), lab)
    rows = m.sum(1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    for i, name in enumerate(names):
        y = top + i * CELL
        draw.text((label_w + 26 - draw_width(name, font), y + CELL // 2 - 8), name, fill="black", font=font)
        for j in range(k):
            x = label_w + 30 + j * CELL
            s = share[i, j]
            colour = (int(255 - 205 * s), int(255 - 150 * s), int(255 - 60 * s))
            draw.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=colour,
                           outline="black" if i == j else (200, 200, 200))
            text = str(int(m[i, j]))
            draw.text((x + CELL / 2 - draw_width(text, small) / 2, y + CELL // 2 - 7), text,
                      fill="white" if s > 0.6 else "black", font=small)
    oa, kappa = report.get("overall_accuracy"), report.get("kappa")
    foot = f"n = {report['samples']}   OA = {_fmt(oa, True)} %   kappa = {_fmt(kappa)}"
    draw.text((10, top + CELL * k + 12), foot, fill="black", font=font)
    if report.get("note"):
        draw.text((10, top + CELL * k + 32), report["note"], fill=(176, 0, 32), font=small)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def html_page(report: dict, png: bytes) -> str:
    aa = report["area_adjusted"]
    rows = class_rows(report)
    table = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{escape(str(c))}</{'th' if i == 0 else 'td'}>"
                                     for c in row) + "</tr>" for i, row in enumerate(rows))
    note = f'<p class="note">{escape(report["note"])}</p>' if report.get("note") else ""
    warn = ""
    if report.get("reference_only_classes"):
        warn += f"<p>Reference classes not in the map (counted as errors): {escape(', '.join(report['reference_only_classes']))}</p>"
    if aa.get("unsampled_strata"):
        warn += f"<p>Map classes without reference samples (left out of area estimates): {escape(', '.join(aa['unsampled_strata']))}</p>"
    img = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>SenCLIP accuracy report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:1em auto}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 5px;text-align:right}}.note{{color:#b00020;font-weight:bold}}</style></head>
<body><h1>Accuracy report</h1>{note}
<p>Class map: <code>{escape(report['classmap'])}</code><br>Reference: <code>{escape(report['reference'])}</code>
(field <code>{escape(report['field'])}</code>, {report['reference_features']} features)<br>
Sampling unit: {escape(report['unit'])}; {report['samples']} samples ({report['unclassified_samples']} on unclassified pixels left out).</p>
<p><b>Overall accuracy</b> {_fmt(report['overall_accuracy'], True)} % &nbsp; <b>Cohen's kappa</b> {_fmt(report['kappa'])}
&nbsp; <b>Area-weighted overall accuracy</b> (Olofsson et al. 2014) {_fmt(aa['overall_accuracy'], True)} % ± {_fmt(aa['overall_accuracy_ci95'], True)} (95 % CI)</p>
{warn}<img src="data:image/png;base64,{img}" alt="error matrix">
<h2>Per class</h2><p>precision = user's accuracy and recall = producer's accuracy of the sample; the area and
*_accuracy columns are the stratified estimators of Olofsson et al. (2014) with 95 % confidence intervals (±).</p>
<table>{table}</table></body></html>
"""
