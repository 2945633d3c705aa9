"""The console's CSV import: the preview writes nothing, the confirmation imports exactly what
the preview said, and a hostile file is refused with a clear error and nothing written."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from digest.readers import optin, roster
from digest.store.models import Subscriber
from tests.web.console_client import signed_in_client

ODD = (
    "Email Address,First Name,OPTIN_TIME\n"
    "ann@example.org,Ann,2021-03-04 10:11:12\n"
    "Jörg@Bücher.de,Jörg,\n"
    "jo+news@example.org,Plus,\n"
    "o'brien@example.org,Apostrophe,\n"
    '"""quoted""@example.org",Quoted,\n'
    "ANN@EXAMPLE.org,Again,\n"
    "old@example.org,Old,\n"
    "=HYPERLINK(\"https://evil.example\"),Evil,\n"
    "not-an-address,<script>alert(1)</script>,\n"
).encode()
EXPECTED = {"ann@example.org", "Jörg@xn--bcher-kva.de", "jo+news@example.org",
            "o'brien@example.org"}


def _addresses(app) -> set[str]:
    with app.sessions() as s:
        return set(s.scalars(select(Subscriber.email)))


def _count(app) -> int:
    with app.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Subscriber)) or 0)


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} on the page"
    return found.group(1)


def _upload(client, csrf, body: bytes, name: str = "list.csv"):
    return client.post("/admin/readers/import", data={"csrf_token": csrf},
                       files={"file": (name, body, "text/csv")})


def test_preview_writes_nothing_and_confirm_imports_exactly_it(app):
    roster.add(app, "old@example.org")
    client, csrf = signed_in_client(app)
    assert client.get("/admin/readers/import").status_code == 200
    preview = _upload(client, csrf, ODD)
    assert preview.status_code == 200, preview.text
    assert _addresses(app) == {"old@example.org"}  # nothing written yet
    html = preview.text
    assert re.search(r'data-testid="preview-import-count">4<', html)
    assert re.search(r'data-testid="preview-skip-count">5<', html)
    for reason in ("duplicate of line 2", "already known (active)",
                   "Quoting the part before the @-sign is not allowed",
                   "not a valid email address"):
        assert reason in html
    assert "<script>alert" not in html
    imported_rows = re.search(r'data-testid="preview-imported".*?</table>', html, re.S)
    assert imported_rows is not None
    for address in ("ann@example.org", "Jörg@xn--bcher-kva.de", "jo+news@example.org",
                    "o&#39;brien@example.org"):
        assert address in imported_rows.group(0)

    token, fingerprint = _hidden(html, "token"), _hidden(html, "fingerprint")
    done = client.post("/admin/readers/import/confirm",
                       data={"csrf_token": csrf, "token": token, "fingerprint": fingerprint})
    assert done.status_code == 200, done.text
    assert re.search(r'data-testid="imported-count">4<', done.text)
    assert _addresses(app) == EXPECTED | {"old@example.org"}
    again = client.post("/admin/readers/import/confirm",
                        data={"csrf_token": csrf, "token": token, "fingerprint": fingerprint})
    assert again.status_code == 410 and "choose the file again" in again.text
    assert _count(app) == 5


def test_confirm_imports_nothing_when_the_list_changed_meanwhile(app):
    client, csrf = signed_in_client(app)
    preview = _upload(client, csrf, ODD)
    optin.subscribe(app, "jo+news@example.org", ip=None, source="web")
    changed = client.post("/admin/readers/import/confirm", data={
        "csrf_token": csrf, "token": _hidden(preview.text, "token"),
        "fingerprint": _hidden(preview.text, "fingerprint")})
    assert changed.status_code == 409
    assert "changed since the preview" in changed.text
    assert re.search(r'data-testid="preview-import-count">4<', changed.text)  # the new plan
    assert _count(app) == 1
    done = client.post("/admin/readers/import/confirm", data={
        "csrf_token": csrf, "token": _hidden(changed.text, "token"),
        "fingerprint": _hidden(changed.text, "fingerprint")})
    assert re.search(r'data-testid="imported-count">4<', done.text)
    assert _count(app) == 5


@pytest.mark.parametrize("body, words", [
    (b"email\nann@example.org\n\xff\xfe\x00bad\n", "must be UTF-8"),
    ("email\nann@example.org\n".encode("utf-16"), "must be UTF-8"),
    (b"email,name\nann@example.org," + b"x" * 300_000 + b"\n", "not a readable CSV"),
    (b"=cmd|' /C calc'!A0,=1+1\n=2+2,x\n", "no email column"),
    (b"", "is empty"),
])
def test_hostile_files_get_a_clear_error_and_nothing_is_written(app, body, words):
    client, csrf = signed_in_client(app)
    answer = _upload(client, csrf, body, name="hostile.csv")
    assert answer.status_code == 400
    assert words in answer.text
    assert 'data-testid="import-error"' in answer.text
    assert 'name="token"' not in answer.text
    assert _count(app) == 0


def test_upload_needs_the_csrf_token_and_a_forged_token_finds_nothing(app):
    client, csrf = signed_in_client(app)
    forged = client.post("/admin/readers/import", files={"file": ("a.csv", ODD, "text/csv")})
    assert forged.status_code == 403
    guessed = client.post("/admin/readers/import/confirm", data={
        "csrf_token": csrf, "token": "../../" + "a" * 26, "fingerprint": "x"})
    assert guessed.status_code == 410
    assert _count(app) == 0
