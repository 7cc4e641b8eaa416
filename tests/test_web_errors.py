"""The web app's answers to a damaged state folder and to edits over the limits (issue 22).

A damaged decision log (`dedup.decisions.DecisionLogError`) is the operator's to repair, not the
client's mistake and not a crash: the Contact API answers 503 `{"error": ...}` and the review page
its error page with 503, each naming the file (the CLI prints the same line). An attribute over the
limits (`dedup.schema`) is refused on PATCH and saves nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contacts.web import create_app
from dedup.decisions import read_all
from dedup.layout import StateLayout
from dedup.service.apikeys import create_key
from tests.conftest import contact_of, copy_night, night_once, rec, write_jsonl
from tests.webauth import LOCAL, signed_in_client

NO_MATCHING = {"min_contacts_to_match": 10**9}
DAMAGE = b"not a database at all\n" * 100


def nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def ann_and_bo(exports: Path) -> None:
    write_jsonl(
        exports,
        "2026-11-01",
        "a.jsonl",
        [rec("a1", email="a@x.test", name="Ann A"), rec("b1", email="b@x.test", name="Bo B")],
    )


@pytest.fixture(scope="module")
def first_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ann and Bo's first night (no matching), run once for the module."""
    return night_once(tmp_path_factory.mktemp("ann-and-bo"), ann_and_bo, **NO_MATCHING)


@pytest.fixture
def published(first_night: Path, exports: Path, db: Path) -> Path:
    """This test's private copy of the first night's published file and state."""
    copy_night(first_night, exports, db)
    return db


@pytest.fixture
def api(published: Path) -> tuple[TestClient, dict[str, str]]:
    key, _ = create_key(StateLayout(published).api_keys_path, "write")
    return TestClient(create_app(published), base_url=LOCAL), {"Authorization": f"Bearer {key}"}


def damage(db: Path) -> None:
    StateLayout(db).decisions_path.write_bytes(DAMAGE)


def test_damaged_decision_log_is_a_503_on_every_api_call(published: Path, api) -> None:
    client, auth = api
    contact = contact_of(published)["a1"]
    damage(published)
    answers = [
        client.get("/v1/contacts", headers=auth),
        client.get(f"/v1/contacts/{contact}", headers=auth),
        client.patch(f"/v1/contacts/{contact}", headers=auth, json={"tags": ["vip"]}),
        client.post(
            "/v1/contacts/bulk",
            headers=auth,
            json={"action": "tag-add", "value": "vip", "contact_ids": [contact]},
        ),
        client.delete(f"/v1/contacts/{contact}", headers=auth),
    ]
    for answer in answers:
        assert answer.status_code == 503, (answer.request.method, answer.text)
        error = answer.json()["error"]
        assert "decision log" in error and "cannot be used" in error and "\n" not in error
    assert StateLayout(published).decisions_path.read_bytes() == DAMAGE  # nothing written


def test_damaged_decision_log_is_the_error_page_with_503(published: Path) -> None:
    client = signed_in_client(published)
    contact = contact_of(published)["a1"]
    damage(published)
    for path in ("/proposals", "/contacts", f"/contacts/{contact}"):
        answer = client.get(path)
        assert answer.status_code == 503, (path, answer.text[:300])
        assert answer.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in answer.text and "decision log" in answer.text


@pytest.mark.parametrize(
    ("attributes", "status"),
    [({"deep": nested(300)}, 400), ({"big": "x" * 9000}, 400), ({"k" * 101: 1}, 422)],
    ids=["nested-300", "value-9000-chars", "key-101-chars"],
)
def test_patch_over_the_attribute_limits_is_refused_and_saves_nothing(
    published: Path, api, attributes: dict, status: int
) -> None:
    """Depth and size are refused by `review.edit_contact` (400 with its line, like every refused
    edit, docs/api.md); a key name over 100 characters already by the request schema (422)."""
    client, auth = api
    contact = contact_of(published)["a1"]
    answer = client.patch(
        f"/v1/contacts/{contact}",
        headers=auth,
        json={"tags": ["ok"], "attributes": {"seat": 1, **attributes}},
    )
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert "nothing saved" in error if status == 400 else error.startswith("body.attributes")
    assert read_all(StateLayout(published).decisions_path).height == 0
    assert client.get(f"/v1/contacts/{contact}", headers=auth).json()["tags"] == []


def test_bulk_edit_over_the_limits_is_refused_and_saves_nothing(published: Path, api) -> None:
    client, auth = api
    contacts = sorted(contact_of(published).values())
    for value in ("x" * 101, "bad\u0000tag", "rtl\u202eflip"):
        answer = client.post(
            "/v1/contacts/bulk",
            headers=auth,
            json={"action": "tag-add", "value": value, "contact_ids": contacts},
        )
        assert answer.status_code == 400 and "\n" not in answer.json()["error"], answer.text
    assert read_all(StateLayout(published).decisions_path).height == 0
