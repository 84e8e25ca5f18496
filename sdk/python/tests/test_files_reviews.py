import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from warden_sdk import Gone, UnsupportedMediaType, WebhookSignatureError, verify_webhook


def test_streaming_upload_with_progress_and_download(w, tmp_path):
    src = tmp_path / "big.txt"
    src.write_bytes(b"0123456789abcdef" * (128 << 10))  # 2 MiB of text
    seen = []
    f = w.files.upload("big.txt", src, on_progress=lambda sent, total: seen.append((sent, total)))
    assert f.size == 2 << 20 and f.name == "big.txt"
    assert len(seen) >= 8 and seen[-1] == (2 << 20, 2 << 20)
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)
    got = []
    dest = w.files.download(f.id, tmp_path / "back.txt", on_progress=lambda n, t: got.append(n))
    assert dest.read_bytes() == src.read_bytes() and got[-1] == 2 << 20
    assert any(x.id == f.id for x in w.files.list())
    assert w.files.get(f.id).sha256 == f.sha256
    w.files.delete(f.id)
    assert all(x.id != f.id for x in w.files.list())


def test_signed_upload_url_takes_the_bytes_without_the_key(w):
    u = w.files.upload_url("signed.txt", expires_in_secs=60)
    assert u.method == "PUT"
    r = httpx.put(u.url, content=b"through a signed url")
    assert r.status_code == 201, r.text
    f = w.files.get(r.json()["id"])
    assert w.files.read(f.id) == b"through a signed url"


def test_an_upload_of_a_refused_type_is_typed(w):
    with pytest.raises(UnsupportedMediaType) as e:
        w.files.upload("tool.exe", b"MZ\x90\x00" + b"\x00" * 60)
    assert e.value.code == "type_not_allowed"


def test_review_submit_follow_wait_and_outputs(w, tmp_path):
    f = w.files.upload("notes.txt", "alpha\nbeta\ngamma\n")
    key = f"sdk-review-{uuid.uuid4().hex}"
    job = w.reviews.submit(
        "for i in 1 2 3; do echo tick $i; sleep 0.3; done; "
        "mkdir -p /output/charts; wc -l < /input/notes.txt > /output/count.txt; "
        "echo '<svg/>' > /output/charts/a.svg",
        files=[f], labels={"suite": "sdk"}, idempotency_key=key,
    )
    again = w.reviews.submit("true", files=[f], idempotency_key=key)
    assert again.id == job.id, "a retried submit with the same key is the same job"
    followed = "".join(job.follow())
    assert followed.count("tick") == 3, followed
    info = job.wait(timeout=120)
    assert info.status == "succeeded" and info.exit_code == 0
    paths = sorted(o.path for o in job.outputs())
    assert "count.txt" in paths and "charts/a.svg" in paths and "manifest.json" in paths
    assert job.read_output("count.txt") == b"3\n"
    files = job.download_outputs(tmp_path / "out")
    assert (tmp_path / "out/charts/a.svg").read_text() == "<svg/>\n" and len(files) == len(paths)
    assert "tick 3" in job.logs()
    assert any(r.id == job.id for r in w.reviews.list(status="succeeded"))
    freed = job.delete_outputs()
    assert freed["outputs"] == len(paths)
    with pytest.raises(Gone):
        job.read_output("count.txt")


def test_cancel_a_running_review(w):
    job = w.reviews.submit("sleep 60")
    for _ in range(100):
        if job.refresh().status == "running":
            break
        time.sleep(0.1)
    assert job.info.status == "running"
    assert job.cancel().raw["cancel_requested"] is True
    info = job.wait(timeout=30)
    assert info.status == "cancelled", info


class _Hook(BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        _Hook.got.append((body, self.headers.get("x-warden-signature")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_webhook_signatures_verify(w):
    srv = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        job = w.reviews.submit("echo hi", webhook_url=f"http://127.0.0.1:{srv.server_port}/hook")
        job.wait(timeout=60)
        for _ in range(100):
            if _Hook.got:
                break
            time.sleep(0.1)
        body, sig = _Hook.got[0]
        secret = w.reviews.webhook_secret()
        event = verify_webhook(body, sig, secret)
        assert event["event"] == "review.finished" and event["review"]["id"] == job.id
        # Attacks: a changed body, another key, a replay after the tolerance.
        with pytest.raises(WebhookSignatureError):
            verify_webhook(body.replace(b"succeeded", b"failed"), sig, secret)
        with pytest.raises(WebhookSignatureError):
            verify_webhook(body, sig, "not-the-secret")
        t = int(sig.split(",")[0][2:])
        with pytest.raises(WebhookSignatureError):
            verify_webhook(body, sig, secret, now=t + 3600)
        with pytest.raises(WebhookSignatureError):
            verify_webhook(body, None, secret)
        assert json.loads(body)["review"]["status"] == "succeeded"
    finally:
        srv.shutdown()
