#!/usr/bin/env python3
"""Line review: the stand-in for an LLM agent in Warden's review-job demo.

    python3 /input/agent.py [--input /input] [--output /output]

Reads every file in the input directory (PDF, CSV, XLSX; its own *.py and
hidden files are skipped), profiles each one, cross-checks figures between
files, and writes report.html (a self-contained review deck with embedded
charts), summary.md and findings.json to the output directory. It needs
readers.py and report.py next to it: a job uploads all three.

A real deployment runs an LLM agent here that reads the files and writes its
own analysis code. This script does by fixed rules what that agent would
do by judgement, so the demo is deterministic and needs no network or API
key. It recognises files by their columns, never by their names, so renamed
or reordered inputs still work. Progress goes to stdout, which Warden streams
as the job's log. A file it cannot read becomes a finding, not a crash.
"""
import argparse
import datetime as dt
import os
import re
import sys
import time
from collections import Counter, defaultdict

# One thread per math library: the job has one CPU, and a sandbox's process limit
# would not let OpenBLAS start a thread per host core anyway.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# The agent's other two modules, uploaded next to it: readers.py turns files into
# tables and text, report.py draws the charts and writes the three outputs.
sys.dont_write_bytecode = True  # /input is read-only in a job; locally, keep the sources' directory clean
import report  # noqa: E402
from readers import REF_ID, Doc, id_amounts, load, num, profile, quarter_table  # noqa: E402

T0 = time.monotonic()
TOTAL = re.compile(r"^\s*(total|sum|all|grand total)\b", re.I)
CHANGE = re.compile(r"\b(over|under|above|below|more|less|higher|lower|up|down|increase|decrease|variance|budget)\b")


def log(msg):
    print(f"[{time.monotonic() - T0:5.1f}s] {msg}", flush=True)


def money(x, dp=2):
    return f"{x:,.{dp}f}"


# ---------------------------------------------------------------- finding the tables a check needs

def col(df, *words, avoid=()):
    """The first column whose name contains one of the words (case-insensitive)."""
    for w in words:
        for c in df.columns:
            lc = str(c).lower()
            if w in lc and not any(a in lc for a in avoid):
                return c
    return None


def amount_col(df):
    return col(df, "amount_eur", "amount", "total", "value")


class Data:
    """All tables of all files, and the roles the checks need, found by column names."""

    def __init__(self, docs):
        self.docs = docs
        self.tables = [(d, s, t) for d in docs for s, t in d.tables.items() if len(t)]
        self.pdfs = [d for d in docs if d.kind == "pdf" and d.text]

        def pick(pred):
            found = [x for x in self.tables if pred(x[2])]
            return max(found, key=lambda x: len(x[2])) if found else None
        self.txn = pick(lambda t: all((col(t, "region"), col(t, "customer"), col(t, "date"), amount_col(t)))
                        and not col(t, "refund"))
        self.refunds = pick(lambda t: col(t, "refund") and col(t, "customer") and amount_col(t))
        self.payroll = pick(lambda t: col(t, "employee") and col(t, "period", "month") and col(t, "gross"))
        self.stock = pick(lambda t: col(t, "sku") and qty_cols(t) and not col(t, "customer"))
        self.customers = pick(lambda t: str(t.columns[0]).lower().startswith("customer") and t.iloc[:, 0].is_unique)
        self.journal = pick(lambda t: col(t, "debit") and col(t, "credit") and col(t, "entry"))
        self.tb = pick(lambda t: col(t, "balance") and col(t, "account"))
        self.fx = [x for x in self.tables if col(x[2], "month") and fx_cols(x[2])]
        self.period_end = self.find_period_end()
        if self.txn:
            t = self.txn[2]
            self.t_date, self.t_amt, self.t_region = col(t, "date"), amount_col(t), col(t, "region")
            self.regions = {str(r).lower(): str(r) for r in t[self.t_region].dropna().unique()}

    def find_period_end(self):
        """The documents say which period they cover; failing that, the data's last busy month."""
        said = Counter()
        for d in self.pdfs:
            for m in re.finditer(r"(?:quarter|months|period|year)\s+ended\s+(\d{1,2} [A-Z][a-z]+ \d{4})", d.text):
                try:
                    said[dt.datetime.strptime(m.group(1), "%d %B %Y")] += 1
                except ValueError:
                    pass
        self.period_source = "stated in the PDFs" if said else "the last busy month of the sales"
        if said:
            return pd.Timestamp(said.most_common(1)[0][0])
        if not self.txn:
            return None
        months = self.txn[2][col(self.txn[2], "date")].dt.to_period("M").value_counts()
        busy = months[months >= 0.1 * months.median()].index.max()
        return busy.to_timestamp(how="end").normalize()


def qty_cols(df):
    return [c for c in df.columns if re.search(r"qty|quantity|units|on_hand|stock", str(c), re.I)
            and pd.api.types.is_numeric_dtype(df[c])]


def fx_cols(df):
    return [c for c in df.columns if re.fullmatch(r"[A-Z]{3}", str(c)) and pd.api.types.is_numeric_dtype(df[c])]


# ---------------------------------------------------------------- the checks

class Review:
    def __init__(self, data):
        self.d, self.findings, self.checks = data, [], []
        # series the checks compute and report.py draws
        self.monthly = self.stock_qty = self.refund_ratio = self.plan = self.actual_q = None
        self.stated, self.plan_source = {}, ""

    def flag(self, fid, severity, title, detail, files, chart=None):
        self.findings.append({"id": fid, "severity": severity, "title": title, "detail": detail,
                              "files": sorted(set(files)), "chart": chart})
        log(f"  finding [{severity}] {fid}: {title}")

    def ok(self, name, detail, files):
        self.checks.append({"check": name, "detail": detail, "files": sorted(set(files))})
        log(f"  ok: {name}: {detail}")

    def run(self):
        for check in (self.dates, self.quantities, self.keys, self.payroll, self.refunds, self.references,
                      self.regions, self.board_revenue, self.ledger, self.invoices, self.letters, self.fx):
            log(f"check: {check.__doc__.strip()}")
            try:
                check()
            except Exception as e:  # one broken check must not cost the rest of the review
                self.flag(f"check-failed/{check.__name__}", "low", f"Check '{check.__name__}' could not run",
                          f"{type(e).__name__}: {e}", [])

    def dates(self):
        """no record dated after the period end"""
        end = self.d.period_end
        if end is None:
            return
        checked, ahead = 0, re.compile(r"due|expir|valid|forecast|plan", re.I)  # may lie ahead; events may not
        for doc in self.d.docs:
            hits = []
            for sheet, t in doc.tables.items():
                for c in t.columns:
                    if pd.api.types.is_datetime64_any_dtype(t[c]) and not ahead.search(str(c)):
                        bad, checked = t[t[c] > end], checked + 1
                        amt = amount_col(t)
                        hits += [f"{r.iloc[0]} dated {r[c]:%Y-%m-%d}" + (f" (EUR {money(r[amt])})" if amt else "")
                                 for _, r in bad.head(10).iterrows()]
            if hits:
                self.flag(f"future-dated/{doc.name}", "medium",
                          f"{len(hits)} record(s) in {doc.name} dated after the period end",
                          f"The period ends {end:%d %B %Y}; these records are dated later, so they either belong to "
                          f"another period or carry a keying error: {'; '.join(hits)}.", [doc.name], "monthly")
        if self.d.txn:  # for the monthly chart
            t = self.d.txn[2]
            self.monthly = t.groupby(t[self.d.t_date].dt.to_period("M"))[self.d.t_amt].sum()
        self.ok("dates", f"period end {end:%Y-%m-%d} ({self.d.period_source}); {checked} dated columns checked",
                [d.name for d in self.d.docs if d.tables])

    def quantities(self):
        """no negative quantities"""
        for doc, sheet, t in self.d.tables:
            for c in qty_cols(t):
                bad = t[t[c] < 0]
                if self.d.stock and t is self.d.stock[2]:
                    self.stock_qty = t[c]
                if len(bad):
                    rows = "; ".join(f"{r.iloc[0]} ({', '.join(str(v) for v in r.iloc[1:4])}): {r[c]:g}"
                                     for _, r in bad.head(10).iterrows())
                    self.flag(f"negative-quantity/{doc.name}", "medium",
                              f"{len(bad)} negative value(s) in {c} of {doc.name}",
                              f"A quantity cannot be below zero; a count or posting is missing or wrong: {rows}.",
                              [doc.name], "stock" if self.d.stock and t is self.d.stock[2] else None)

    def keys(self):
        """record ids are unique"""
        for doc, sheet, t in self.d.tables:
            c = t.columns[0]
            if str(c).lower().endswith("id") and t[c].notna().all() and not t[c].is_unique \
                    and t[c].nunique() >= 0.99 * len(t):  # ids meant to be unique (not an employee per month)
                dup = t[t[c].duplicated(keep=False)][c].unique()
                self.flag(f"duplicate-id/{doc.name}/{c}", "medium", f"Duplicate {c} values in {doc.name}",
                          f"{len(dup)} id(s) occur more than once: {', '.join(map(str, dup[:10]))}.", [doc.name])

    def payroll(self):
        """each employee is paid once per period, and gross - tax = net"""
        if not self.d.payroll:
            return
        doc, _, t = self.d.payroll
        emp, per, gross = col(t, "employee"), col(t, "period", "month"), col(t, "gross")
        paid = col(t, "paid", "date")
        for (e, p), g in t[t.duplicated([emp, per], keep=False)].groupby([emp, per]):
            when = f"; paid {', '.join(f'{v:%Y-%m-%d}' for v in g[paid])}" if paid else ""
            self.flag(f"duplicate-payment/{e}/{p}", "high", f"{e} was paid {len(g)} times for {p}",
                      f"{doc.name} has {len(g)} payments to {e} for pay period {p} (gross EUR "
                      f"{', '.join(money(v) for v in g[gross])}{when}), EUR {money(g[gross].iloc[1:].sum())} "
                      "more than one salary.", [doc.name])
        tax, net = col(t, "tax"), col(t, "net")
        if tax and net:
            off = ((t[gross] - t[tax] - t[net]).abs() > 0.011).sum()
            if off:
                self.flag(f"payroll-arithmetic/{doc.name}", "medium", f"{off} payslip(s) where gross - tax != net",
                          f"{doc.name}: {gross} - {tax} differs from {net} by more than a cent.", [doc.name])
            else:
                self.ok("payroll", f"{len(t):,} payslips: gross - tax = net on every one", [doc.name])

    def refunds(self):
        """no customer is refunded more than they bought"""
        if not (self.d.refunds and self.d.txn):
            return
        (rd, _, r), (td, _, t) = self.d.refunds, self.d.txn
        rc, ra, tc = col(r, "customer"), amount_col(r), col(t, "customer")
        bought, sales = t.groupby(tc)[self.d.t_amt].sum(), t.groupby(tc).size()
        refunded = r.groupby(rc)[ra].sum()
        self.refund_ratio = (refunded / bought.reindex(refunded.index)).fillna(np.inf)
        over = refunded[refunded > bought.reindex(refunded.index).fillna(0) + 0.01]
        orig = col(r, "original", "txn", "sale", avoid=("refund",))
        for cust, amt in over.items():
            mine = r[r[rc] == cust]
            again = mine[orig].value_counts() if orig else pd.Series(dtype=int)
            again = again[again > 1]
            self.flag(f"refunds-exceed-purchases/{cust}", "high", f"Refunds to {cust} exceed their purchases",
                      f"{cust} was refunded EUR {money(amt)} in {len(mine)} refunds ({rd.name}) but bought only "
                      f"EUR {money(bought.get(cust, 0))} in {int(sales.get(cust, 0))} sale(s) ({td.name})" +
                      "".join(f"; sale {k} was refunded {v} times" for k, v in again.items()) + ".",
                      [rd.name, td.name], "refunds")
        self.ok("refunds", f"{len(refunded) - len(over):,} of {len(refunded):,} refunded customers within their "
                "purchases",
                [rd.name, td.name])

    def references(self):
        """every customer, SKU and sale referred to exists"""
        if not self.d.txn:
            return
        td, _, t = self.d.txn
        pairs = []  # (file, table, column) must all be found in (file, table, column)
        if self.d.customers:
            cd, _, c = self.d.customers
            pairs.append((td, t, col(t, "customer"), cd, c, c.columns[0]))
            if self.d.refunds:
                rd, _, r = self.d.refunds
                pairs.append((rd, r, col(r, "customer"), cd, c, c.columns[0]))
        if self.d.stock:
            sd, _, s = self.d.stock
            pairs.append((td, t, col(t, "sku"), sd, s, col(s, "sku")))
        if self.d.refunds:
            rd, _, r = self.d.refunds
            pairs.append((rd, r, col(r, "original", "txn", avoid=("refund",)), td, t, t.columns[0]))
        for a, ta, ca, b, tb, cb in pairs:
            if ca and cb:
                missing = set(ta[ca].dropna()) - set(tb[cb].dropna())
                if missing:
                    self.flag(f"unknown-reference/{a.name}/{ca}", "medium",
                              f"{len(missing)} {ca} value(s) in {a.name} not in {b.name}",
                              ", ".join(sorted(map(str, missing))[:10]), [a.name, b.name])
                else:
                    self.ok("references", f"every {ca} in {a.name} exists in {b.name}", [a.name, b.name])

    def regions(self):
        """every region planned or reported has sales"""
        if not self.d.txn:
            return
        where, end = defaultdict(set), self.d.period_end
        months = [dt.date(2000, m, 1).strftime("%b") for m in range(1, end.month + 1)] if end is not None else []
        for doc, sheet, t in self.d.tables:
            c = col(t, "region")
            if c and t is not self.d.txn[2] and months and all(m in t.columns for m in months) and self.plan is None:
                plan = t[~t[c].astype(str).str.match(TOTAL)].set_index(c)[months].sum(axis=1)  # budget year to date
                self.plan, self.plan_source = plan, doc.name
            if c and t is not self.d.txn[2]:
                for v in t[c].dropna().astype(str).unique():
                    if v.lower() not in self.d.regions and not TOTAL.match(v):
                        where[v].add(doc.name + (f" / {sheet}" if sheet else ""))
        for region, docs in where.items():
            self.flag(f"region-without-transactions/{region.lower()}", "medium",
                      f"Region '{region}' has no transactions",
                      f"'{region}' appears in {', '.join(sorted(docs))}, but no sale in {self.d.txn[0].name} is in "
                      f"that region (the sales regions are {', '.join(sorted(self.d.regions.values()))}).",
                      [x.split(" / ")[0] for x in docs] + [self.d.txn[0].name], "budget")
        if not where:
            self.ok("regions", "every region in the workbooks has sales", [self.d.txn[0].name])

    def board_revenue(self):
        """revenue tables in the PDFs agree with the transactions"""
        if not self.d.txn:
            return
        td, _, t = self.d.txn
        when = t[self.d.t_date]
        actual = t.groupby([t[self.d.t_region].str.lower(), when.dt.year, when.dt.quarter])[self.d.t_amt].sum()
        self.actual_q = actual
        for doc in self.d.pdfs:
            table, agree, cells = quarter_table(doc.text), 0, 0
            for label, vals in table.items():
                region = label.lower()
                if region not in self.d.regions:
                    continue
                for (y, q), stated in vals.items():
                    real, cells = actual.get((region, y, q), 0.0), cells + 1
                    if abs(stated - real) <= 1.0:  # the report prints whole euros
                        agree += 1
                        continue
                    self.stated[(region, y, q)] = stated
                    self.flag(f"revenue-mismatch/{region}/{y}-q{q}", "high",
                              f"{doc.name}: {label} Q{q} {y} revenue does not match the transactions",
                              f"The report states EUR {money(stated, 0)}; the {td.name} rows for {label} dated in "
                              f"Q{q} {y} sum to EUR {money(real)} (difference {stated - real:+,.2f}, "
                              f"{(stated / real - 1) * 100:+.1f}%).",
                              [doc.name, td.name], "revenue")
            if cells:
                self.ok("board revenue", f"{agree} of {cells} region-quarter figures in {doc.name} agree with "
                        f"{td.name} to the euro", [doc.name, td.name])

    def ledger(self):
        """the journal balances, the trial balance ties to it, ledger revenue ties to sales"""
        if self.d.journal:
            jd, js, j = self.d.journal
            dr, cr, entry, acct = col(j, "debit"), col(j, "credit"), col(j, "entry"), col(j, "account", avoid=("name",))
            net = j[dr].fillna(0) - j[cr].fillna(0)
            off = net.groupby(j[entry]).sum().abs()
            if (off > 0.005).any():
                self.flag(f"unbalanced-journal/{jd.name}", "high",
                          f"{int((off > 0.005).sum())} unbalanced journal entries",
                          ", ".join(map(str, off[off > 0.005].index[:10])), [jd.name])
            else:
                self.ok("journal", f"{len(off):,} entries in {jd.name} / {js}, debits = credits = EUR "
                        f"{money(j[dr].sum())}", [jd.name])
            if self.d.tb:
                td_, ts, tb = self.d.tb
                bal = net.groupby(j[acct]).sum()
                tacct = col(tb, "account", avoid=("name",))
                diff = [(a, b, bal.get(a, 0.0)) for a, b in zip(tb[tacct], tb[col(tb, "balance")])
                        if abs(b - bal.get(a, 0.0)) > 0.01]
                for a, b, jb in diff:
                    self.flag(f"trial-balance-mismatch/{a}", "high",
                              f"Trial balance for account {a} differs from the journal",
                              f"trial balance {money(b)}, journal {money(jb)}", [td_.name])
                if not diff:
                    self.ok("trial balance", f"{len(tb)} accounts in '{ts}' equal the journal's totals", [td_.name])
        if self.d.tb and self.d.txn and self.d.period_end is not None:
            tbd, _, tb = self.d.tb
            name, t = col(tb, "name"), self.d.txn[2]
            start = pd.Timestamp(self.d.period_end.year, 1, 1)
            inside = t[(t[self.d.t_date] >= start) & (t[self.d.t_date] <= self.d.period_end)]
            sales = inside.groupby(inside[self.d.t_region].str.lower())[self.d.t_amt].sum()
            n = 0
            for acc, b in zip(tb[name].astype(str), tb[col(tb, "balance")]):
                region = next((r for r in self.d.regions if "revenue" in acc.lower()
                               and re.search(rf"\b{re.escape(r)}\b", acc.lower())), None)
                if region:
                    n += 1
                    if abs(-b - sales.get(region, 0)) > 1.0:
                        self.flag(f"ledger-revenue-mismatch/{region}", "high", f"Ledger '{acc}' differs from the sales",
                                  f"ledger EUR {money(-b)}, transactions EUR {money(sales.get(region, 0))}",
                                  [tbd.name, self.d.txn[0].name])
            if n:
                self.ok("ledger revenue", f"{n} regional revenue accounts equal the year-to-date sales per region",
                        [tbd.name, self.d.txn[0].name])

    def invoices(self):
        """ids quoted in PDFs carry the same amounts as in the spreadsheets"""
        books = {}  # id -> (amount, doc, id column)
        for doc, sheet, t in self.d.tables:
            c, a = t.columns[0], amount_col(t)
            if a and t[c].astype(str).head(50).str.fullmatch(REF_ID.pattern).all():
                books.update({k: (v, doc, str(c)) for k, v in zip(t[c].astype(str), t[a])})
        for doc in self.d.pdfs:
            quoted = id_amounts(doc.text)
            known = [k for k in quoted if k in books]
            if not quoted or len(known) < 0.8 * len(quoted):
                continue  # not a listing of records the books hold
            bad = [k for k in known if abs(quoted[k] - books[k][0]) > 0.005]
            for k in bad:
                amt, src, c = books[k]
                kind = "invoice-amount-mismatch" if "invoice" in c.lower() else "amount-mismatch"
                self.flag(f"{kind}/{k}", "high", f"{k}: {doc.name} and {src.name} disagree on the amount",
                          f"{doc.name} lists {k} at EUR {money(quoted[k])}; {src.name} records EUR {money(amt)} "
                          f"(difference {quoted[k] - amt:+,.2f}).", [doc.name, src.name])
            missing = sorted(set(quoted) - set(known))
            if missing:
                self.flag(f"missing-from-books/{doc.name}", "high",
                          f"{len(missing)} id(s) in {doc.name} not in the books",
                          ", ".join(missing[:10]), [doc.name])
            src = books[known[0]][1].name
            self.ok("invoices", f"{len(known)} ids in {doc.name} found in {src}; {len(known) - len(bad)} amounts agree",
                    [doc.name, src])

    def letters(self):
        """balances quoted in the PDFs' prose agree with the trial balance"""
        if not self.d.tb:
            return
        tbd, _, tb = self.d.tb
        names = {str(n).lower(): b for n, b in zip(tb[col(tb, "name")], tb[col(tb, "balance")]) if len(str(n)) >= 4}
        for doc in self.d.pdfs:
            text, agree = " ".join(doc.text.split()).lower(), []
            for m in re.finditer(r"eur\s*(-?\d{1,3}(?:,\d{3})*(?:\.\d{2})?)\b", text):
                # the amount belongs to the account named closest before it, within the sentence
                before = text[max(0, m.start() - 80):m.start()].split(". ")[-1]
                hits = [(before.rfind(n), n) for n in names if re.search(rf"\b{re.escape(n)}\b", before)]
                if not hits:
                    continue
                name = max(hits)[1]
                around = before[before.rfind(name) + len(name):] + " " + text[m.end():m.end() + 30]
                if CHANGE.search(around):
                    continue  # "salaries ran EUR 137,080 over budget": a difference, not a balance
                said, book = num(m.group(1)), abs(names[name])
                if abs(said - book) <= (0.01 if "." in m.group(1) else 0.5):
                    agree.append(name)
                else:
                    self.flag(f"quoted-balance-mismatch/{re.sub(r'[^a-z0-9]+', '-', name)}", "high",
                              f"{doc.name} quotes a different {name} balance than the ledger",
                              f"{doc.name}: EUR {m.group(1)}; {tbd.name}: EUR {money(book)}.", [doc.name, tbd.name])
            if agree:
                self.ok("quoted balances", f"{doc.name} quotes {', '.join(sorted(set(agree)))}: agrees with {tbd.name}",
                        [doc.name, tbd.name])

    def fx(self):
        """foreign-currency sales are converted at the published rates"""
        if not (self.d.txn and self.d.fx):
            return
        td, _, t = self.d.txn
        cur, local = col(t, "currency"), col(t, "amount", avoid=("eur",))
        if not (cur and local) or local == self.d.t_amt:
            return
        month = t[self.d.t_date].values.astype("datetime64[M]").astype(str)
        results = []
        for doc, sheet, f in self.d.fx:
            m = f[col(f, "month")]
            m = m.dt.strftime("%Y-%m") if pd.api.types.is_datetime64_any_dtype(m) else m.astype(str).str[:7]
            rates = f.assign(month=m).melt("month", fx_cols(f), "cur", "rate")
            x = pd.DataFrame({"month": month, "cur": t[cur].values, "amt": t[local].values,
                              "eur": t[self.d.t_amt].values})
            x = x.merge(rates, on=["month", "cur"], how="inner")
            good = ((x.amt * x.rate - x.eur).abs() <= 0.011).sum()
            results.append((good / max(len(x), 1), good, len(x), doc, sheet))
        share, good, n, doc, sheet = max(results, key=lambda r: r[0])
        if share < 0.995:
            self.flag(f"fx-conversion-mismatch/{td.name}", "medium",
                      f"{n - good} foreign-currency sales not at any published rate",
                      f"best match: '{sheet}' of {doc.name}, {good} of {n} rows", [td.name, doc.name])
        else:
            self.ok("fx", f"{good:,} of {n:,} foreign-currency sales in {td.name} converted at '{sheet}' of {doc.name}",
                    [td.name, doc.name])


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="Review the files in a directory and write a review deck.")
    ap.add_argument("--input", default="/input", help="directory with the files to review (default /input)")
    ap.add_argument("--output", default="/output", help="directory for the outputs (default /output)")
    args = ap.parse_args()
    if not os.path.isdir(args.input):
        print(f"line-review: input directory {args.input} does not exist", file=sys.stderr)
        return 2
    os.makedirs(args.output, exist_ok=True)
    names = []
    for root, dirs, files in os.walk(args.input):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        names += [os.path.relpath(os.path.join(root, f), args.input) for f in files
                  if not f.startswith(".") and not f.endswith(".py")]  # the agent's own code is not data
    names.sort()
    log(f"line review of {len(names)} files in {args.input}")
    docs = []
    for name in names:
        doc = Doc(os.path.join(args.input, name), name)
        log(f"reading {name} ({doc.bytes / 1e6:.2f} MB)")
        try:
            load(doc)
            doc.profiles = {s: profile(t) for s, t in doc.tables.items()}
        except Exception as e:  # a broken upload is a finding, not the end of the review
            doc.tables, doc.profiles, doc.error = {}, {}, f"{type(e).__name__}: {str(e)[:300]}"
            log(f"  cannot read {name}: {doc.error}")
        else:
            log("  " + (f"{doc.pages} pages, {len(doc.text):,} characters of text" if doc.kind == "pdf" else
                        "; ".join(f"{s + ': ' if s else ''}{len(t):,} rows x {len(t.columns)} columns"
                                  for s, t in doc.tables.items())))
        docs.append(doc)
    data = Data(docs)
    roles = {k: getattr(data, k) for k in ("txn", "refunds", "payroll", "stock", "customers", "journal", "tb")}
    found = ", ".join(f"{k}={v[0].name}{' / ' + v[1] if v[1] else ''}" for k, v in roles.items() if v)
    log(f"recognised: {found or 'no known tables'}"
        + (f"; period end {data.period_end:%Y-%m-%d}" if data.period_end is not None else ""))
    rv = Review(data)
    for doc in docs:
        if doc.error:
            rv.flag(f"unreadable-file/{doc.name}", "low" if "unsupported" in doc.error else "medium",
                    f"{doc.name} could not be read",
                    f"The file was not reviewed: {doc.error}. Re-export or re-upload it.", [doc.name])
    rv.run()
    log("writing report.html, summary.md, findings.json")
    for path in report.write(args.output, rv, docs, time.monotonic() - T0):
        log(f"  wrote {path} ({os.path.getsize(path):,} bytes)")
    log(f"done: {len(rv.findings)} findings, {len(rv.checks)} cross-checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
