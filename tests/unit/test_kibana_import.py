"""The Kibana import against a real HTTP server on 127.0.0.1 that answers as Kibana's import API does: the file
arrives as multipart form data with kbn-xsrf and basic auth, a 503 while Kibana starts is retried, refused objects
fail with their reasons, and a non-retryable answer fails at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from feedback.kibana_import import KibanaSettings, import_objects, main

DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "feedback-pipeline" / "files" / "kibana-dashboard.ndjson"


class FakeKibana:
    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                status, answer = owner.answers.pop(0)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def kibana(request: pytest.FixtureRequest) -> Iterator[FakeKibana]:
    server = FakeKibana(list(request.param))
    yield server
    server.server.shutdown()


def settings(url: str) -> KibanaSettings:
    return KibanaSettings(
        url=url, username="elastic", password="s3cret", ca_certs=None, verify_certs=True, timeout_s=30
    )


@pytest.mark.parametrize(
    "kibana",
    [[(503, {"message": "Kibana server is not ready yet"}), (200, {"success": True, "successCount": 15})]],
    indirect=True,
)
def test_the_dashboards_are_posted_as_kibana_wants_and_a_starting_kibana_is_waited_for(kibana: FakeKibana) -> None:
    result = import_objects(settings(kibana.url), DASHBOARD, sleep=lambda _s: None)
    assert result["successCount"] == 15
    assert len(kibana.requests) == 2
    sent = kibana.requests[-1]
    assert sent["path"] == "/api/saved_objects/_import?overwrite=true"
    assert sent["headers"]["kbn-xsrf"] == "true"
    assert sent["headers"]["authorization"] == "Basic ZWxhc3RpYzpzM2NyZXQ="
    assert sent["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="file"; filename="kibana-dashboard.ndjson"' in sent["body"]
    assert DASHBOARD.read_bytes() in sent["body"]


@pytest.mark.parametrize(
    "kibana",
    [
        [
            (
                200,
                {
                    "success": False,
                    "errors": [{"type": "visualization", "id": "v1", "error": {"type": "missing_references"}}],
                },
            ),
            (200, {}),
        ]
    ],
    indirect=True,
)
def test_refused_objects_fail_with_their_reasons(kibana: FakeKibana) -> None:
    with pytest.raises(RuntimeError, match=r"Kibana refused 1 saved objects: visualization v1: .*missing_references"):
        import_objects(settings(kibana.url), DASHBOARD, sleep=lambda _s: None)


@pytest.mark.parametrize("kibana", [[(401, {"message": "unauthorized"})]], indirect=True)
def test_a_wrong_password_fails_at_once(
    kibana: FakeKibana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIBANA_URL", kibana.url)
    monkeypatch.setenv("KIBANA_USERNAME", "elastic")
    monkeypatch.setenv("KIBANA_PASSWORD", "wrong")
    assert main([str(DASHBOARD)]) == 1
    assert "Kibana answered 401" in capsys.readouterr().err
    assert len(kibana.requests) == 1


def test_bad_settings_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KIBANA_URL", "kibana:5601")
    assert main([str(DASHBOARD)]) == 2
    assert "KIBANA_URL='kibana:5601' is not an http(s) URL" in capsys.readouterr().err
