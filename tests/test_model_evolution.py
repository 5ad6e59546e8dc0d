"""Model changes on a started service with data: renames, type changes, defaults.

One service lives through several models on one SQLite database; the start
either brings the stored users to the new model (values kept, converted,
indexes following) or stops before serving with the field, the count, an
example and the fix. The store-level tests of the emitted suite run the same
sync on PostgreSQL and MongoDB.
"""

from pathlib import Path

import pytest

from conftest import authgen
from test_spec import field_problems
from test_model_change import REGISTER, gql, inbox, running, serve_once  # noqa: F401

BASE = """\
service:
  name: shop-auth
fields:
  username:
    type: string
    required: true
    unique: true
    public: true
  {country}:
    type: string
    unique: true
    public: true{renamed}
  score:
    type: {score}
    public: true
  level:
    type: {level}
    public: true
  rank:
    type: {rank}
    public: true
  tags:
    type: string
    public: true{tags}
  code:
    type: {code}
    public: true
  nickname:
    type: string
    public: true
    default: newcomer
"""

BEFORE = dict(
    country="countryCode",
    renamed="",
    score="int",
    level="string",
    rank="string",
    tags="",
    code="int",
)
#: Every change the stored data can take, with the rename declared.
AFTER = dict(
    BEFORE,
    country="country",
    renamed="\n    renamed_from: countryCode",
    score="float",
    rank="enum\n    values: [gold, silver]",
    tags="\n    list: true",
    code="string",
)
USERS = "{ userMany(sort: USERNAME_ASC) { username country score level rank tags code nickname } }"


def generate(tmp_path: Path, out: Path, **options: str) -> None:
    spec = tmp_path / "user.yaml"
    spec.write_text(BASE.format(**options))
    result = authgen("generate", str(spec), "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def refused(out: Path, data: Path) -> str:
    """The start stops before serving; what it says."""
    start = serve_once(out, data)
    assert start.returncode == 1, start.stderr
    assert "Traceback" not in start.stderr, start.stderr[-1500:]
    return start.stderr


def test_model_changes_keep_or_refuse_the_stored_data(tmp_path: Path, inbox) -> None:
    sink, smtp_port = inbox
    out = tmp_path / "shop-auth"
    data = tmp_path / "data"
    data.mkdir()
    generate(tmp_path, out, **BEFORE)
    with running(out, data, smtp_port) as client:
        for name, country, score, level, rank, code in (
            ("alice", "FR", 7, "seven", "gold", 12),
            ("bob", "DE", 8, "3", "silver", 13),
        ):
            fields = {
                "email": f"{name}@example.com",
                "password": "correct horse 1",
                "username": name,
                "countryCode": country,
                "score": score,
                "level": level,
                "rank": rank,
                "tags": "x",
                "code": code,
            }
            assert gql(client, REGISTER, f=fields) == {"data": {"register": True}}
        sink.link_for("alice@example.com")
        login = gql(
            client,
            'mutation { login(email: "alice@example.com", password: "correct horse 1") { token } }',
        )
        token = login["data"]["login"]["token"]
        cleared = gql(
            client,
            "mutation { updateMe(fields: {nickname: null}) { token } }",
            token,
        )
        assert "errors" not in cleared, cleared

    # A field gone with its data while one of the same type appears: not silently.
    generate(tmp_path, out, **dict(BEFORE, country="country"))
    stopped = refused(out, data)
    assert "'country'" in stopped and "'countryCode'" in stopped
    assert "renamed_from: countryCode" in stopped

    # A type the stored values cannot take: the field, the count, an example, the fix.
    generate(tmp_path, out, **dict(AFTER, level="int"))
    stopped = refused(out, data)
    assert "field 'level' is now int" in stopped
    assert "1 stored user(s)" in stopped and "'seven'" in stopped
    assert "user.yaml" in stopped
    generate(tmp_path, out, **dict(AFTER, rank="enum\n    values: [gold]"))
    stopped = refused(out, data)
    assert "field 'rank' is now enum (gold)" in stopped
    assert "1 stored user(s)" in stopped and "'silver'" in stopped

    # Every change the data can take is applied in place, and nothing of the
    # refused starts was kept half-done.
    generate(tmp_path, out, **AFTER)
    expected = [
        {
            "username": "alice",
            "country": "FR",
            "score": 7.0,
            "level": "seven",
            "rank": "gold",
            "tags": ["x"],
            "code": "12",
            "nickname": None,  # cleared before, not filled again
        },
        {
            "username": "bob",
            "country": "DE",
            "score": 8.0,
            "level": "3",
            "rank": "silver",
            "tags": ["x"],
            "code": "13",
            "nickname": "newcomer",
        },
    ]
    with running(out, data, smtp_port) as client:
        assert gql(client, USERS) == {"data": {"userMany": expected}}
        # The unique index followed the rename.
        fields = {
            "email": "carol@example.com",
            "password": "correct horse 1",
            "username": "carol",
            "country": "FR",
        }
        duplicate = gql(client, REGISTER, f=fields)
        assert duplicate["errors"][0]["type"] == "CountryAlreadyExistsError"

    # Once applied, the declaration can go: the next start changes nothing.
    generate(tmp_path, out, **dict(AFTER, renamed=""))
    with running(out, data, smtp_port) as client:
        assert gql(client, USERS) == {"data": {"userMany": expected}}


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        ("email", "'email' is a built-in field, never a field of user.yaml"),
        ("2fa", "'2fa' is not a valid field name"),
        ("age", "'age' is a field of user.yaml; name a field that no longer exists"),
    ],
)
def test_renamed_from_names_a_field_that_could_have_existed(
    old: str, expected: str
) -> None:
    fields = (
        f"  age: {{type: int}}\n  years:\n    type: int\n    renamed_from: '{old}'\n"
    )
    assert field_problems(fields) == [
        f"user.yaml:7:19: fields.years.renamed_from: {expected}"
        + (" (renamed_from moves a removed field's data)" if old == "age" else "")
    ]
