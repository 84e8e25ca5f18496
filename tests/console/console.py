"""The web console in headless Chromium (Debian's chromium and chromedriver,
driven by Selenium): sign in with a tenant key, upload a file by the file
picker and watch it finish, submit a review, watch its log and status live,
open its HTML report, and check that the report's <script> neither runs
nor could read the console's storage or call the API; then the operator's
view: tenants, tiers, health, disabling a tenant. Run by
crates/cli/tests/api/console.rs; last line: {"passed": N, "failed": {...}}.

Environment: WARDEN_URL, WARDEN_API_KEY, WARDEN_ADMIN_TOKEN, WARDEN_TENANT_NAME.
"""

import json
import os
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.ui import WebDriverWait as _Wait

URL = os.environ["WARDEN_URL"]
KEY = os.environ["WARDEN_API_KEY"]
ADMIN = os.environ["WARDEN_ADMIN_TOKEN"]
TENANT = os.environ["WARDEN_TENANT_NAME"]

# What the report tries when it runs: mark itself, read the console's
# token, and create a sandbox with it.
ATTACK = (
    "<p id=marker>before</p><script>"
    "document.getElementById('marker').textContent='ran';"
    "var t='';try{t=parent.sessionStorage.getItem('warden.console.token')}catch(e){t=localStorage.x}"
    "fetch('/v1/sandboxes',{method:'POST',headers:{authorization:'Bearer '+t},body:'{}'});"
    "</script>"
)


def WebDriverWait(d, seconds):
    """A wait that looks again when the page re-rendered what it looked at."""
    return _Wait(d, seconds, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))


class Failed(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def api(path, token=KEY, method="GET"):
    req = urllib.request.Request(URL + path, method=method, headers={"authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null"), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]:
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def sign_in(d, token, view):
    # A fresh start: no token kept from an earlier sign-in in this tab,
    # cleared from a page of the same origin that runs no console script
    # (which could store it again while signing in).
    d.get(URL + "/console/app.css")
    d.execute_script("sessionStorage.clear()")
    d.get(URL + "/console")
    d.find_element(By.ID, "token").send_keys(token)
    d.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    WebDriverWait(d, 20).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-view") == view)


def the_console_is_served_under_a_strict_policy():
    with urllib.request.urlopen(URL + "/console", timeout=30) as r:
        csp = r.headers["content-security-policy"]
    check("script-src 'self'" in csp and "'unsafe-eval'" not in csp, csp)
    check("frame-ancestors 'none'" in csp and "object-src 'none'" in csp, csp)
    check("'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0], csp)


def the_reports_script_runs_outside_the_console(d):
    """The control: the same report in a page of its own runs its script
    (so "before" in the console's frame means it was stopped there)."""
    d.get("data:text/html;charset=utf-8," + urllib.parse.quote(ATTACK))
    WebDriverWait(d, 10).until(lambda d: d.find_element(By.ID, "marker").text == "ran")


def tenant_flow(d):
    sign_in(d, KEY, "tenant")
    # The console itself can read its token (the control for the frame below).
    check(d.execute_script("return sessionStorage.getItem('warden.console.token')") == KEY, "the console keeps its token")
    check(d.execute_script("return document.cookie") == "", "no cookie is set")

    # Upload through the file picker; progress reaches the end.
    d.find_element(By.CSS_SELECTOR, "nav button[data-tab=files]").click()
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "notes.txt")
    with open(path, "w") as f:
        f.write("line\n" * 50000)
    d.find_element(By.ID, "file-input").send_keys(path)
    WebDriverWait(d, 30).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#uploads li[data-state=done]")))
    bar = d.find_element(By.CSS_SELECTOR, "#uploads li[data-state=done] progress")
    check(bar.get_attribute("value") == bar.get_attribute("max"), "the progress bar ends full")
    WebDriverWait(d, 10).until(lambda d: "notes.txt" in d.find_element(By.ID, "files").text)

    # Submit a review over it whose report carries a script.
    d.find_element(By.CSS_SELECTOR, "nav button[data-tab=reviews]").click()
    WebDriverWait(d, 10).until(lambda d: len(Select(d.find_element(By.ID, "submit-files")).options) > 0)
    Select(d.find_element(By.ID, "submit-files")).select_by_visible_text("notes.txt")
    cmd = (f"wc -l < /input/notes.txt; sleep 1; echo done-printing; "
           f"printf '%s' \"{ATTACK}\" > /output/report.html")
    d.find_element(By.ID, "submit-command").send_keys(cmd)
    d.find_element(By.CSS_SELECTOR, "#submit-form button").click()
    WebDriverWait(d, 120).until(
        lambda d: d.find_element(By.ID, "review-status").get_attribute("data-status") == "succeeded")
    log = d.find_element(By.ID, "review-log").text
    check("50000" in log and "done-printing" in log, f"the live log: {log!r}")

    before = api("/v1/sandboxes?limit=1000")[1]["items"]
    d.find_element(By.CSS_SELECTOR, "#review-outputs button[data-path='report.html']").click()
    frame = WebDriverWait(d, 20).until(EC.visibility_of_element_located((By.ID, "report")))
    check(frame.get_attribute("sandbox") == "", "the report's frame is fully sandboxed")
    d.switch_to.frame(frame)
    check(d.find_element(By.ID, "marker").text == "before", "the report's script did not run")
    # Even a script that did run in the frame (WebDriver's, here) has an
    # opaque origin: the console's storage is out of its reach.
    try:
        got = d.execute_script(
            "try { return parent.sessionStorage.getItem('warden.console.token'); } "
            "catch (e) { return 'blocked: ' + e.name; }")
    except Exception as e:  # no script runs in the frame at all
        got = f"blocked: {type(e).__name__}"
    check(isinstance(got, str) and got.startswith("blocked"), f"the frame read the console's storage: {got!r}")
    d.switch_to.default_content()
    time.sleep(1)
    after = api("/v1/sandboxes?limit=1000")[1]["items"]
    check(len(after) == len(before), "the report made no API call")

    # Sandboxes, usage and audit tabs render what the API has.
    d.find_element(By.CSS_SELECTOR, "nav button[data-tab=usage]").click()
    WebDriverWait(d, 20).until(lambda d: "All time" in d.find_element(By.ID, "usage-total").text)
    check(len(d.find_elements(By.CSS_SELECTOR, "#usage-chart rect")) == 14, "fourteen days charted")
    d.find_element(By.CSS_SELECTOR, "nav button[data-tab=audit]").click()
    WebDriverWait(d, 20).until(lambda d: "review.submit" in d.find_element(By.ID, "audit").text)
    check("file.upload" in d.find_element(By.ID, "audit").text, "the upload is in the audit view")


def operator_flow(d):
    sign_in(d, ADMIN, "operator")
    WebDriverWait(d, 20).until(lambda d: TENANT in d.find_element(By.ID, "tenants").text)
    WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#tiers li[data-tier=native]"))
    check(d.find_element(By.ID, "health").text.startswith("ready"), d.find_element(By.ID, "health").text)
    # A key made in the console works until it is revoked there.
    row = d.find_element(By.XPATH, f"//table[@id='tenants']//tr[td[1]='{TENANT}']")
    row.find_element(By.CSS_SELECTOR, "button[data-action=keys]").click()
    d.find_element(By.ID, "key-create").click()
    WebDriverWait(d, 20).until(lambda d: "wk_" in d.find_element(By.ID, "new-key").text)
    new_key = d.find_element(By.ID, "new-key").text.split(": ", 1)[1]
    key_id = d.find_element(By.ID, "new-key").get_attribute("data-key-id")
    check(api("/v1/usage", new_key)[0] == 200, "the new key works")
    d.find_element(By.CSS_SELECTOR, f"#keys tr[data-id='{key_id}'] button[data-action=revoke]").click()
    WebDriverWait(d, 20).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, f"#keys tr[data-id='{key_id}'] button[data-action=revoke]"))
    check(api("/v1/usage", new_key)[0] == 401, "the revoked key is refused")

    check(api("/v1/usage")[0] == 200, "the tenant's key works before")
    row = d.find_element(By.XPATH, f"//table[@id='tenants']//tr[td[1]='{TENANT}']")
    row.find_element(By.CSS_SELECTOR, "button[data-action=disable]").click()
    WebDriverWait(d, 20).until(
        lambda d: "disabled" in d.find_element(By.XPATH, f"//table[@id='tenants']//tr[td[1]='{TENANT}']").text)
    status, body, _ = api("/v1/usage")
    check(status == 403, f"a disabled tenant's key is refused: {status} {body}")
    # A tenant key cannot open the operator's view.
    d.find_element(By.ID, "signout").click()
    check(api("/v1/tenants", KEY)[0] in (401, 403), "a tenant key lists no tenants")


def main():
    passed, failed = 0, {}
    d = browser()
    try:
        for name, fn in [
            ("the console is served under a strict policy", the_console_is_served_under_a_strict_policy),
            ("control: the report's script runs in a page of its own",
             lambda: the_reports_script_runs_outside_the_console(d)),
            ("tenant: sign in, upload, review, report", lambda: tenant_flow(d)),
            ("operator: tenants, tiers, health, keys, disable", lambda: operator_flow(d)),
        ]:
            try:
                fn()
                passed += 1
                print(f"ok   {name}", flush=True)
            except Exception as e:
                failed[name] = f"{type(e).__name__}: {e}"
                print(f"FAIL {name}: {e}", flush=True)
                traceback.print_exc()
                try:
                    print(d.page_source[:4000])
                except Exception:
                    pass
    finally:
        d.quit()
    print(json.dumps({"passed": passed, "failed": failed}))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
