"""The fictional company behind the sample set, and its three PDF documents.

Kept apart from generate.py, which makes the data: this module holds the prose
and layout. The PDFs are built with reportlab's platypus in invariant mode (no
creation date, no random document id) so they are byte-identical across runs,
and with plain Helvetica, whose text pypdf extracts cell by cell.
"""
import reportlab.rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

reportlab.rl_config.invariant = 1

COMPANY = "Larkspur Outdoor Supply B.V."
AUDITOR = "Hendriks & Vale Accountants N.V."
YEAR = 2026
REGIONS = ["North", "South", "East", "West", "Central"]


def eur(x, dp=2):
    return f"{x:,.{dp}f}"

STYLES = getSampleStyleSheet()


def para(text, style="BodyText"):
    return Paragraph(text.replace("&", "&amp;"), STYLES[style])


def table(rows, widths=None, numeric_from=1):
    t = Table(rows, colWidths=widths, repeatRows=1)
    t.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"), ("FONTSIZE", (0, 0), (-1, -1), 8.5),
                           ("LINEBELOW", (0, 0), (-1, 0), .6, colors.black),
                           ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
                           ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f1f4f8")])]))
    return t


def save_pdf(path, title, story):
    def footer(canvas, doc):
        canvas.setFont("Helvetica", 7.5)
        canvas.drawString(20 * mm, 10 * mm, f"{COMPANY} - {title} - page {doc.page}")
    doc = SimpleDocTemplate(path, pagesize=A4, title=title, author=COMPANY, invariant=1,
                            leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm, bottomMargin=18 * mm)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)


def board_report(path, stated, opex, headcount, forecast, cash):
    y = YEAR
    ytd = {g: sum(stated[g]) for g in REGIONS}
    tot = [sum(stated[g][q] for g in REGIONS) for q in range(3)]
    growth = (tot[2] / tot[1] - 1) * 100
    best = max(REGIONS, key=lambda g: stated[g][2] / stated[g][1])
    act, bud = sum(a for a, _ in opex.values()), sum(b for _, b in opex.values())
    worst = min(opex, key=lambda n: opex[n][1] - opex[n][0])  # the largest overspend
    opex_line = (f"Operating expenses of EUR {eur(act, 0)} were {abs(act / bud - 1) * 100:.1f}% "
                 f"{'above' if act > bud else 'below'} budget, mostly in {worst.lower()}. ")
    s = [para(COMPANY, "Title"), para(f"Board report - third quarter {y}", "Heading1"),
         para(f"For the quarter ended 30 September {y}. Prepared by the finance team for the board meeting of "
              f"16 October {y}. All amounts in euro (EUR) unless stated otherwise."),
         para("1. Executive summary", "Heading2"),
         para(f"Revenue for the nine months to 30 September {y} was EUR {eur(sum(tot), 0)}, of which "
              f"EUR {eur(tot[2], 0)} in the third quarter, {growth:+.1f}% on the second quarter. The summer season was "
              f"strong across all regions; {best} grew fastest quarter on quarter. Gross margin held at 48% "
              "of net revenue, in line with plan, as freight rates eased from their spring peak."),
         para(opex_line + f"Headcount at 30 September was {sum(headcount.values())}. "
              f"Cash at bank stood at EUR {eur(cash, 0)} at the quarter end, after the seasonal inventory build "
              "for the autumn and winter ranges."),
         para("The export channel approved in the 2026 budget has not launched: the distribution agreement with our "
              "Scandinavian partner is still under negotiation, and no export orders were taken in the period."),
         para("The interim audit took place in the first two weeks of October; the auditor's management letter "
              "is attached to this pack and summarised in section 6."),
         PageBreak(), para("2. Revenue by region and quarter", "Heading2"),
         para("Net revenue per sales region as recorded in the order system, converted to euro at monthly "
              "average rates. Refunds are reported separately under sales returns.")]
    rows = [["Region", f"Q1 {y}", f"Q2 {y}", f"Q3 {y}", "YTD"]]
    rows += [[g, *[eur(v, 0) for v in stated[g]], eur(ytd[g], 0)] for g in REGIONS]
    rows += [["Total", *[eur(v, 0) for v in tot], eur(sum(tot), 0)]]
    s += [table(rows, [40 * mm, 30 * mm, 30 * mm, 30 * mm, 32 * mm]), Spacer(1, 6 * mm)]
    for g in REGIONS:
        ch = (stated[g][2] / stated[g][1] - 1) * 100
        s.append(para(f"<b>{g}.</b> Third-quarter revenue of EUR {eur(stated[g][2], 0)} ({ch:+.1f}% on Q2), "
                      f"EUR {eur(ytd[g], 0)} for the year to date. " +
                      {"North": "Retail partners in the north restocked early for the autumn season.",
                       "South": "Wholesale volumes recovered after the spring slowdown.",
                       "East": "Online sales of tents and sleeping bags drove the summer peak.",
                       "West": "Two new retail accounts opened in July.",
                       "Central": "Cycling accessories remain the largest category."}[g]))
    s += [PageBreak(), para("3. Operating expenses", "Heading2"),
          para(f"Expenses for the nine months to 30 September {y} against the budget for the same months.")]
    rows = [["Expense", "YTD actual", "YTD budget", "Variance", "Variance %"]]
    for name, (act, bud) in opex.items():
        rows.append([name, eur(act, 0), eur(bud, 0), eur(bud - act, 0), f"{(bud - act) / bud * 100:+.1f}%"])
    s += [table(rows, [48 * mm, 30 * mm, 30 * mm, 28 * mm, 24 * mm]), Spacer(1, 5 * mm),
          para(f"{worst} ran EUR {eur(opex[worst][0] - opex[worst][1], 0)} over budget. Marketing spend was phased "
               "towards the summer campaign. Professional fees include the interim audit. A positive variance is "
               "an underspend."),
          para("4. People", "Heading2"), para("Employees paid in the September payroll, by department.")]
    rows = [["Department", "Headcount"]] + [[d, str(n)] for d, n in headcount.items()]
    s += [table(rows + [["Total", str(sum(headcount.values()))]], [60 * mm, 30 * mm]),
          PageBreak(), para("5. Outlook for the fourth quarter", "Heading2"),
          para("The base-case forecast (see the forecast workbook) by region and month:")]
    rows = [["Region", f"Oct {y}", f"Nov {y}", f"Dec {y}", "Q4 total"]]
    rows += [[g, *[eur(v, 0) for v in forecast[g]], eur(sum(forecast[g]), 0)] for g in REGIONS]
    s += [table(rows, [40 * mm, 30 * mm, 30 * mm, 30 * mm, 32 * mm]), Spacer(1, 5 * mm),
          para("6. Risks and matters for the board", "Heading2"),
          para("Inventory: the September count at the Lyon warehouse showed differences that the warehouse team "
               "is still reconciling; the auditor has asked for the final count sheets."),
          para("Payroll: the payroll provider migrated to a new platform in August. Finance is reviewing the August "
               "run with the provider."),
          para("Currency: about a fifth of revenue is invoiced in USD, GBP and SEK and converted at monthly average "
               "rates; the weaker dollar reduced reported revenue by roughly 1.5% against plan."),
          para("7. Decisions requested", "Heading2"),
          para("The board is asked to approve the fourth-quarter forecast and to decide whether the export budget "
               "should be carried into 2027 or released.")]
    save_pdf(path, f"Board report Q3 {y}", s)


def invoice_report(path, q3):
    s = [para(COMPANY, "Title"), para(f"Supplier invoice summary - third quarter {YEAR}", "Heading1"),
         para(f"Invoices received from suppliers between 1 July and 30 September {YEAR}, as approved by accounts "
              f"payable. {len(q3)} invoices, EUR {eur(q3.pdf_amount.sum())} in total. "
              f"Status as at 30 September {YEAR}; "
              "open invoices fall due in October and November."),
         Spacer(1, 3 * mm)]
    rows = [["Invoice", "Supplier", "Invoice date", "Due date", "Status", "Amount (EUR)"]]
    rows += [[x.invoice_id, x.supplier, x.invoice_date.isoformat(), x.due_date.isoformat(), x.status, eur(x.pdf_amount)]
             for x in q3.itertuples()]
    s += [table(rows, [22 * mm, 58 * mm, 22 * mm, 22 * mm, 14 * mm, 28 * mm], numeric_from=5), PageBreak(),
          para("Totals by supplier", "Heading2")]
    by = q3.groupby("supplier").pdf_amount.agg(["count", "sum"]).sort_values("sum", ascending=False)
    rows = [["Supplier", "Invoices", "Amount (EUR)"]] + [[n, str(int(c)), eur(v)] for n, (c, v) in by.iterrows()]
    s += [table(rows + [["Total", str(len(q3)), eur(q3.pdf_amount.sum())]], [80 * mm, 20 * mm, 34 * mm]),
          Spacer(1, 6 * mm),
          para(f"Prepared by accounts payable on 7 October {YEAR}. Approved: M. Jansen, finance manager.")]
    save_pdf(path, f"Supplier invoices Q3 {YEAR}", s)


def auditor_letter(path, cash, payables):
    y = YEAR
    text = [
        f"{AUDITOR}<br/>Stationsplein 12, 5038 AB Tilburg, the Netherlands", f"14 October {y}",
        f"To the Board of Directors, {COMPANY}, Ringbaan-West 240, Tilburg",
        f"<b>Management letter: interim audit for the nine months ended 30 September {y}</b>",
        "Dear members of the Board,",
        f"As part of our audit of the financial statements for the year ending 31 December {y}, we performed interim "
        f"procedures on the accounts for the nine months ended 30 September {y}. This letter sets out the matters we "
        "wish to bring to your attention. It is not a complete list of weaknesses that may exist, and our procedures "
        "were not designed to express an opinion on the interim figures.",
        "<b>Cash.</b> We obtained direct confirmation from ING Bank N.V. of the cash at bank balance of "
        f"EUR {eur(cash)} at 30 September {y}. The confirmed balance agrees with the general ledger without "
        "reconciling items.",
        "<b>Purchases and payables.</b> We agreed a sample of 40 supplier invoices to purchase orders and goods "
        f"received notes without exception. Trade payables amounted to EUR {eur(payables)} at 30 September {y}; "
        "we reconciled the balances of the five largest suppliers to their statements. We recommend that the "
        "quarterly supplier invoice summary be reconciled to the ledger before it is circulated, as the two are "
        "prepared separately.",
        "<b>Revenue.</b> Sales are recorded from the order system and posted to the ledger as daily totals per region "
        "and channel. We tested the interface for a sample of days and found it complete. We noted that the board "
        "report figures are compiled from a separate extract, and recommend a documented reconciliation of the board "
        "pack to the order system before each meeting.",
        "<b>Inventory.</b> We attended the count at the Tilburg warehouse on 29 September and noted no material "
        "differences. The Lyon count was performed by the warehouse team without our attendance; the count sheets "
        "show differences that were not yet resolved at the date of this letter. We will revisit the Lyon results "
        "during the final audit.",
        "<b>Payroll.</b> The payroll provider changed platforms during August. We recommend that management reviews "
        "the August and September payroll registers for duplicate or missing payments arising from the migration, and "
        "that the payroll reconciliation to the ledger is signed off monthly.",
        "<b>IT general controls.</b> Three former employees still held active accounts in the finance system at the "
        "date of our visit. Access reviews should be performed quarterly and leavers removed within one working day.",
        "<b>Manual journal entries.</b> Manual entries above EUR 50,000 are approved by the finance manager. We found "
        "the approvals documented for all entries in our sample.",
        "<b>Refunds.</b> Refunds are approved in the order system by four members of staff. We recommend a monthly "
        "report of customers whose refunds approach or exceed their purchases, as the system does not prevent a sale "
        "from being refunded more than once.",
        "We discussed these matters with the finance manager on 13 October. We would like to thank your staff for "
        "their assistance. We will report on the final audit in our letter after the year end.",
        "Yours faithfully,", f"{AUDITOR}<br/>drs. P. Hendriks RA, partner"]
    story = [para(t) if i != 3 else para(t, "Heading3") for i, t in enumerate(text)]
    recs = [["No.", "Area", "Recommendation", "Priority", "Due"],
            ["1", "Board reporting", "Reconcile the board pack to the order system", "High", f"Nov {y}"],
            ["2", "Payables", "Reconcile the invoice summary to the ledger", "High", f"Nov {y}"],
            ["3", "Inventory", "Resolve the Lyon count differences", "High", f"Dec {y}"],
            ["4", "Payroll", "Review the August and September registers", "High", f"Nov {y}"],
            ["5", "Refunds", "Report refunds against purchases monthly", "Medium", f"Dec {y}"],
            ["6", "IT", "Quarterly access reviews; timely removal of leavers", "Medium", f"Dec {y}"],
            ["7", "Budgeting", "Remove budget lines for activities that have not started", "Low", f"Jan {y + 1}"]]
    story += [PageBreak(), para("Appendix: summary of recommendations", "Heading3"),
              table(recs, [10 * mm, 28 * mm, 88 * mm, 16 * mm, 18 * mm], numeric_from=5), Spacer(1, 5 * mm),
              para("Priority High: to be addressed before the final audit. Medium: before the next interim visit. "
                   "Low: at management's discretion. We will follow up on each point in the final audit."),
              para("Overall materiality for the year is set at 1% of expected revenue. We report all uncorrected "
                   "differences above 5% of materiality to the audit committee.")]
    save_pdf(path, f"Management letter {y}", story)
