"""Retries: only calls safe to repeat are sent again, against a real HTTP
server on loopback that fails the first tries."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from warden_sdk import Unavailable, Warden


class _Flaky(BaseHTTPRequestHandler):
    fails = 0
    seen = []

    def _answer(self):
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        _Flaky.seen.append((self.command, self.path))
        if _Flaky.fails > 0:
            _Flaky.fails -= 1
            body = json.dumps({"error": {"code": "unavailable", "message": "try later"}}).encode()
            self.send_response(503)
        else:
            body = json.dumps({"id": "file_x", "name": "n", "size": 1, "sha256": "", "content_type": "",
                               "created_at": "", "items": [], "next_cursor": None}).encode()
            self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("retry-after", "0")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *a):
        pass


@pytest.fixture
def flaky():
    srv = HTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Flaky.seen.clear()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


def test_reads_are_retried_through_a_transient_503(flaky):
    _Flaky.fails = 2
    with Warden(flaky, "wk_x.y", max_retries=2) as w:
        assert w.files.get("file_x").id == "file_x"
    assert len(_Flaky.seen) == 3


def test_a_post_without_an_idempotency_key_is_sent_once(flaky):
    _Flaky.fails = 1
    with Warden(flaky, "wk_x.y", max_retries=3) as w:
        with pytest.raises(Unavailable):
            w.files.upload("a.txt", b"x")
    assert _Flaky.seen == [("POST", "/v1/files?name=a.txt")]


def test_a_submit_with_an_idempotency_key_is_retried(flaky):
    _Flaky.fails = 1
    with Warden(flaky, "wk_x.y", max_retries=2) as w:
        assert w.reviews.submit("true", idempotency_key="k1").id == "file_x"
    assert _Flaky.seen == [("POST", "/v1/reviews"), ("POST", "/v1/reviews")]


def test_a_refusal_that_will_not_change_is_not_retried(flaky):
    from warden_sdk._core import Req, should_retry

    assert not should_retry(Req("GET", "/v1/secrets"), 503, b'{"error":{"code":"secrets_disabled"}}')
    assert should_retry(Req("GET", "/v1/secrets"), 503, b'{"error":{"code":"capacity"}}')


def test_an_unreachable_server_says_so():
    from warden_sdk import WardenConnectionError
    with Warden("http://127.0.0.1:9", "wk_x.y", max_retries=1) as w:
        with pytest.raises(WardenConnectionError):
            w.files.get("file_x")
