"""The regenerate cycle end to end: the user's edits and the user's data survive.

Generate v1, run it, register and verify users, edit a generated file and
hooks.py, change the model, regenerate, and check that the edits are kept,
the service's own tests pass, and the old users still log in and see the new
model.
"""

import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from email import message_from_bytes, policy
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from aiosmtpd.controller import Controller

from conftest import authgen, run_service_tests

SPEC_V1 = """\
service:
  name: shop-auth
fields:
  username:
    type: string
    required: true
    unique: true
    public: true
    min_length: 3
  age:
    type: int
    description: Age in years.
  nickname:
    type: string
  legacy:
    type: int
    public: true
"""

# v2: a new field with a default, age made public and indexed, legacy removed
# (its values stay stored; of another type than plan, so not a rename), a
# custom validator on nickname.
SPEC_V2 = """\
service:
  name: shop-auth
fields:
  username:
    type: string
    required: true
    unique: true
    public: true
    min_length: 3
  age:
    type: int
    description: Age in years.
    public: true
    index: true
  nickname:
    type: string
    validator: hooks:check_nickname
  plan:
    type: string
    public: true
    default: free
"""

HOOK = """

def check_nickname(value):
    if value.lower() == "admin":
        raise ValueError("this nickname is reserved")
"""

#: The emitted test modules whose cases are built from the model's fields.
MODEL_TESTS = (
    "test_users.py",
    "test_validation.py",
    "test_store.py",
    "test_accounts.py",
    "test_admin.py",
)

VERIFIES = "The public key that verifies the auth tokens, in PEM."
REGISTER = "mutation($f: UserRegisterInput!) { register(fields: $f) }"
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { _id } } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(
            message_from_bytes(envelope.content, policy=policy.default)
        )
        return "250 OK"

    def link_for(self, recipient: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if recipient in message["To"]:
                    text = message.get_body(("plain",)).get_content()
                    return re.search(r"https?://\S+", text).group(0)
            time.sleep(0.1)
        raise AssertionError(f"no mail for {recipient}")


@contextmanager
def running(out: Path, data: Path, smtp_port: int) -> Iterator[httpx.Client]:
    """The generated service as users run it, on the database in `data`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(out / "src"),
        "AUTH_DATABASE_URL": f"sqlite:///{data / 'shop.db'}",
        "AUTH_PUBLIC_URL": url,
        "AUTH_PRIVATE_KEY_FILE": str(data / "private.pem"),
        "AUTH_PUBLIC_KEY_FILE": str(data / "public.pem"),
        "AUTH_SMTP_HOST": "127.0.0.1",
        "AUTH_SMTP_PORT": str(smtp_port),
        "AUTH_SMTP_TLS": "none",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_COST": "8192",
        "AUTH_ARGON2_PARALLELISM": "1",
    }
    log = open(data / "service.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "shop_auth", "serve", "--port", str(port)],
        cwd=data,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=url, timeout=30)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (data / "service.log").read_text()
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
        log.close()


def gql(
    client: httpx.Client, query: str, token: str | None = None, **variables
) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    ).json()


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    sink = Inbox()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def test_edits_and_data_survive_a_model_change(tmp_path: Path, inbox) -> None:
    sink, smtp_port = inbox
    spec = tmp_path / "user.yaml"
    out = tmp_path / "shop-auth"
    data = tmp_path / "data"
    data.mkdir()

    spec.write_text(SPEC_V1)
    assert authgen("generate", str(spec), "-o", str(out), cwd=tmp_path).returncode == 0

    with running(out, data, smtp_port) as client:
        for name, age in (("alice", 30), ("bob", 41)):
            fields = {
                "email": f"{name}@example.com",
                "password": "correct horse 1",
                "username": name,
                "age": age,
                "legacy": 1,
            }
            assert gql(client, REGISTER, f=fields) == {"data": {"register": True}}
            confirmation = httpx.get(sink.link_for(f"{name}@example.com"))
            assert confirmation.status_code == 200

    # The user's own edits: a generated file and hooks.py.
    settings_file = out / "src/shop_auth/settings.py"
    settings_text = settings_file.read_text()
    assert 'mail_from: str = "no-reply@localhost"' in settings_text
    settings_file.write_text(
        settings_text.replace("no-reply@localhost", "accounts@shop.example")
    )
    schema_file = out / "src/shop_auth/schema.graphql"
    schema_file.write_text(
        schema_file.read_text().replace(VERIFIES, "Our signing key, in PEM.")
    )
    hooks_file = out / "src/shop_auth/hooks.py"
    hooks_file.write_text(hooks_file.read_text() + HOOK)
    hooks_before = hooks_file.read_bytes()

    spec.write_text(SPEC_V2)
    result = authgen("generate", str(spec), "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "merged: src/shop_auth/schema.graphql" in result.stdout
    assert "accounts@shop.example" in settings_file.read_text()
    assert hooks_file.read_bytes() == hooks_before
    assert "plan: String" in (out / "src/shop_auth/schema.graphql").read_text()

    # The service's own tests of what the model shapes pass on the new model
    # (the whole suite runs on the example specs in test_emitted.py).
    tests = run_service_tests(out, *MODEL_TESTS)
    assert tests.returncode == 0, tests.stdout[-3000:]

    with running(out, data, smtp_port) as client:
        login = gql(client, LOGIN, e="alice@example.com", p="correct horse 1")
        token = login["data"]["login"]["token"]
        me = gql(client, "{ me { username plan email_verified } }", token)
        assert me == {
            "data": {
                "me": {"username": "alice", "plan": "free", "email_verified": True}
            }
        }
        # age is public and filterable now; legacy is gone from the API.
        older = gql(
            client,
            "{ userMany(filter: {_operators: {age: {gt: 35}}}) { username age } }",
        )
        assert older == {"data": {"userMany": [{"username": "bob", "age": 41}]}}
        gone = gql(client, "{ userMany { legacy } }")
        assert gone["errors"][0]["type"] == "GraphQLValidationError"
        # The edited schema description and setting are in force.
        described = gql(
            client, '{ __type(name: "Query") { fields { name description } } }'
        )
        descriptions = {
            f["name"]: f["description"] for f in described["data"]["__type"]["fields"]
        }
        assert descriptions["publicKey"] == "Our signing key, in PEM."
        fields = {
            "email": "dave@example.com",
            "password": "correct horse 1",
            "username": "dave",
        }
        assert gql(client, REGISTER, f=fields) == {"data": {"register": True}}
        sink.link_for("dave@example.com")
        assert [m["From"] for m in sink.messages if "dave" in m["To"]] == [
            "accounts@shop.example"
        ]
        # The custom validator in hooks.py is called.
        fields = {
            "email": "carol@example.com",
            "password": "correct horse 1",
            "username": "carol",
            "nickname": "admin",
        }
        refused = gql(client, REGISTER, f=fields)
        assert refused["errors"][0]["type"] == "UserValidationError"
        assert "nickname" in refused["errors"][0]["message"]
        assert "reserved" in refused["errors"][0]["message"]

    # Regenerating an unchanged spec changes nothing.
    stamps = {
        path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file()
    }
    again = authgen("generate", str(spec), "-o", str(out), cwd=tmp_path)
    assert again.returncode == 0
    assert {
        path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file()
    } == stamps
    assert (
        authgen(
            "generate", str(spec), "-o", str(out), "--check", cwd=tmp_path
        ).returncode
        == 0
    )


def test_conflicting_edit_is_marked_listed_and_fails(tmp_path: Path) -> None:
    spec = tmp_path / "user.yaml"
    out = tmp_path / "shop-auth"
    spec.write_text(SPEC_V1)
    assert authgen("generate", str(spec), "-o", str(out), cwd=tmp_path).returncode == 0

    schema = out / "src/shop_auth/schema.graphql"
    schema.write_text(
        schema.read_text().replace(
            '"""Age in years."""', '"""Age in whole years."""', 1
        )
    )
    spec.write_text(
        SPEC_V1.replace("description: Age in years.", "description: Age, in years.")
    )

    preview = authgen("generate", str(spec), "-o", str(out), "--check", cwd=tmp_path)
    assert preview.returncode == 1
    assert "src/shop_auth/schema.graphql" in preview.stdout

    result = authgen("generate", str(spec), "-o", str(out), cwd=tmp_path)
    assert result.returncode == 1
    assert "conflict: src/shop_auth/schema.graphql" in result.stdout
    assert str(schema) in result.stderr
    text = schema.read_text()
    assert "<<<<<<< " in text and "=======" in text and ">>>>>>> " in text
    assert '"""Age in whole years."""' in text and '"""Age, in years."""' in text


def test_a_model_the_data_cannot_take_stops_the_start(tmp_path: Path, inbox) -> None:
    _, smtp_port = inbox
    spec = tmp_path / "user.yaml"
    out = tmp_path / "shop-auth"
    data = tmp_path / "data"
    data.mkdir()
    spec.write_text(SPEC_V1)
    assert authgen("generate", str(spec), "-o", str(out), cwd=tmp_path).returncode == 0
    with running(out, data, smtp_port) as client:
        for name in ("dora", "erin"):
            fields = {
                "email": f"{name}@example.com",
                "password": "correct horse 1",
                "username": name,
                "nickname": "same",
            }
            assert gql(client, REGISTER, f=fields) == {"data": {"register": True}}

    spec.write_text(
        SPEC_V1.replace(
            "  nickname:\n    type: string\n",
            "  nickname:\n    type: string\n    unique: true\n",
        )
    )
    assert authgen("generate", str(spec), "-o", str(out), cwd=tmp_path).returncode == 0
    env = {
        **os.environ,
        "PYTHONPATH": str(out / "src"),
        "AUTH_DATABASE_URL": f"sqlite:///{data / 'shop.db'}",
    }
    start = subprocess.run(
        [sys.executable, "-m", "shop_auth", "serve", "--port", str(free_port())],
        cwd=data,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert start.returncode == 1
    assert "nickname" in start.stderr and "unique" in start.stderr
    assert "Traceback" not in start.stderr


def serve_once(out: Path, data: Path) -> subprocess.CompletedProcess[str]:
    """`serve` on the database in `data`, for a start that is expected to stop."""
    env = {
        **os.environ,
        "PYTHONPATH": str(out / "src"),
        "AUTH_DATABASE_URL": f"sqlite:///{data / 'shop.db'}",
    }
    return subprocess.run(
        [sys.executable, "-m", "shop_auth", "serve", "--port", str(free_port())],
        cwd=data,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unresolved_conflicts_fail_generate_check_and_serve_until_resolved(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "user.yaml"
    out = tmp_path / "shop-auth"
    data = tmp_path / "data"
    data.mkdir()
    spec.write_text(SPEC_V1)
    assert authgen("generate", str(spec), "-o", str(out), cwd=tmp_path).returncode == 0
    models = out / "src/shop_auth/models.py"
    text = models.read_text()
    age = text.index('"age": FieldInfo(')
    edited = text[:age] + text[age:].replace(
        "message=None,", 'message="Whole years only.",', 1
    )
    models.write_text(edited)
    spec.write_text(
        SPEC_V1.replace(
            "description: Age in years.",
            "description: Age in years.\n    message: Age must be a whole number.",
        )
    )
    first = authgen("generate", str(spec), "-o", str(out), cwd=tmp_path)
    assert first.returncode == 1
    assert "conflict: src/shop_auth/models.py" in first.stdout
    assert "<<<<<<< yours" in models.read_text()

    # Nothing changed since: still listed, still failing, in both modes.
    again = authgen("generate", str(spec), "-o", str(out), cwd=tmp_path)
    assert again.returncode == 1
    assert str(models) in again.stderr
    check = authgen("generate", str(spec), "-o", str(out), "--check", cwd=tmp_path)
    assert check.returncode == 1
    assert str(models) in check.stderr
    assert "up to date" not in check.stdout

    start = serve_once(out, data)
    assert start.returncode == 1
    assert "Traceback" not in start.stderr and "SyntaxError" not in start.stderr
    assert "conflict markers" in start.stderr and str(models) in start.stderr

    # Resolved: every check passes again.
    models.write_text(
        edited.replace(
            'message="Whole years only."', "message='Age must be a whole number.'"
        )
    )
    assert authgen("generate", str(spec), "-o", str(out), cwd=tmp_path).returncode == 0
    fresh = authgen("generate", str(spec), "-o", str(out), "--check", cwd=tmp_path)
    assert (fresh.returncode, fresh.stderr) == (0, "")


OLD_HOOKS = '''"""Your own code, as an older authgen wrote it: none of today's event hooks."""
'''


def test_a_hooks_py_without_the_hooks_the_service_calls_still_works(
    tmp_path: Path, inbox
) -> None:
    """As a hooks.py from an authgen that had none of the hooks a newer
    blueprint calls: each is skipped, and register, confirm, login and delete work."""
    sink, smtp_port = inbox
    spec = tmp_path / "user.yaml"
    out = tmp_path / "shop-auth"
    data = tmp_path / "data"
    data.mkdir()
    spec.write_text(SPEC_V1)
    assert authgen("generate", str(spec), "-o", str(out), cwd=tmp_path).returncode == 0
    (out / "src/shop_auth/hooks.py").write_text(OLD_HOOKS)

    with running(out, data, smtp_port) as client:
        fields = {
            "email": "fay@example.com",
            "password": "correct horse 1",
            "username": "fay",
        }
        assert gql(client, REGISTER, f=fields) == {"data": {"register": True}}
        assert httpx.get(sink.link_for("fay@example.com")).status_code == 200
        login = gql(client, LOGIN, e="fay@example.com", p="correct horse 1")
        token = login["data"]["login"]["token"]
        assert gql(client, "{ me { username email_verified } }", token) == {
            "data": {"me": {"username": "fay", "email_verified": True}}
        }
        deleted = gql(
            client,
            "mutation($p: String!) { deleteMe(password: $p) }",
            token,
            p="correct horse 1",
        )
        assert deleted == {"data": {"deleteMe": True}}
