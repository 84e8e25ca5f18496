#!/usr/bin/env python3
"""Generate the quarterly-review file set that Warden's demo job reviews.

    /usr/bin/python3 generate.py OUT_DIR [--expected PATH]

Writes twelve files (3 PDF, 5 CSV, 4 XLSX, about 12 MB) for a fictional
company's review of the nine months to 30 September 2026 into OUT_DIR, and
the answer key to PATH (default: expected.json next to OUT_DIR, never inside
it, so uploading OUT_DIR never hands the agent the answers).

The output is byte-identical from run to run and machine to machine (given
the same Debian packages): every random draw comes from a fixed seed, PDFs are
written in reportlab's invariant mode (no creation date, no random document
id) and workbooks are re-zipped with fixed timestamps. A test can therefore
pin the inputs' sha256 and the demo always reviews the same data.

Seven inconsistencies are planted; each needs a cross-check to be found (see
PLANTED and expected.json). Everything else is kept consistent on purpose:
the board report, ledger, FX rates and transactions reconcile to the cent
elsewhere, so an agent that reports anything more is raising false alarms.
"""
import argparse
import datetime as dt
import hashlib
import io
import json
import os
import sys
import time
import zipfile
import zlib

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

sys.dont_write_bytecode = True  # no __pycache__ next to the committed sources
from company import COMPANY, REGIONS, YEAR, auditor_letter, board_report, invoice_report  # noqa: E402

START, END = dt.date(YEAR, 1, 1), dt.date(YEAR, 9, 30)
MONTHS = list(range(1, 10))
STAMP = dt.datetime(YEAR, 10, 12, 9, 0, 0)  # "exported" timestamp in every workbook
SEED = 20260930
N_TXN = 126_000
CURRENCY = {"NL": "EUR", "DE": "EUR", "BE": "EUR", "FR": "EUR", "ES": "EUR", "GB": "GBP", "US": "USD", "SE": "SEK"}
# EUR per unit of foreign currency, monthly averages January..September.
FX_AVG = {"USD": [0.9615, 0.9581, 0.9282, 0.8874, 0.8851, 0.8733, 0.8592, 0.8611, 0.8534],
          "GBP": [1.1962, 1.2041, 1.1957, 1.1683, 1.1839, 1.1771, 1.1602, 1.1559, 1.1523],
          "SEK": [0.08731, 0.08852, 0.09138, 0.09107, 0.09143, 0.09072, 0.08981, 0.09024, 0.09117]}
CATEGORIES = {"Tents": 240, "Sleeping bags": 130, "Backpacks": 95, "Footwear": 120, "Clothing": 60,
              "Climbing": 45, "Cycling": 70, "Cooking": 35, "Navigation": 85, "Accessories": 18}
ADJ = ["Alpine", "Summit", "Fjord", "Harbor", "Granite", "Cedar", "Northern", "Ridge", "Trail", "Canyon",
       "Meadow", "Glacier", "Pine", "Coastal", "Highland", "River", "Polder", "Dune", "Heath", "Lakeside"]
FIRST = ["Anna", "Bram", "Chloe", "Daan", "Eva", "Finn", "Greta", "Hugo", "Iris", "Jens", "Lotte", "Milan",
         "Noor", "Oscar", "Pia", "Ruben", "Sara", "Thijs", "Ula", "Vera", "Willem", "Yara", "Zoe", "Lucas"]
LAST = ["de Vries", "Jansen", "Bakker", "Peeters", "Muller", "Dubois", "Schmidt", "Visser", "Smit", "Meyer",
        "Laurent", "Mertens", "Hoekstra", "Koster", "Bos", "Fischer", "Leroy", "Vos", "Maes", "Wagner"]
DEPTS = {"Sales": 52000, "Warehouse": 38000, "Customer service": 36000, "Finance": 61000,
         "IT": 68000, "Operations": 55000, "Management": 115000}
ACCOUNTS = {1000: "Cash at bank", 1100: "Trade receivables", 1200: "Inventory", 1500: "Fixed assets",
            1510: "Accumulated depreciation", 2000: "Trade payables", 2100: "Payroll taxes payable",
            3000: "Share capital", 3100: "Retained earnings",
            4010: "Revenue - North", 4020: "Revenue - South", 4030: "Revenue - East",
            4040: "Revenue - West", 4050: "Revenue - Central", 4900: "Sales returns and refunds",
            5000: "Cost of goods sold", 6000: "Salaries and wages", 6100: "Rent", 6200: "Utilities",
            6300: "IT and software", 6400: "Logistics and freight", 6500: "Marketing",
            6600: "Professional fees", 6700: "Depreciation"}
REV_ACCT = dict(zip(REGIONS, [4010, 4020, 4030, 4040, 4050]))
# name, expense account, invoices a month, typical amount (EUR; 0 = goods, sized from sales)
SUPPLIERS = [("Nordkap Textiles AB", 1200, 8, 0), ("Alpenwerk Equipment GmbH", 1200, 7, 0),
             ("Cascade Footwear Ltd", 1200, 6, 0), ("Montserrat Outdoor S.L.", 1200, 6, 0),
             ("Baltic Down Products SIA", 1200, 5, 0), ("Van Leeuwen Packaging B.V.", 1200, 4, 0),
             ("Kanaal Freight Logistics B.V.", 6400, 8, 14000), ("EuroLine Parcel Services N.V.", 6400, 6, 9000),
             ("Tilburg Logistics Park C.V.", 6100, 1, 48500), ("Lyon Sud Entrepots SCI", 6100, 1, 31200),
             ("Leipzig Lagerhaus GmbH", 6100, 1, 27800), ("Brabant Energie B.V.", 6200, 1, 10500),
             ("Cloudnine Software Ltd", 6300, 3, 6500), ("Datacore Systems B.V.", 6300, 2, 11000),
             ("Pixel & Pine Marketing B.V.", 6500, 4, 21000), ("De Wit Advocaten", 6600, 1, 7400)]

# The planted inconsistencies. Ids are what an agent's findings.json must use.
PLANTED = [
    ("revenue-mismatch/east/{y}-q3", "Board report overstates East Q3 revenue against the transactions",
     ["board_report_q3_{y}.pdf", "transactions_{y}.csv"]),
    ("invoice-amount-mismatch/{inv}", "Supplier invoice amount differs between the AP summary and the ledger",
     ["supplier_invoices_q3_{y}.pdf", "general_ledger_{y}.xlsx"]),
    ("negative-quantity/inventory_{y}-09-30.csv", "Negative stock on hand for three SKUs",
     ["inventory_{y}-09-30.csv"]),
    ("future-dated/transactions_{y}.csv", "Transactions dated after the period end",
     ["transactions_{y}.csv"]),
    ("refunds-exceed-purchases/{cust}", "A customer's refunds exceed their purchases",
     ["refunds_{y}.csv", "transactions_{y}.csv"]),
    ("region-without-transactions/export", "The budget plans revenue for a region that has no sales",
     ["budget_{y}.xlsx", "transactions_{y}.csv"]),
    ("duplicate-payment/E0147/{y}-08", "An employee was paid twice for August",
     ["payroll_{y}.csv"]),
]


def rng(name):
    """One generator per file, so changing one file never reshuffles another."""
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def month_end(m):
    return (dt.date(YEAR, m % 12 + 1, 1) if m < 12 else dt.date(YEAR + 1, 1, 1)) - dt.timedelta(days=1)


def customers_table():
    r = rng("customers")
    n = 4000
    countries = np.array(list(CURRENCY))
    country = r.choice(countries, n, p=[.35, .2, .1, .1, .05, .08, .07, .05])
    suffix = {"NL": "B.V.", "DE": "GmbH", "BE": "BV", "FR": "SARL", "ES": "S.L.", "GB": "Ltd", "US": "Inc.", "SE": "AB"}
    nouns = ["Outfitters", "Sports", "Adventure", "Camping", "Gear", "Bikes", "Climbing", "Trekking", "Outdoor"]
    names = [f"{ADJ[a]} {nouns[b]} {suffix[c]}" for a, b, c in
             zip(r.integers(0, len(ADJ), n), r.integers(0, len(nouns), n), country)]
    email = [f"orders{i}@{nm.split()[0].lower()}{nm.split()[1].lower()}.example" for i, nm in enumerate(names)]
    df = pd.DataFrame({
        "customer_id": [f"C{10001 + i}" for i in range(n)], "name": names,
        "region": r.choice(REGIONS, n, p=[.22, .18, .24, .2, .16]), "country": country,
        "segment": r.choice(["Retail", "Wholesale", "Outdoor club", "Online"], n, p=[.45, .2, .1, .25]),
        "credit_limit_eur": r.choice([5000, 10000, 25000, 50000, 100000], n, p=[.3, .3, .2, .15, .05]),
        "created": [(START - dt.timedelta(days=int(d))).isoformat() for d in r.integers(30, 3650, n)],
        "email": email, "phone": [f"+31 13 {x:07d}" for x in r.integers(0, 10**7, n)]})
    df.loc[r.random(n) < .03, "email"] = None   # real masters have gaps; the agent profiles them
    df.loc[r.random(n) < .06, "phone"] = None
    return df, r.lognormal(0, 1.1, n)


def inventory_table():
    r = rng("inventory")
    n = 1200
    cats = np.array(list(CATEGORIES))
    cat = r.choice(cats, n)
    price = np.round(np.array([CATEGORIES[c] for c in cat]) * r.lognormal(0, .45, n), 0) - 0.10
    df = pd.DataFrame({
        "sku": [f"SKU-{10000 + i}" for i in range(n)],
        "description": [f"{ADJ[a]} {c.lower().rstrip('s')} {m}" for a, c, m in
                        zip(r.integers(0, len(ADJ), n), cat, r.choice(["S", "M", "L", "Pro", "Lite", "XL"], n))],
        "category": cat, "warehouse": r.choice(["Tilburg", "Lyon", "Leipzig"], n, p=[.5, .25, .25]),
        "qty_on_hand": r.negative_binomial(2, .006, n), "unit_cost_eur": np.round(price * r.uniform(.45, .6, n), 2),
        "list_price_eur": price, "reorder_level": r.choice([20, 50, 100, 200], n),
        "last_counted": [dt.date(YEAR, 9, int(d)).isoformat() for d in r.integers(1, 30, n)]})
    # Planted: stock that cannot exist (counted below zero) at the Lyon warehouse.
    for i, q in zip((137, 642, 1018), (-12, -4, -37)):
        df.loc[i, ["qty_on_hand", "warehouse"]] = [q, "Lyon"]
    return df, r.lognormal(0, 1.0, n)


def transactions_table(cust, cust_w, inv, sku_w):
    r = rng("transactions")
    days = pd.date_range(START, END)
    season = np.array([.8, .8, .95, 1.05, 1.15, 1.25, 1.3, 1.25, 1.0])[days.month - 1]
    weekday = np.array([1, 1, 1, 1.05, 1.15, 1.25, .6])[days.weekday]
    w = season * weekday * (1 + np.arange(len(days)) / 1500)
    day = np.sort(r.choice(len(days), N_TXN, p=w / w.sum()))
    cw = cust_w.copy()
    planted_cust = cust.index[cust.customer_id == "C13877"][0]
    cw[planted_cust] = 0  # the planted customer buys exactly once (below)
    ci = r.choice(len(cust), N_TXN, p=cw / cw.sum())
    si = r.choice(len(inv), N_TXN, p=sku_w / sku_w.sum())
    channel = r.choice(["online", "retail", "wholesale"], N_TXN, p=[.45, .4, .15])
    qty = r.geometric(.55, N_TXN) * np.where(channel == "wholesale", r.integers(3, 10, N_TXN), 1)
    date = days[day]
    currency = np.array([CURRENCY[c] for c in cust.country.values])[ci]
    rate = np.ones(N_TXN)
    for cur, rates in FX_AVG.items():
        m = currency == cur
        rate[m] = np.array(rates)[date.month[m] - 1]
    unit_price = np.round(inv.list_price_eur.values[si] / rate, 2)
    amount = np.round(qty * unit_price, 2)
    region = cust.region.values[ci].copy()
    df = pd.DataFrame({
        "txn_id": [f"T{i:07d}" for i in range(1, N_TXN + 1)], "date": date.strftime("%Y-%m-%d"),
        "region": region, "customer_id": cust.customer_id.values[ci], "sku": inv.sku.values[si],
        "quantity": qty, "unit_price": unit_price, "currency": currency, "amount": amount,
        "amount_eur": np.round(amount * rate, 2), "channel": channel,
        "sales_rep": [f"R{REGIONS.index(g) * 8 + k + 1:03d}" for g, k in zip(region, r.integers(0, 8, N_TXN))]})
    eur_rows = np.flatnonzero(currency == "EUR")
    # Planted: C13877 buys once, in June, and is then refunded far more (refunds file).
    k = eur_rows[np.searchsorted(eur_rows, np.searchsorted(df.date.values, f"{YEAR}-06-11"))]
    df.loc[k, "customer_id"] = "C13877"
    cust.loc[planted_cust, ["region", "country"]] = [df.region[k], "NL"]
    # Planted: two sales keyed with dates after the period (one a year typo).
    for j, d in ((eur_rows[5000], f"{YEAR}-12-04"), (eur_rows[61000], f"{YEAR + 1}-08-21")):
        df.loc[j, "date"] = d
    return df, k


def refunds_table(tx, planted_k):
    r = rng("refunds")
    d = pd.to_datetime(tx.date)
    ok = np.flatnonzero((d <= pd.Timestamp(YEAR, 9, 2)).values)
    ok = ok[ok != planted_k]
    pick = np.sort(r.choice(ok, 1650, replace=False))
    amt = tx.amount_eur.values[pick]
    amt = np.where(r.random(len(pick)) < .55, amt, np.round(amt * r.uniform(.1, .6, len(pick)), 2))
    date = pd.DatetimeIndex(d.values[pick]) + pd.to_timedelta(r.integers(1, 29, len(pick)), "D")
    rows = pd.DataFrame({"date": date.strftime("%Y-%m-%d"), "customer_id": tx.customer_id.values[pick],
                         "original_txn_id": tx.txn_id.values[pick], "amount_eur": amt})
    p = tx.loc[planted_k]  # refunded twice in full and once more in part
    extra = pd.DataFrame({"date": [f"{YEAR}-06-20", f"{YEAR}-07-02", f"{YEAR}-08-14"], "customer_id": p.customer_id,
                          "original_txn_id": p.txn_id, "amount_eur": [p.amount_eur, p.amount_eur, 96.00]})
    rows = pd.concat([rows, extra]).sort_values(["date", "original_txn_id"], kind="stable").reset_index(drop=True)
    rows.insert(0, "refund_id", [f"RF-{i:05d}" for i in range(1, len(rows) + 1)])
    reasons = ["Damaged in transit", "Wrong size", "Defective", "Not as described", "Late delivery", "Changed mind"]
    rows["reason"] = r.choice(reasons, len(rows))
    rows["approved_by"] = r.choice(["a.devries", "m.jansen", "l.bakker", "s.peeters"], len(rows))
    return rows


def payroll_table():
    r = rng("payroll")
    rows = []
    for e in range(1, 213):
        dept = r.choice(list(DEPTS), p=[.25, .27, .14, .08, .08, .13, .05])
        annual = DEPTS[dept] * r.lognormal(0, .15)
        start = 1 if r.random() < .9 or e == 147 else int(r.integers(2, 10))
        leave = 13 if r.random() < .95 or e == 147 else int(r.integers(start, 10))
        name = f"{FIRST[r.integers(len(FIRST))]} {LAST[r.integers(len(LAST))]}"
        region = REGIONS[int(r.integers(len(REGIONS)))]
        for m in MONTHS:
            if start <= m <= leave:
                gross = round(annual / 12, 2)
                tax = round(gross * (.22 + .18 * min(max((annual - 30000) / 70000, 0), 1)), 2)
                paid = dt.date(YEAR, m, 25)
                paid -= dt.timedelta(days=max(paid.weekday() - 4, 0))  # weekends pay the Friday before
                rows.append([f"E{e:04d}", name, dept, region, f"{YEAR}-{m:02d}", gross, tax, round(gross - tax, 2),
                             paid.isoformat()])
    df = pd.DataFrame(rows, columns=["employee_id", "name", "department", "region", "pay_period",
                                     "gross_pay_eur", "tax_eur", "net_pay_eur", "paid_date"])
    df = df.sort_values(["pay_period", "employee_id"], kind="stable").reset_index(drop=True)
    dup = df[(df.employee_id == "E0147") & (df.pay_period == f"{YEAR}-08")].copy()
    dup["paid_date"] = f"{YEAR}-08-28"  # Planted: the August run paid E0147 a second time
    at = dup.index[0] + 1
    return pd.concat([df.iloc[:at], dup, df.iloc[at:]]).reset_index(drop=True)


def ap_invoices(month_goods):
    r = rng("invoices")
    inv = []
    for m in MONTHS:
        for name, acct, per_month, typical in SUPPLIERS:
            for _ in range(per_month):
                amt = typical * r.uniform(.6, 1.4) if typical else month_goods[m] / 36 * r.lognormal(0, .35)
                day = int(r.integers(1, month_end(m).day + 1)) if per_month > 1 else 1
                inv.append([dt.date(YEAR, m, day), name, acct, round(amt, 2) if per_month > 1 else typical])
    inv.sort(key=lambda x: (x[0], x[1]))
    df = pd.DataFrame(inv, columns=["invoice_date", "supplier", "account", "amount_eur"])
    df.insert(0, "invoice_id", [f"INV-{24001 + i}" for i in range(len(df))])
    df["due_date"] = [d + dt.timedelta(days=45 if a == 1200 else 30) for d, a in zip(df.invoice_date, df.account)]
    df["status"] = np.where(df.due_date <= END, "Paid", "Open")
    q3_freight = df.index[(df.invoice_date >= dt.date(YEAR, 7, 1)) & (df.supplier == SUPPLIERS[6][0])]
    planted = q3_freight[9]
    df.loc[planted, "amount_eur"] = 14850.00  # the ledger's figure; the AP summary PDF says 18,450.00
    return df, df.invoice_id[planted]


def journal(tx, refunds, payroll, inv):
    """Post everything to a general ledger, so the trial balance ties to the other files."""
    entries = []  # (date, order, description, reference, [(account, debit, credit)])
    add = lambda d, o, desc, ref, lines: entries.append((d, o, desc, ref, lines))
    add(START, 0, "Opening balances", "OB-2026", [(1000, 3650000.00, 0), (1100, 2180000.00, 0), (1200, 4870000.00, 0),
        (1500, 6240000.00, 0), (1510, 0, 1910000.00), (2000, 0, 1640000.00), (2100, 0, 385000.00),
        (3000, 0, 1000000.00), (3100, 0, 12005000.00)])
    add(dt.date(YEAR, 1, 20), 5, "Payment of opening payables", "OB-AP", [(2000, 1640000.00, 0), (1000, 0, 1640000.00)])
    add(dt.date(YEAR, 1, 31), 2, "Collection of opening receivables", "OB-AR",
        [(1000, 2180000.00, 0), (1100, 0, 2180000.00)])
    ok = tx[tx.date <= END.isoformat()]
    sales = ok.groupby(["date", "region", "channel"]).amount_eur.sum().round(2)
    for (d, g, c), a in sales.items():
        add(dt.date.fromisoformat(d), 1, f"Sales {c} {g}", f"SALES-{d.replace('-', '')}-{g[:2].upper()}",
            [(1100, a, 0), (REV_ACCT[g], 0, a)])
    daily = ok.groupby(["date", "region"]).amount_eur.sum().round(2)
    for (d, g), a in daily.items():
        paid = dt.date.fromisoformat(d) + dt.timedelta(days=30)
        if paid <= END:
            add(paid, 2, f"Customer receipts {g}", f"RCPT-{d.replace('-', '')}-{g[:2].upper()}",
                [(1000, a, 0), (1100, 0, a)])
    for x in refunds.itertuples():
        add(dt.date.fromisoformat(x.date), 3, f"Refund {x.customer_id}", x.refund_id,
            [(4900, x.amount_eur, 0), (1000, 0, x.amount_eur)])
    for x in inv.itertuples():
        add(x.invoice_date, 4, x.supplier, x.invoice_id, [(x.account, x.amount_eur, 0), (2000, 0, x.amount_eur)])
        if x.due_date <= END:
            add(x.due_date, 5, f"Payment {x.supplier}", x.invoice_id,
                [(2000, x.amount_eur, 0), (1000, 0, x.amount_eur)])
    for x in payroll.itertuples():
        add(dt.date.fromisoformat(x.paid_date), 6, f"Salary {x.employee_id} {x.pay_period}",
            f"PAY-{x.pay_period}-{x.employee_id}",
            [(6000, x.gross_pay_eur, 0), (2100, 0, x.tax_eur), (1000, 0, x.net_pay_eur)])
    tax = payroll.groupby("pay_period").tax_eur.sum().round(2)
    revenue = ok.groupby(ok.date.str[5:7]).amount_eur.sum()
    for m in MONTHS:
        if m < 9:
            t = tax[f"{YEAR}-{m:02d}"]
            add(dt.date(YEAR, m + 1, 10), 7, "Payroll tax remittance", f"TAX-{YEAR}-{m:02d}",
                [(2100, t, 0), (1000, 0, t)])
        cogs = round(revenue[f"{m:02d}"] * .52, 2)
        add(month_end(m), 8, "Cost of goods sold", f"COGS-{YEAR}-{m:02d}", [(5000, cogs, 0), (1200, 0, cogs)])
        add(month_end(m), 9, "Depreciation", f"DEP-{YEAR}-{m:02d}", [(6700, 52400.00, 0), (1510, 0, 52400.00)])
    entries.sort(key=lambda e: (e[0], e[1], e[3]))
    rows = []
    for n, (d, _, desc, ref, lines) in enumerate(entries, 1):
        for i, (acct, dr, cr) in enumerate(lines, 1):
            rows.append((f"JE-{n:06d}", i, d, acct, ACCOUNTS[acct], desc, dr or None, cr or None, ref))
    return pd.DataFrame(rows, columns=["entry_id", "line", "date", "account", "account_name", "description",
                                       "debit", "credit", "reference"])


def save_xlsx(path, sheets):
    """sheets: [(title, rows, widths)]; a row whose first item is "#" is written bold (a header)."""
    wb = Workbook(write_only=True)
    wb.properties.creator = "Larkspur Finance"
    wb.properties.created = wb.properties.modified = STAMP
    for title, rows, widths in sheets:
        ws = wb.create_sheet(title)
        for col, wdt in zip("ABCDEFGHIJKLMNOP", widths):
            ws.column_dimensions[col].width = wdt
        for row in rows:
            row = list(row)
            if row and row[0] == "#":
                row = [WriteOnlyCell(ws, value=v) for v in row[1:]]
                for c in row:
                    c.font = Font(bold=True)
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    # openpyxl stamps every zip member with the current time; rewrite them with a fixed one.
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(zipfile.ZipInfo(info.filename, STAMP.timetuple()[:6]), src.read(info.filename),
                         compress_type=zipfile.ZIP_DEFLATED)


def frame_rows(df):
    return [["#", *df.columns]] + [[None if (isinstance(v, float) and np.isnan(v)) else v for v in r]
                                   for r in df.itertuples(index=False)]


def main():
    ap = argparse.ArgumentParser(description="Generate the sample quarterly-review file set.")
    ap.add_argument("out_dir", help="directory for the twelve files (created if missing)")
    ap.add_argument("--expected", help="where to write the answer key (default: OUT_DIR/../expected.json)")
    args = ap.parse_args()
    t0 = time.monotonic()
    out = os.path.abspath(args.out_dir)
    os.makedirs(out, exist_ok=True)
    y = YEAR
    F = dict(tx=f"transactions_{y}.csv", stock=f"inventory_{y}-09-30.csv", pay=f"payroll_{y}.csv",
             cust="customers.csv", ref=f"refunds_{y}.csv", budget=f"budget_{y}.xlsx", fc=f"forecast_q4_{y}.xlsx",
             gl=f"general_ledger_{y}.xlsx", fx=f"fx_rates_{y}.xlsx", board=f"board_report_q3_{y}.pdf",
             ap=f"supplier_invoices_q3_{y}.pdf", audit=f"auditor_letter_q3_{y}.pdf")
    path = {k: os.path.join(out, v) for k, v in F.items()}

    cust, cust_w = customers_table()
    stock, sku_w = inventory_table()
    tx, planted_k = transactions_table(cust, cust_w, stock, sku_w)
    refunds = refunds_table(tx, planted_k)
    payroll = payroll_table()
    ok = tx[tx.date <= END.isoformat()]
    month = ok.date.str[5:7].astype(int)
    rev = ok.groupby([ok.region, month]).amount_eur.sum()
    inv, planted_inv = ap_invoices({m: rev.xs(m, level=1).sum() * .53 for m in MONTHS})
    gl = journal(tx, refunds, payroll, inv)
    tb = gl.groupby(["account", "account_name"])[["debit", "credit"]].sum().round(2).reset_index()
    tb["balance"] = (tb.debit - tb.credit).round(2)
    bal = dict(zip(tb.account, tb.balance))

    for key, df in (("tx", tx), ("stock", stock), ("pay", payroll), ("cust", cust), ("ref", refunds)):
        df.to_csv(path[key], index=False, float_format="%.2f", lineterminator="\n")

    r = rng("workbooks")
    mnames = [dt.date(y, m, 1).strftime("%b") for m in range(1, 13)]
    hdr = lambda first, cols: ["#", first, *cols]
    title = lambda t: [f"{COMPANY} - {t}"]
    fx_end = {c: [round(v * (1 + r.normal(0, .006)), 5 if c == "SEK" else 4) for v in vs] for c, vs in FX_AVG.items()}
    fx_sheet = lambda rates, what: ([title(f"{what} exchange rates {y} (EUR per unit of currency)"), [],
                                     hdr("Month", rates)] +
                                    [[f"{y}-{m:02d}", *[rates[c][m - 1] for c in rates]] for m in MONTHS])
    save_xlsx(path["fx"], [("Monthly average", fx_sheet(FX_AVG, "Monthly average"), [12, 10, 10, 10]),
                           ("Month end", fx_sheet(fx_end, "Month-end"), [12, 10, 10, 10]),
                           ("Notes", [["Source: ECB euro foreign exchange reference rates."],
                                      ["Sales in foreign currency are converted at the monthly average rate."],
                                      ["Balances in foreign currency are revalued at the month-end rate."]], [80])])

    q4_shape = [.85, 1.02, 1.18]
    forecast = {g: [round(rev[g, 9] * f * r.uniform(.97, 1.03), -3) for f in q4_shape] for g in REGIONS}
    fc_rows = [[g, *forecast[g], sum(forecast[g])] for g in REGIONS]
    save_xlsx(path["fc"], [
        ("Q4 forecast", [title(f"Q4 {y} revenue forecast, base case (EUR)"), [],
                         hdr("Region", [f"{mnames[m - 1]} {y}" for m in (10, 11, 12)] + [f"Q4 {y}"])] + fc_rows +
         [["Total", *[sum(x[i] for x in fc_rows) for i in range(1, 5)]]], [14, 12, 12, 12, 12]),
        ("Scenarios", [hdr("Region", ["Low", "Base", "High"])] +
         [[g, round(t * .9, -3), t, round(t * 1.08, -3)] for g, *_, t in fc_rows], [14, 12, 12, 12]),
        ("Assumptions", [hdr("Assumption", ["Value"]), ["Season shape Oct/Nov/Dec vs September", "0.85 / 1.02 / 1.18"],
                         ["USD rate (EUR per USD)", 0.85], ["Export channel launch", "not before Q1 2027"],
                         ["Price increase", "none planned"]], [40, 20])])

    budget_rev = {g: [round(rev[g, m] * r.uniform(.93, 1.1), -3) for m in MONTHS] +
                  [round(v * r.uniform(.95, 1.05), -3) for v in forecast[g]] for g in REGIONS}
    # Planted: the budget still carries the export channel that never launched.
    budget_rev["Export"] = [0, 0, 0, 90000, 110000, 120000, 140000, 150000, 150000, 160000, 180000, 220000]
    expense = {a: n for a, n in ACCOUNTS.items() if 6000 <= a < 6800}
    glm = gl.assign(m=[d.month for d in gl.date]).groupby(["account", "m"]).debit.sum()
    budget_opex = {}
    for a, n in expense.items():
        act = [glm.get((a, m), 0) for m in MONTHS]
        budget_opex[n] = [round(v * r.uniform(.92, 1.08), -2) for v in act] + [round(np.mean(act), -2)] * 3
    rows_of = lambda d: [[k, *v, sum(v)] for k, v in d.items()]
    total = lambda d: ["Total", *[sum(c) for c in zip(*[v + [sum(v)] for v in d.values()])]]
    heads = payroll[payroll.pay_period == f"{y}-09"].drop_duplicates("employee_id").department.value_counts()
    headcount = {d: int(heads.get(d, 0)) for d in DEPTS}
    save_xlsx(path["budget"], [
        ("Revenue", [title(f"Revenue budget {y} by region (EUR)"), [], hdr("Region", mnames + [f"FY {y}"])] +
         rows_of(budget_rev) + [total(budget_rev)], [14] + [11] * 13),
        ("Opex", [title(f"Operating expense budget {y} (EUR)"), [], hdr("Expense", mnames + [f"FY {y}"])] +
         rows_of(budget_opex) + [total(budget_opex)], [24] + [11] * 13),
        ("Headcount", [hdr("Department", ["Budget"])] + [[d, n + int(r.integers(-2, 4))] for d, n in headcount.items()],
         [20, 10]),
        ("Notes", [["Approved by the board on 12 December 2025."],
                   ["Export: new channel via a Scandinavian distribution partner, launch planned for April."]], [90])])

    ap_cols = ["invoice_id", "supplier", "invoice_date", "due_date", "account", "amount_eur", "status"]
    save_xlsx(path["gl"], [
        ("Journal", frame_rows(gl), [11, 5, 11, 8, 26, 34, 12, 12, 22]),
        ("Trial balance", [title(f"Trial balance at 30 September {y} (EUR)"), []] + frame_rows(tb),
         [8, 26, 14, 14, 14]),
        ("AP invoices", frame_rows(inv[ap_cols]), [11, 30, 11, 11, 8, 12, 8]),
        ("Accounts", [hdr("Account", ["Name", "Type"])] +
         [[a, n, ["Asset", "Liability", "Equity", "Revenue", "Expense", "Expense", "Expense"][a // 1000 - 1]]
          for a, n in ACCOUNTS.items()], [8, 28, 10])])

    quarter = (month - 1) // 3
    actual = ok.groupby([ok.region, quarter]).amount_eur.sum()
    stated = {g: [int(round(actual[g, q])) for q in range(3)] for g in REGIONS}
    stated["East"][2] += 184260  # Planted: the board pack was compiled from a stale extract
    opex = {n: (bal[a], sum(budget_opex[n][:9])) for a, n in expense.items()}
    board_report(path["board"], stated, opex, headcount, forecast, bal[1000])
    q3 = inv[inv.invoice_date >= dt.date(y, 7, 1)].copy()
    q3["pdf_amount"] = np.where(q3.invoice_id == planted_inv, 18450.00, q3.amount_eur)
    invoice_report(path["ap"], q3)
    auditor_letter(path["audit"], bal[1000], -bal[2000])

    files = []
    for k, p in path.items():
        with open(p, "rb") as f:
            files.append({"name": F[k], "bytes": os.path.getsize(p), "sha256": hashlib.sha256(f.read()).hexdigest()})
    fmt = dict(y=y, inv=planted_inv, cust="C13877")
    findings = [{"id": i.format(**fmt), "title": t, "files": [f.format(**fmt) for f in fs]} for i, t, fs in PLANTED]
    key = {"description": f"Planted inconsistencies in the {COMPANY} sample set; every id must be found.",
           "period_end": END.isoformat(), "findings": findings, "files": sorted(files, key=lambda f: f["name"])}
    expected = args.expected or os.path.join(os.path.dirname(out), "expected.json")
    with open(expected, "w") as f:
        json.dump(key, f, indent=2)
        f.write("\n")

    for f in key["files"]:
        print(f"{f['bytes']:>11,}  {f['name']}")
    size = sum(f["bytes"] for f in files)
    print(f"{size:>11,}  total: {len(files)} files in {out} ({size / 1e6:.1f} MB, {time.monotonic() - t0:.1f} s)")
    print(f"answer key: {expected} ({len(findings)} planted findings)")


if __name__ == "__main__":
    sys.exit(main())
