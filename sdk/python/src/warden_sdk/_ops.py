"""Every non-streaming API call, once: a generator that yields its request
and returns the typed result (see ``_core``)."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from ._core import Op, Req, as_bytes, check, file_ids, seg
from ._models import (
    AuditEntry,
    Entry,
    ExecResult,
    File,
    Limits,
    Output,
    ReviewInfo,
    SandboxInfo,
    Secret,
    UploadUrl,
    Usage,
)


def _json(req: Req) -> Op:
    resp = check((yield req))
    return resp.json()


# Uploads -----------------------------------------------------------------


def file_get(file_id: str) -> Op:
    return File.from_json((yield from _json(Req("GET", f"/v1/files/{seg(file_id)}"))))


def file_delete(file_id: str) -> Op:
    yield from _json(Req("DELETE", f"/v1/files/{seg(file_id)}"))


def file_page(cursor: Optional[str], limit: int) -> Op:
    params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
    page = yield from _json(Req("GET", "/v1/files", params=params))
    return [File.from_json(f) for f in page["items"]], page.get("next_cursor")


def file_content(file_id: str) -> Op:
    resp = check((yield Req("GET", f"/v1/files/{seg(file_id)}/content")))
    return resp.content


def upload_url(name: str, expires_in_secs: Optional[int]) -> Op:
    body: dict[str, Any] = {"name": name}
    if expires_in_secs is not None:
        body["expires_in_secs"] = expires_in_secs
    return UploadUrl.from_json((yield from _json(Req("POST", "/v1/files/upload-url", json=body))))


# Sandboxes ---------------------------------------------------------------


def sandbox_create(
    *,
    image: Optional[str],
    files: Iterable[Any],
    env: Optional[dict],
    limits: Optional[Limits],
    isolation: Optional[str],
    network: Optional[dict],
    secrets: Optional[list],
    labels: Optional[dict],
    timeout: Optional[int],
    workdir: Optional[str],
    extra: dict,
) -> Op:
    body: dict[str, Any] = {"files": file_ids(files)}
    for k, v in [
        ("image", image),
        ("env", env),
        ("limits", limits.to_json() if isinstance(limits, Limits) else limits),
        ("isolation", isolation),
        ("network", network),
        ("secrets", secrets),
        ("labels", labels),
        ("timeout_secs", timeout),
        ("workdir", workdir),
    ]:
        if v is not None:
            body[k] = v
    body.update(extra)
    return SandboxInfo.from_json((yield from _json(Req("POST", "/v1/sandboxes", json=body))))


def sandbox_get(sid: str) -> Op:
    return SandboxInfo.from_json((yield from _json(Req("GET", f"/v1/sandboxes/{seg(sid)}"))))


def sandbox_page(state: Optional[str], labels: Optional[dict], cursor: Optional[str], limit: int) -> Op:
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    if labels:
        params["label"] = [f"{k}={v}" for k, v in labels.items()]
    if cursor:
        params["cursor"] = cursor
    page = yield from _json(Req("GET", "/v1/sandboxes", params=params))
    return [SandboxInfo.from_json(s) for s in page["items"]], page.get("next_cursor")


def sandbox_delete(sid: str) -> Op:
    yield from _json(Req("DELETE", f"/v1/sandboxes/{seg(sid)}"))


def sandbox_timeout(sid: str, seconds: int) -> Op:
    req = Req("POST", f"/v1/sandboxes/{seg(sid)}/timeout", json={"timeout_secs": seconds}, idempotent=True)
    return SandboxInfo.from_json((yield from _json(req)))


def exec_body(command: Any, cwd: Optional[str], env: Optional[dict], timeout: Optional[float], stdin: Optional[Any]) -> dict:
    body: dict[str, Any] = {}
    if isinstance(command, str):
        body["shell"] = command
    else:
        body["command"] = list(command)
    if cwd is not None:
        body["cwd"] = cwd
    if env:
        body["env"] = env
    if timeout is not None:
        body["timeout_secs"] = timeout
    if stdin is not None:
        body["stdin"] = stdin if isinstance(stdin, str) else bytes(stdin).decode()
    return body


def exec_json(sid: str, body: dict) -> Op:
    return ExecResult.from_json((yield from _json(Req("POST", f"/v1/sandboxes/{seg(sid)}/exec", json=body))))


def spawn(sid: str, body: dict, stdin_open: bool) -> Op:
    body = {**body, "background": True, **({"stdin_open": True} if stdin_open else {})}
    out = yield from _json(Req("POST", f"/v1/sandboxes/{seg(sid)}/exec", json=body))
    return int(out["pid"])


def proc_stdin(sid: str, pid: int, data: Any, close: bool) -> Op:
    req = Req(
        "POST",
        f"/v1/sandboxes/{seg(sid)}/processes/{pid}/stdin",
        params={"close": "true"} if close else {},
        content=as_bytes(data),
        headers={"content-type": "application/octet-stream"},
    )
    yield from _json(req)


def proc_signal(sid: str, pid: int, signal: Any) -> Op:
    yield from _json(Req("POST", f"/v1/sandboxes/{seg(sid)}/processes/{pid}/signal", json={"signal": signal}))


def proc_wait(sid: str, pid: int) -> Op:
    req = Req("POST", f"/v1/sandboxes/{seg(sid)}/processes/{pid}/wait", idempotent=True)
    out = yield from _json(req)
    return ExecResult.from_json({**out, "stdout": "", "stderr": "", "pid": pid})


def proc_list(sid: str) -> Op:
    return (yield from _json(Req("GET", f"/v1/sandboxes/{seg(sid)}/processes")))["items"]


def _fpath(sid: str, what: str = "") -> str:
    return f"/v1/sandboxes/{seg(sid)}/files{what}"


def fs_read(sid: str, path: str) -> Op:
    return check((yield Req("GET", _fpath(sid), params={"path": path}))).content


def fs_write(sid: str, path: str, data: Any, mode: Optional[int]) -> Op:
    params = {"path": path, **({"mode": format(mode, "o")} if mode is not None else {})}
    req = Req("PUT", _fpath(sid), params=params, content=as_bytes(data),
              headers={"content-type": "application/octet-stream"})
    return Entry.from_json({"name": path.rsplit("/", 1)[-1], **(yield from _json(req))})


def fs_list(sid: str, path: str) -> Op:
    out = yield from _json(Req("GET", _fpath(sid, "/list"), params={"path": path}))
    return [Entry.from_json(e) for e in out["items"]]


def fs_stat(sid: str, path: str) -> Op:
    out = yield from _json(Req("GET", _fpath(sid, "/stat"), params={"path": path}))
    return Entry.from_json({"name": path.rsplit("/", 1)[-1], **out})


def fs_mkdir(sid: str, path: str) -> Op:
    yield from _json(Req("POST", _fpath(sid, "/mkdir"), params={"path": path}, idempotent=True))


def fs_remove(sid: str, path: str, recursive: bool) -> Op:
    params = {"path": path, **({"recursive": "true"} if recursive else {})}
    yield from _json(Req("DELETE", _fpath(sid), params=params))


# Reviews -----------------------------------------------------------------


def review_submit(body: dict) -> Op:
    req = Req("POST", "/v1/reviews", json=body, idempotent=bool(body.get("idempotency_key")))
    return ReviewInfo.from_json((yield from _json(req)))


def review_get(rid: str) -> Op:
    return ReviewInfo.from_json((yield from _json(Req("GET", f"/v1/reviews/{seg(rid)}"))))


def review_page(status: Optional[str], cursor: Optional[str], limit: int) -> Op:
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    if cursor:
        params["cursor"] = cursor
    page = yield from _json(Req("GET", "/v1/reviews", params=params))
    return [ReviewInfo.from_json(r) for r in page["items"]], page.get("next_cursor")


def review_cancel(rid: str) -> Op:
    req = Req("POST", f"/v1/reviews/{seg(rid)}/cancel", idempotent=True)
    return ReviewInfo.from_json((yield from _json(req)))


def review_outputs(rid: str) -> Op:
    out = yield from _json(Req("GET", f"/v1/reviews/{seg(rid)}/outputs"))
    return [Output.from_json(o) for o in out["items"]]


def output_path(rid: str, path: str) -> str:
    return f"/v1/reviews/{seg(rid)}/outputs/" + "/".join(seg(p) for p in path.strip("/").split("/"))


def review_output(rid: str, path: str) -> Op:
    return check((yield Req("GET", output_path(rid, path)))).content


def review_log(rid: str, stream: str) -> Op:
    resp = check((yield Req("GET", f"/v1/reviews/{seg(rid)}/logs", params={"stream": stream})))
    return resp.content.decode("utf-8", "replace")


def review_delete_outputs(rid: str) -> Op:
    return (yield from _json(Req("DELETE", f"/v1/reviews/{seg(rid)}/outputs")))


def webhook_secret() -> Op:
    return (yield from _json(Req("GET", "/v1/webhooks/secret")))["secret"]


# Secrets, egress, audit, usage -------------------------------------------


def secret_set(name: str, value: str, replace: bool) -> Op:
    req = Req("POST", "/v1/secrets", params={"replace": "true"} if replace else {},
              json={"name": name, "value": value}, idempotent=replace)
    return Secret.from_json((yield from _json(req)))


def secret_list() -> Op:
    return [Secret.from_json(s) for s in (yield from _json(Req("GET", "/v1/secrets")))["items"]]


def secret_delete(name: str) -> Op:
    yield from _json(Req("DELETE", f"/v1/secrets/{seg(name)}"))


def egress_page(kind: str, xid: str, after: Optional[int], limit: int) -> Op:
    params: dict[str, Any] = {"limit": limit, **({"after": after} if after is not None else {})}
    page = yield from _json(Req("GET", f"/v1/{kind}/{seg(xid)}/egress", params=params))
    return page["items"], page.get("next_after")


def audit_page(after: Optional[int], limit: int) -> Op:
    params: dict[str, Any] = {"limit": limit, **({"after": after} if after is not None else {})}
    page = yield from _json(Req("GET", "/v1/audit", params=params))
    cursor = page.get("next_cursor")
    return [AuditEntry.from_json(e) for e in page["items"]], (int(cursor) if cursor else None)


def usage(since: Optional[str], until: Optional[str]) -> Op:
    params = {k: v for k, v in (("from", since), ("to", until)) if v}
    return Usage.from_json((yield from _json(Req("GET", "/v1/usage", params=params))))


def file_upload(name: str, body: Any, headers: dict) -> Op:
    req = Req("POST", "/v1/files", params={"name": name}, content=body, headers=headers)
    return File.from_json((yield from _json(req)))


def review_body(command: Any, files: Iterable[Any], options: dict) -> dict:
    body: dict[str, Any] = {"files": file_ids(files)}
    body.update({k: v for k, v in options.items() if v is not None})
    if isinstance(body.get("limits"), Limits):
        body["limits"] = body["limits"].to_json()
    if isinstance(command, str):
        body["shell"] = command
    else:
        body["command"] = list(command)
    return body
