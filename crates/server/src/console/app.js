// Warden's web console: a tenant's reviews, files, sandboxes, usage and
// audit; an operator's tenants, keys, tiers and health. Plain ES modules,
// no build step; every call is the public /v1 API with the bearer token
// the user signed in with, kept in this tab's session storage only.
"use strict";

const KEY = "warden.console.token";
const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem(KEY);

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, opts = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined && !(body instanceof Blob)) headers["content-type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : body instanceof Blob ? body : JSON.stringify(body),
    signal: opts.signal,
  });
  if (!resp.ok) {
    let code = `http_${resp.status}`, message = "";
    try {
      const e = (await resp.json()).error;
      code = e.code;
      message = e.message;
    } catch { /* not the API's error shape */ }
    throw new ApiError(resp.status, code, message);
  }
  if (opts.raw) return resp;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

// Builds an element; children are nodes or text (never parsed as HTML).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ""));
  return e;
}

function rows(table, items, cells, onClick) {
  const tbody = $(`${table} tbody`);
  tbody.replaceChildren(
    ...items.map((it) => {
      const tr = el("tr", onClick ? { class: "clickable", "data-id": it.id, onclick: () => onClick(it) } : { "data-id": it.id });
      for (const c of cells(it)) tr.append(el("td", {}, c));
      return tr;
    }),
  );
}

const size = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);

// --- Sign in ------------------------------------------------------------

async function signIn(t) {
  token = t;
  // The admin token lists tenants; a tenant key reads its own usage.
  try {
    await api("GET", "/v1/tenants?limit=1");
    sessionStorage.setItem(KEY, t);
    return showOperator();
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
  }
  await api("GET", "/v1/usage");
  sessionStorage.setItem(KEY, t);
  return showTenant();
}

function signOut() {
  sessionStorage.removeItem(KEY);
  token = null;
  location.reload();
}

// --- Tenant -------------------------------------------------------------

let following = null;

async function showTenant() {
  $("#signin").hidden = true;
  $("#tenant").hidden = false;
  $("#signout").hidden = false;
  $("#who").textContent = "tenant";
  document.body.dataset.view = "tenant";
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => tab(b.dataset.tab));
  await tab("reviews");
}

async function tab(name) {
  for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== `tab-${name}`;
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.tab === name);
  await { reviews: loadReviews, files: loadFiles, sandboxes: loadSandboxes, usage: loadUsage, audit: loadAudit }[name]();
}

async function loadReviews() {
  const [reviews, files] = await Promise.all([api("GET", "/v1/reviews?limit=50"), api("GET", "/v1/files?limit=200")]);
  rows("#reviews", reviews.items, (r) => [r.id, r.status, r.created_at, r.exit_code ?? ""], (r) => openReview(r.id));
  $("#submit-files").replaceChildren(...files.items.map((f) => el("option", { value: f.id }, f.name)));
}

async function submitReview(ev) {
  ev.preventDefault();
  const files = [...$("#submit-files").selectedOptions].map((o) => o.value);
  try {
    const r = await api("POST", "/v1/reviews", { files, image: $("#submit-image").value, shell: $("#submit-command").value });
    $("#submit-status").textContent = `submitted ${r.id}`;
    await loadReviews();
    await openReview(r.id);
  } catch (e) {
    $("#submit-status").textContent = e.message;
  }
}

async function openReview(id) {
  following?.abort();
  following = new AbortController();
  const signal = following.signal;
  $("#review-detail").hidden = false;
  $("#review-id").textContent = id;
  $("#review-log").textContent = "";
  $("#review-outputs").replaceChildren();
  $("#report").hidden = true;
  let r = await api("GET", `/v1/reviews/${encodeURIComponent(id)}`);
  $("#review-status").textContent = r.status;
  // The log, live until the job ends.
  try {
    const resp = await api("GET", `/v1/reviews/${encodeURIComponent(id)}/logs?follow=true`, undefined, { raw: true, signal });
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      $("#review-log").textContent += dec.decode(value, { stream: true });
    }
  } catch (e) {
    if (signal.aborted) return;
    $("#review-log").textContent += `\n[${e.message}]`;
  }
  while (!["succeeded", "failed", "cancelled", "timed_out"].includes(r.status)) {
    await new Promise((res) => setTimeout(res, 500));
    if (signal.aborted) return;
    r = await api("GET", `/v1/reviews/${encodeURIComponent(id)}`);
  }
  $("#review-status").textContent = r.status;
  $("#review-status").dataset.status = r.status;
  const outs = await api("GET", `/v1/reviews/${encodeURIComponent(id)}/outputs`);
  $("#review-outputs").replaceChildren(
    ...outs.items.map((o) =>
      el("li", {},
        el("button", { "data-path": o.path, onclick: () => openOutput(id, o.path) }, o.path), ` ${size(o.size)}`)),
  );
  await loadReviews();
}

async function openOutput(id, path) {
  const url = `/v1/reviews/${encodeURIComponent(id)}/outputs/${path.split("/").map(encodeURIComponent).join("/")}`;
  const resp = await api("GET", url, undefined, { raw: true });
  const blob = await resp.blob();
  if (/\.html?$/i.test(path)) {
    // Tenant-made HTML: in a frame with an opaque origin and no scripts
    // (sandbox=""), under this page's policy too (script-src 'self').
    const frame = $("#report");
    frame.setAttribute("sandbox", "");
    frame.srcdoc = await blob.text();
    frame.hidden = false;
    frame.dataset.path = path;
  } else {
    const a = el("a", { href: URL.createObjectURL(blob), download: path.split("/").pop() });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  }
}

async function loadFiles() {
  const files = await api("GET", "/v1/files?limit=200");
  rows("#files", files.items, (f) => [f.name, size(f.size), f.content_type, f.id]);
}

// XMLHttpRequest, not fetch: it reports upload progress.
function upload(file) {
  const bar = el("progress", { max: file.size || 1, value: 0 });
  const status = el("span", {}, "");
  const li = el("li", { "data-name": file.name }, `${file.name} `, bar, " ", status);
  $("#uploads").append(li);
  return new Promise((resolve) => {
    const x = new XMLHttpRequest();
    x.open("POST", `/v1/files?name=${encodeURIComponent(file.name)}`);
    x.setRequestHeader("authorization", `Bearer ${token}`);
    x.setRequestHeader("content-type", "application/octet-stream");
    x.upload.addEventListener("progress", (e) => (bar.value = e.loaded));
    x.addEventListener("load", () => {
      if (x.status === 201) {
        bar.value = bar.max;
        status.textContent = "uploaded";
        li.dataset.state = "done";
      } else {
        let msg = x.statusText;
        try { msg = JSON.parse(x.responseText).error.message; } catch { /* keep the status text */ }
        status.textContent = `refused: ${msg}`;
        li.dataset.state = "refused";
      }
      resolve();
    });
    x.addEventListener("error", () => { status.textContent = "failed"; li.dataset.state = "failed"; resolve(); });
    x.send(file);
  });
}

async function uploadAll(files) {
  for (const f of files) await upload(f);
  await loadFiles();
}

async function loadSandboxes() {
  const sbs = await api("GET", "/v1/sandboxes?limit=100");
  rows("#sandboxes", sbs.items, (s) => [
    s.id, s.state, s.image, s.isolation, s.expires_at,
    s.state === "running" ? el("button", { onclick: async () => { await api("DELETE", `/v1/sandboxes/${s.id}`); await loadSandboxes(); } }, "Destroy") : "",
  ]);
}

async function loadUsage() {
  const day = 86_400_000;
  const end = Math.ceil(Date.now() / day) * day;
  const days = await Promise.all(
    [...Array(14).keys()].map(async (i) => {
      const from = new Date(end - (14 - i) * day), to = new Date(end - (13 - i) * day);
      const u = await api("GET", `/v1/usage?from=${from.toISOString()}&to=${to.toISOString()}`);
      return { label: from.toISOString().slice(5, 10), cpu: u.cpu_seconds, n: u.sandboxes };
    }),
  );
  const svg = $("#usage-chart");
  const max = Math.max(1e-9, ...days.map((d) => d.cpu));
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren(
    ...days.flatMap((d, i) => {
      const h = Math.round((d.cpu / max) * 180);
      const bar = document.createElementNS(ns, "rect");
      for (const [k, v] of Object.entries({ x: i * 50 + 5, y: 190 - h, width: 40, height: h, fill: "#3b6ea8" })) bar.setAttribute(k, v);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${d.label}: ${d.cpu.toFixed(2)} CPU s, ${d.n} sandboxes`;
      bar.append(title);
      const label = document.createElementNS(ns, "text");
      for (const [k, v] of Object.entries({ x: i * 50 + 5, y: 210, "font-size": 10 })) label.setAttribute(k, v);
      label.textContent = d.label;
      return [bar, label];
    }),
  );
  const total = await api("GET", "/v1/usage");
  $("#usage-total").textContent = `All time: ${total.sandboxes} sandboxes, ${total.cpu_seconds.toFixed(2)} CPU s, storage ${size(total.storage_bytes)}`;
}

async function loadAudit() {
  const entries = [];
  let after = 0;
  for (;;) {
    const page = await api("GET", `/v1/audit?after=${after}&limit=1000`);
    entries.push(...page.items);
    if (!page.next_cursor || page.items.length === 0) break;
    after = page.next_cursor;
  }
  rows("#audit", entries.reverse().slice(0, 500), (e) => [e.seq, e.at, e.actor, e.action, e.target, e.outcome]);
}

// --- Operator -------------------------------------------------------------

async function showOperator() {
  $("#signin").hidden = true;
  $("#operator").hidden = false;
  $("#signout").hidden = false;
  $("#who").textContent = "operator";
  document.body.dataset.view = "operator";
  const ready = await fetch("/readyz");
  $("#health").textContent = `${ready.ok ? "ready" : "not ready"}: ${(await ready.json()).status ?? ""}`;
  await loadTenants();
}

async function loadTenants() {
  const all = [];
  let cursor = "";
  for (;;) {
    const page = await api("GET", `/v1/tenants?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    all.push(...page.items);
    if (!page.next_cursor || page.items.length === 0) break;
    cursor = page.next_cursor;
  }
  rows("#tenants", all, (t) => [
    t.name, t.id, t.disabled ? "disabled" : "active", t.quotas.max_sandboxes, size(t.quotas.max_memory_bytes), size(t.quotas.max_storage_bytes),
    el("span", {},
      el("button", { "data-action": t.disabled ? "enable" : "disable", onclick: async () => { await api("POST", `/v1/tenants/${t.id}/${t.disabled ? "enable" : "disable"}`); await loadTenants(); } }, t.disabled ? "Enable" : "Disable"),
      " ",
      el("button", { "data-action": "keys", onclick: () => loadKeys(t) }, "Keys")),
  ]);
  const tiers = await api("GET", "/v1/isolation");
  $("#tiers").replaceChildren(
    ...tiers.map((t) => el("li", { "data-tier": t.name }, `${t.name}: ${t.available ? "available" : "unavailable"} (${t.detail})`)),
  );
}

async function loadKeys(t) {
  $("#tenant-keys").hidden = false;
  $("#keys-of").textContent = t.name;
  $("#new-key").textContent = "";
  $("#key-create").onclick = async () => {
    const k = await api("POST", `/v1/tenants/${t.id}/keys`, { name: "console" });
    await loadKeys(t);
    $("#new-key").textContent = `New key (shown once): ${k.key}`;
    $("#new-key").dataset.keyId = k.id;
  };
  const keys = await api("GET", `/v1/tenants/${t.id}/keys`);
  rows("#keys", keys.items, (k) => [
    k.id, k.name, k.created_at,
    k.revoked_at ?? el("button", { "data-action": "revoke", onclick: async () => { await api("DELETE", `/v1/tenants/${t.id}/keys/${k.id}`); await loadKeys(t); } }, "Revoke"),
  ]);
}

// --- Start ------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#signin-error").textContent = "";
    try {
      await signIn($("#token").value.trim());
    } catch (e) {
      token = null;
      $("#signin-error").textContent = e.status === 401 ? "That key or token is not valid." : e.message;
    }
  });
  $("#signout").addEventListener("click", signOut);
  $("#submit-form").addEventListener("submit", submitReview);
  $("#file-input").addEventListener("change", (ev) => uploadAll([...ev.target.files]));
  const dz = $("#dropzone");
  dz.addEventListener("dragover", (ev) => { ev.preventDefault(); dz.classList.add("over"); });
  dz.addEventListener("dragleave", () => dz.classList.remove("over"));
  dz.addEventListener("drop", (ev) => { ev.preventDefault(); dz.classList.remove("over"); uploadAll([...ev.dataTransfer.files]); });
  if (token) {
    try {
      await signIn(token);
    } catch {
      sessionStorage.removeItem(KEY);
      token = null;
    }
  }
});
