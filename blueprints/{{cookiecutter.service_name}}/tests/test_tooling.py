"""The usual tools work on the first try: GraphQL tooling reads the schema,
GraphiQL's files are served by the service, `.env.example` and the Makefile
say how to configure and run it, and links follow the address it serves on.
"""

import base64
import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Service, service_env
from graphql import build_client_schema, get_introspection_query
from helpers import registered
from test_mail import link_in, mail_to

from {{ cookiecutter.package }}.explorer import ASSETS, STATIC
from {{ cookiecutter.package }}.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

#: What graphql-core, GraphiQL and code generators send: 15 levels deep.
STANDARD_INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Starts services with their own settings; `public_url=None` leaves
    AUTH_PUBLIC_URL unset, `dotenv` is written to the service's `.env`."""
    started: list[Service] = []

    def start(public_url: str | None = "", dotenv: str = "", **env: str) -> Service:
        folder = tmp_path / f"service{len(started)}"
        folder.mkdir()
        running = Service(folder, {**service_env(folder), **env})
        if public_url is None:
            del running.env["AUTH_PUBLIC_URL"]
        if dotenv:
            (folder / ".env").write_text(dotenv)
        started.append(running)
        running.start()
        return running

    yield start
    for running in started:
        running.stop()


# Introspection.


def test_the_standard_introspection_query_runs_under_the_default_limits(client):
    result = client(STANDARD_INTROSPECTION)
    assert "errors" not in result, result["errors"]
    schema = build_client_schema(result["data"])
    assert "UserPublicInfo" in schema.type_map
    assert "login" in schema.mutation_type.fields


def test_data_queries_keep_their_depth_limit_and_introspection_has_its_own(start):
    client = start(AUTH_MAX_QUERY_DEPTH="2").client()
    assert "errors" not in client(STANDARD_INTROSPECTION)
    result = client("{ userPagination { pageInfo { currentPage } } }")
    assert result["errors"][0]["type"] == "QueryTooComplexError"
    assert "3 levels deep; the limit is 2" in result["errors"][0]["message"]
    # An introspection query that multiplies its answer by nesting lists.
    nested = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    result = client(nested)
    assert result["errors"][0]["type"] == "QueryTooComplexError"
    assert "nests 4 lists" in result["errors"][0]["message"]


def test_fragments_spread_over_and_over_are_measured_once(client):
    """40 fragments, each spreading the next twice: 2**40 paths to walk one by one,
    a few hundred bytes to measure fragment by fragment."""
    spreads = [
        "fragment F%d on Query { ...F%d ...F%d }" % (i, i + 1, i + 1) for i in range(40)
    ]
    query = " ".join(["{ ...F0 }", *spreads, "fragment F40 on Query { __typename }"])
    assert client(query) == {"data": {"__typename": "Query"}}


# GraphiQL's files.


def test_graphiql_files_are_served_as_pinned_and_hidden_with_graphiql(service, start):
    page = httpx.get(f"{service.url}/graphql")
    assert page.status_code == 200
    for name, integrity in ASSETS.items():
        assert f'"graphiql/{name}" integrity="{integrity}"' in page.text
        response = httpx.get(f"{service.url}/graphiql/{name}")
        assert response.status_code == 200
        assert response.content == (STATIC / name).read_bytes()
        digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert (
            integrity == f"sha384-{digest}"
        ), f"{name}: update its hash in explorer.py"
        assert response.headers["content-type"].startswith(
            "text/css" if name.endswith(".css") else "text/javascript"
        )
    assert httpx.get(f"{service.url}/graphiql/LICENSES.txt").status_code == 404
    assert httpx.get(f"{service.url}/graphiql/..%2Fsettings.py").status_code == 404
    service = start(AUTH_GRAPHIQL="false")
    assert httpx.get(f"{service.url}/graphql").status_code == 404
    assert httpx.get(f"{service.url}/graphiql/graphiql.min.js").status_code == 404


# Configuration and running.


def test_env_example_lists_every_setting():
    """Every setting, by its variable's name; that each shows its default is
    authgen's test (a default you change in settings.py is yours to copy here)."""
    text = (ROOT / ".env.example").read_text()
    listed = re.findall(r"^# (AUTH_[A-Z0-9_]+)=", text, re.MULTILINE)
    expected = [f"AUTH_{name.upper()}" for name in Settings.model_fields]
    missing = [f"# {name}=" for name in expected if name not in listed]
    assert not missing, "add to .env.example, with the default:\n" + "\n".join(missing)
    assert sorted(listed) == sorted(expected), "listed twice or not a setting"


def test_links_follow_the_address_served_unless_the_public_url_is_set(start, smtp):
    mail = {
        "AUTH_SMTP_HOST": "127.0.0.1",
        "AUTH_SMTP_PORT": str(smtp.port),
        "AUTH_SMTP_TLS": "none",
    }
    service = start(public_url=None, **mail)
    fields = registered(service.client())
    assert link_in(
        mail_to(smtp, fields["email"]), "/user/email/confirmation"
    ).startswith(f"{service.url}/")
    # AUTH_PUBLIC_URL in .env is the user's choice: `serve` keeps it.
    service = start(
        public_url=None, dotenv="AUTH_PUBLIC_URL=http://auth.example.org\n", **mail
    )
    fields = registered(service.client())
    link = link_in(mail_to(smtp, fields["email"]), "/user/email/confirmation")
    assert link.startswith("http://auth.example.org/user/email/confirmation?token=")


@pytest.fixture
def makefile(tmp_path: Path) -> Path:
    """The Makefile and pyproject.toml in a folder whose virtualenv is installed."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    (tmp_path / ".venv" / ".installed").touch()
    return tmp_path


def dry_run(folder: Path, *arguments: str) -> str:
    """The commands `make` would run."""
    return subprocess.run(
        ["make", "-n", *arguments],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_run_takes_host_and_port_and_installs_only_when_dependencies_change(
    makefile,
):
    assert "serve --host 127.0.0.1 --port 5000" in dry_run(makefile, "run")
    assert "serve --host 0.0.0.0 --port 8123" in dry_run(
        makefile, "run", "HOST=0.0.0.0", "PORT=8123"
    )
    assert "pip install" not in dry_run(makefile, "install")
    pyproject = makefile / "pyproject.toml"
    stamp = (makefile / ".venv" / ".installed").stat().st_mtime_ns
    subprocess.run(
        ["touch", "-d", "@" + str(stamp // 1_000_000_000 + 5), str(pyproject)],
        check=True,
    )
    assert "pip install" in dry_run(makefile, "install")
