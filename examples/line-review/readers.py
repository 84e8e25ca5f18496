"""Reading the review's input files into tables and text.

CSV becomes one table, each XLSX sheet one table (below any title rows), and a
PDF its extracted text, from which the few tables the checks need are parsed.
Kept apart from agent.py so the checks read as checks.
"""
import datetime as dt
import os
import re

import openpyxl
import pandas as pd
import pypdf

AMOUNT = re.compile(r"^-?\d{1,3}(?:,\d{3})*(?:\.\d{2})?$")  # 1,234,567 or 18,450.00 as printed in PDFs
REF_ID = re.compile(r"^[A-Z]{2,5}-\d{3,}$")  # INV-24001: ids a PDF shares with a spreadsheet
QUARTER = re.compile(r"Q([1-4]) (\d{4})")


def num(s):
    return float(s.replace(",", ""))


# ---------------------------------------------------------------- reading

class Doc:
    """One input file: its tables (CSV: one; XLSX: one per sheet) or its PDF text."""

    def __init__(self, path, name):
        self.path, self.name, self.bytes = path, name, os.path.getsize(path)
        self.kind = os.path.splitext(name)[1].lower().lstrip(".") or "other"
        self.tables, self.profiles, self.text, self.pages, self.error = {}, {}, "", 0, None


def load(doc):
    if doc.kind == "csv":
        with open(doc.path, "rb") as f:
            first = f.readline()
        sep = ";" if first.count(b";") > first.count(b",") else ","  # European exports use semicolons
        try:
            df = pd.read_csv(doc.path, sep=sep, low_memory=False)
        except UnicodeDecodeError:  # older exports are often Windows-1252, not UTF-8
            df = pd.read_csv(doc.path, sep=sep, low_memory=False, encoding="cp1252")
        doc.tables[""] = typed(df)
    elif doc.kind in ("xlsx", "xlsm"):
        wb = openpyxl.load_workbook(doc.path, read_only=True, data_only=True)
        try:
            for ws in wb.worksheets:
                doc.tables[ws.title] = typed(sheet_frame(list(ws.iter_rows(values_only=True))))
        finally:
            wb.close()
    elif doc.kind == "pdf":
        pages = [p.extract_text() or "" for p in pypdf.PdfReader(doc.path).pages]
        doc.pages, doc.text = len(pages), "\n".join(pages)
        if not doc.text.strip():
            raise ValueError("no extractable text (scanned image?)")
    else:
        raise ValueError(f"unsupported file type .{doc.kind}")


def sheet_frame(rows):
    """Spreadsheets carry title rows above the header: the header is the first row
    with at least two cells that are all text, the data is everything below it."""
    rows = [r for r in rows if any(v is not None and v != "" for v in r)]
    for i, r in enumerate(rows):
        cells = [v for v in r if v is not None]
        if len(cells) >= 2 and all(isinstance(v, str) for v in cells) and i + 1 < len(rows):
            width = max(j for j, v in enumerate(r) if v is not None) + 1
            names = [str(v).strip() if v is not None else f"col{j + 1}" for j, v in enumerate(r[:width])]
            return pd.DataFrame([list(x[:width]) + [None] * (width - len(x)) for x in rows[i + 1:]], columns=names)
    width = max((len(r) for r in rows), default=1)  # notes: free text, no header
    return pd.DataFrame([list(r) + [None] * (width - len(r)) for r in rows],
                        columns=[f"col{j + 1}" for j in range(width)])


def typed(df):
    """ISO date strings become datetimes, so date checks work on CSV and XLSX alike."""
    for c in df.columns:
        if df[c].dtype == object:
            sample = df[c].dropna().astype(str).head(50)
            if len(sample) and sample.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all():
                df[c] = pd.to_datetime(df[c], format="%Y-%m-%d", errors="coerce")
            elif len(sample) and all(isinstance(v, (dt.datetime, dt.date)) for v in df[c].dropna().head(50)):
                df[c] = pd.to_datetime(df[c], errors="coerce")
    return df


def profile(df):
    cols = []
    for c in df.columns:
        s = df[c]
        p = {"name": str(c), "type": "text", "nulls": int(s.isna().sum())}
        if pd.api.types.is_datetime64_any_dtype(s) and s.notna().any():
            p.update(type="date", min=str(s.min())[:10], max=str(s.max())[:10])
        elif s.notna().any() and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            p.update(type="number", min=float(s.min()), max=float(s.max()), sum=round(float(s.sum()), 2))
        else:
            p["distinct"] = int(s.nunique())
        cols.append(p)
    return {"rows": len(df), "columns": cols}


# ---------------------------------------------------------------- reading PDF tables from text

def pdf_cells(text):
    """pypdf emits each table cell of a reportlab table on its own line; other producers
    keep a row on one line ('East 1,711,730 2,411,624'), which is split into cells here."""
    cells = []
    for line in (x.strip() for x in text.splitlines()):
        tail = re.fullmatch(r"(\D*?[A-Za-z][^\d]*?)((?:\s+-?[\d,]+(?:\.\d+)?){2,})", line)
        if len(QUARTER.findall(line)) >= 2:  # a whole header row: 'Region Q1 2026 Q2 2026 YTD'
            cells += re.findall(r"Q[1-4] \d{4}|\S+", line)
        elif tail and all(AMOUNT.fullmatch(v) for v in tail.group(2).split()):
            cells += [tail.group(1).strip(), *tail.group(2).split()]
        elif line:
            cells.append(line)
    return cells


def quarter_table(text):
    """{label: {(year, quarter): value}} from a table headed 'Q1 2026 | Q2 2026 | ... | YTD'."""
    cells, out, i = pdf_cells(text), {}, 0
    while i < len(cells):
        if not QUARTER.fullmatch(cells[i]):
            i += 1
            continue
        head = []
        while i < len(cells) and (QUARTER.fullmatch(cells[i]) or re.fullmatch(r"YTD|Total|FY.*|H[12].*", cells[i])):
            head.append(cells[i])
            i += 1
        while i + len(head) < len(cells) and not AMOUNT.fullmatch(cells[i]) \
                and all(AMOUNT.fullmatch(v) for v in cells[i + 1:i + 1 + len(head)]):
            for h, v in zip(head, cells[i + 1:i + 1 + len(head)]):
                if QUARTER.fullmatch(h):
                    q, y = QUARTER.fullmatch(h).groups()
                    out.setdefault(cells[i], {})[(int(y), int(q))] = num(v)
            i += 1 + len(head)
    return out


def id_amounts(text):
    """{id: amount}: each id (INV-24001) paired with the first money amount after it."""
    toks, out = text.split(), {}
    for i, t in enumerate(toks):
        if REF_ID.fullmatch(t):
            for u in toks[i + 1:i + 15]:
                if REF_ID.fullmatch(u):
                    break
                if AMOUNT.fullmatch(u) and "." in u:
                    out.setdefault(t, num(u))
                    break
    return out
