"""Writes the line review's outputs: report.html, summary.md and findings.json.

agent.py does the reading and checking; this module only draws and writes, so
the deck's look can change without touching a check. The HTML is one file
with its charts embedded as base64 PNGs: it opens from the job's outputs
without a server, a network or any other file.
"""
import base64
import html
import io
import json
import os
import tempfile

# The sandbox's HOME may be read-only, and matplotlib writes a font cache at import.
if "MPLCONFIGDIR" not in os.environ:
    os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="mpl-")
# Debian's matplotlib reads its defaults from /etc/matplotlibrc, which a sandbox with a
# synthesised /etc lacks; the same file ships under /usr/share.
if "MATPLOTLIBRC" not in os.environ and not os.path.exists("/etc/matplotlibrc") \
        and os.path.exists("/usr/share/matplotlib/mpl-data/matplotlibrc"):
    os.environ["MATPLOTLIBRC"] = "/usr/share/matplotlib/mpl-data/matplotlibrc"

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # no display in a sandbox
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

BLUE, PALE, RED = "#4a78b5", "#9db7d9", "#d9534f"


def png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def charts(rv):
    """{name: base64 PNG} for whatever series the checks left on the review."""
    d, out = rv.d, {}
    if rv.monthly is not None:
        m = rv.monthly
        late = m.index.to_timestamp() > d.period_end if d.period_end is not None else np.zeros(len(m), bool)
        fig, ax = plt.subplots(figsize=(7.5, 3))
        ax.bar(m.index.astype(str), m.values / 1e6, color=np.where(late, RED, BLUE))
        for x, v in zip(np.flatnonzero(late), m.values[late]):  # a few late sales are invisible as bars
            ax.annotate(f"EUR {v:,.0f}", (x, v / 1e6), xytext=(0, 4), textcoords="offset points", ha="center",
                        color=RED, fontsize=7)
        ax.set(title=f"Sales per month in {d.txn[0].name} (red: after the period end)", ylabel="EUR million")
        ax.tick_params(axis="x", rotation=45, labelsize=7)
        out["monthly"] = png(fig)
    if rv.actual_q is not None and d.period_end is not None:
        y, regions = d.period_end.year, sorted(d.regions)
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        for q in range(1, d.period_end.quarter + 1):
            ax.bar(np.arange(len(regions)) + (q - 2) * .25, [rv.actual_q.get((r, y, q), 0) / 1e6 for r in regions],
                   .25, label=f"Q{q} from transactions", color=[PALE, "#7096c8", BLUE, "#2d4f80"][q - 1])
        for (r, yy, q), v in rv.stated.items():
            if yy == y and r in regions:
                ax.plot(regions.index(r) + (q - 2) * .25, v / 1e6, "v", color=RED, ms=10,
                        label=f"{d.regions[r]} Q{q} as reported")
        ax.set_xticks(range(len(regions)), [d.regions[r] for r in regions])
        ax.set(title=f"Revenue by region and quarter, {y}", ylabel="EUR million")
        ax.set_ylim(top=ax.get_ylim()[1] * 1.25)  # room for the legend above the bars
        ax.legend(fontsize=7, ncol=4, loc="upper left")
        out["revenue"] = png(fig)
    if rv.refund_ratio is not None and len(rv.refund_ratio):
        top = rv.refund_ratio.replace(np.inf, np.nan).dropna().sort_values().tail(12)
        fig, ax = plt.subplots(figsize=(7.5, 3))
        ax.barh(top.index.astype(str), top.values * 100, color=np.where(top.values > 1, RED, BLUE))
        ax.axvline(100, color="k", lw=.8)
        ax.set(title="Refunds as a share of purchases: the 12 highest customers", xlabel="%")
        out["refunds"] = png(fig)
    if rv.stock_qty is not None:
        s = rv.stock_qty
        fig, ax = plt.subplots(figsize=(7.5, 2.6))
        ax.hist(s.clip(upper=s.quantile(.99)), bins=60, color=BLUE)
        for v in s[s < 0]:
            ax.axvline(v, color=RED, lw=1.5)
        ax.set(title=f"{s.name} per SKU (red lines: negative counts)", ylabel="SKUs")
        out["stock"] = png(fig)
    if rv.plan is not None and rv.actual_q is not None:
        y, xs = d.period_end.year, np.arange(len(rv.plan))
        real = [sum(rv.actual_q.get((str(g).lower(), y, q), 0) for q in range(1, 5)) for g in rv.plan.index]
        fig, ax = plt.subplots(figsize=(7.5, 3))
        ax.bar(xs - .2, rv.plan.values / 1e6, .4, label=f"budget ({rv.plan_source})", color=PALE)
        ax.bar(xs + .2, np.array(real) / 1e6, .4, label="actual (transactions)", color=BLUE)
        ax.set_xticks(xs, rv.plan.index.astype(str))
        ax.set(title=f"Revenue to {d.period_end:%d %B %Y}: budget and actual by region", ylabel="EUR million")
        ax.legend(fontsize=8)
        out["budget"] = png(fig)
    return out


def file_entry(doc):
    e = {"name": doc.name, "kind": doc.kind, "bytes": doc.bytes,
         "rows": sum(p["rows"] for p in doc.profiles.values())}
    if doc.kind == "pdf":
        e.update(pages=doc.pages, chars=len(doc.text))
    if len(doc.profiles) == 1 and "" in doc.profiles:
        e["columns"] = doc.profiles[""]["columns"]
    elif doc.profiles:
        e["sheets"] = [{"name": s, **p} for s, p in doc.profiles.items()]
    if doc.error:
        e["error"] = doc.error
    return e


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:24px;color:#222}
h1{margin-bottom:4px}h2{border-bottom:2px solid #4a78b5;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0;font-size:12.5px}
td,th{border:1px solid #d5dbe3;padding:3px 8px;text-align:left}
th{background:#eef2f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:12px}
.high{background:#c9302c}.medium{background:#e08e0b}.low{background:#5b8fc7}
article{border:1px solid #d5dbe3;border-radius:6px;padding:10px 16px;margin:14px 0}
.meta{color:#555;font-size:12.5px}img{max-width:100%}
pre{white-space:pre-wrap;background:#f6f8fa;padding:8px;font-size:12px}
ul.ok li{margin:2px 0}"""


def note(doc):
    if doc.kind == "pdf":
        return f"{doc.pages} pages"
    if doc.kind == "csv":
        return f"{len(doc.tables[''].columns)} columns"
    return ", ".join(f"{s} ({len(t):,})" for s, t in doc.tables.items())


def write(out_dir, rv, docs, seconds):
    """Writes the three outputs; returns their paths."""
    d, esc = rv.d, html.escape
    imgs = charts(rv)
    findings = sorted(rv.findings, key=lambda f: ({"high": 0, "medium": 1, "low": 2}[f["severity"]], f["id"]))
    counts = {s: sum(f["severity"] == s for f in findings) for s in ("high", "medium", "low")}
    period = f"{d.period_end:%d %B %Y}" if d.period_end is not None else "unknown"
    head = (f"{len(docs)} files, period ended {period}: {len(findings)} findings ({counts['high']} high, "
            f"{counts['medium']} medium, {counts['low']} low), {len(rv.checks)} cross-checks passed")

    with open(os.path.join(out_dir, "findings.json"), "w") as f:
        json.dump({"period_end": d.period_end.date().isoformat() if d.period_end is not None else None,
                   "findings": [{k: v for k, v in x.items() if k != "chart"} for x in findings],
                   "checks": rv.checks, "files": [file_entry(doc) for doc in docs]}, f, indent=2, default=str)
        f.write("\n")

    md = [f"# Line review\n\n{head}.\n", "## Findings\n", "| severity | id | title | files |", "|---|---|---|---|"]
    md += [f"| {x['severity']} | `{x['id']}` | {x['title']} | {', '.join(x['files'])} |" for x in findings]
    md += [""] + [f"- **`{x['id']}`**: {x['detail']}" for x in findings]
    md += ["\n## Cross-checks that passed\n"] + [f"- {c['check']}: {c['detail']}" for c in rv.checks]
    md += ["\n## Files\n", "| file | kind | bytes | rows | note |", "|---|---|---:|---:|---|"]
    md += [f"| {doc.name} | {doc.kind} | {doc.bytes:,} | {sum(p['rows'] for p in doc.profiles.values()):,} | "
           f"{doc.error or note(doc)} |" for doc in docs]
    with open(os.path.join(out_dir, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    h = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Line review</title><style>{CSS}</style>"
         f"</head><body><h1>Line review</h1><p class='meta'>{esc(head)}. Reviewed in {seconds:.1f} s.</p>",
         "<p><a href='#findings'>Findings</a> · <a href='#checks'>Cross-checks</a> · "
         "<a href='#files'>Files</a></p><h2 id='findings'>Findings</h2><table><tr><th>severity</th><th>finding</th>"
         "<th>files</th></tr>"]
    h += [f"<tr><td><span class='sev {x['severity']}'>{x['severity']}</span></td><td><a href='#f{i}'>{esc(x['title'])}"
          f"</a></td><td>{esc(', '.join(x['files']))}</td></tr>" for i, x in enumerate(findings)]
    h.append("</table>")
    shown = set()
    for i, x in enumerate(findings):
        h.append(f"<article id='f{i}'><h3><span class='sev {x['severity']}'>{x['severity']}</span> "
                 f"{esc(x['title'])}</h3><p class='meta'><code>{esc(x['id'])}</code> · {esc(', '.join(x['files']))}"
                 f"</p><p>{esc(x['detail'])}</p>")
        if x.get("chart") in imgs and x["chart"] not in shown:
            shown.add(x["chart"])
            h.append(f"<img alt='{x['chart']} chart' src='data:image/png;base64,{imgs[x['chart']]}'>")
        h.append("</article>")
    h.append("<h2 id='checks'>Cross-checks that passed</h2><ul class='ok'>")
    h += [f"<li><b>{esc(c['check'])}</b>: {esc(c['detail'])}</li>" for c in rv.checks]
    h.append("</ul>")
    rest = [k for k in imgs if k not in shown]  # charts no finding has shown yet
    if rest:
        h.append("<h2 id='charts'>Charts</h2>")
        h += [f"<img alt='{k} chart' src='data:image/png;base64,{imgs[k]}'>" for k in rest]
    h.append("<h2 id='files'>Files</h2>")
    for doc in docs:
        rows = sum(p["rows"] for p in doc.profiles.values())
        h.append(f"<article><h3>{esc(doc.name)}</h3><p class='meta'>{doc.kind.upper()}, {doc.bytes:,} bytes"
                 + (f", {doc.pages} pages" if doc.kind == "pdf" else f", {rows:,} rows") + "</p>")
        if doc.error:
            h.append(f"<p><span class='sev high'>unreadable</span> {esc(doc.error)}</p>")
        for sheet, p in doc.profiles.items():
            h.append((f"<h4>{esc(sheet)}: {p['rows']:,} rows</h4>" if sheet else "") +
                     "<table><tr><th>column</th><th>type</th><th>nulls</th><th>min</th><th>max</th>"
                     "<th>sum / distinct</th></tr>")
            for c in p["columns"][:30]:
                fmt = lambda v: f"{v:,.2f}" if isinstance(v, float) else esc(str(v))
                h.append(f"<tr><td>{esc(c['name'])}</td><td>{c['type']}</td><td class='n'>{c['nulls']:,}</td>"
                         f"<td class='n'>{fmt(c.get('min', ''))}</td><td class='n'>{fmt(c.get('max', ''))}</td>"
                         f"<td class='n'>{fmt(c.get('sum', c.get('distinct', '')))}</td></tr>")
            h.append("</table>")
        if doc.kind == "pdf" and doc.text:
            h.append(f"<pre>{esc(doc.text[:700])}…</pre>")
        h.append("</article>")
    h.append("</body></html>")
    with open(os.path.join(out_dir, "report.html"), "w") as f:
        f.write("\n".join(h))
    return [os.path.join(out_dir, n) for n in ("report.html", "summary.md", "findings.json")]
