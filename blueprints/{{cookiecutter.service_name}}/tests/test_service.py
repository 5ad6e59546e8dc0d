"""The service answers over HTTP: health, GraphQL, and refusal of abusive requests."""

import platform
from pathlib import Path

import httpx
import pytest


def test_healthz(service):
    response = httpx.get(f"{service.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_introspection_lists_the_api(client):
    result = client(
        "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"
    )
    queries = {
        field["name"] for field in result["data"]["__schema"]["queryType"]["fields"]
    }
    mutations = {
        field["name"] for field in result["data"]["__schema"]["mutationType"]["fields"]
    }
    assert {"me", "publicKey", "userPagination", "userByIds"} <= queries
    assert {"register", "login", "refreshToken", "resetMyPassword"} <= mutations


def test_graphiql_page(service):
    response = httpx.get(f"{service.url}/graphql")
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_root_path_is_the_graphql_endpoint(service):
    response = httpx.post(service.url + "/", json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


def _error_type(response: httpx.Response) -> str:
    return response.json()["errors"][0]["extensions"]["type"]


def test_malformed_json_is_a_bad_request(service):
    response = httpx.post(
        f"{service.url}/graphql",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert _error_type(response) == "BadRequestError"


def test_oversized_body_is_refused(service):
    body = {"query": "{ __typename }", "variables": {"padding": "x" * 200_000}}
    response = httpx.post(f"{service.url}/graphql", json=body)
    assert response.status_code == 413
    assert _error_type(response) == "RequestTooLargeError"


def test_deep_query_is_refused(client):
    # Introspection has its own bounds (deeper than data queries need; see api.py).
    deep = (
        "{ __schema { types { fields { type "
        + "{ ofType " * 18
        + "{ name }"
        + " }" * 18
        + " } } } }"
    )
    nested = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    for query in (deep, nested):
        result = client(query)
        assert result["errors"][0]["type"] == "QueryTooComplexError"
        assert "data" not in result


def test_many_aliases_are_refused(client):
    aliases = " ".join(f"a{i}: __typename" for i in range(100))
    result = client("{ " + aliases + " }")
    assert result["errors"][0]["type"] == "QueryTooComplexError"


def test_unknown_field_is_a_typed_validation_error(client):
    result = client("{ nope }")
    assert result["errors"][0]["type"] == "GraphQLValidationError"
    assert result["errors"][0]["extensions"]["type"] == "GraphQLValidationError"


def test_service_still_healthy_after_abuse(service, client):
    client("{ " + " ".join(f"a{i}: __typename" for i in range(100)) + " }")
    httpx.post(f"{service.url}/graphql", content=b"[[[[")
    assert httpx.get(f"{service.url}/healthz").status_code == 200


THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")

#: glibc asks for huge pages only where the kernel gives them on request.
glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc"
    or not THP.is_file()
    or "[madvise]" not in THP.read_text(),
    reason="needs glibc and transparent huge pages in madvise mode",
)


def huge_page_areas(service) -> int:
    """Memory areas of the service process that glibc asked the kernel to back
    with huge pages (madvise MADV_HUGEPAGE: "hg" in the area's VmFlags)."""
    smaps = Path(f"/proc/{service.process.pid}/smaps").read_text()
    return sum(
        "hg" in line.split()[1:]
        for line in smaps.splitlines()
        if line.startswith("VmFlags:")
    )


@glibc
def test_the_service_hashes_on_huge_pages(service):
    """argon2 reads its 64 MiB in random order: on 2 MiB pages a hash is
    20-30 % faster than on 4 KiB ones, and glibc gives them only when told at start."""
    assert huge_page_areas(service) > 0


@glibc
def test_the_operators_own_tunables_are_kept(make_service):
    assert huge_page_areas(make_service(GLIBC_TUNABLES="glibc.malloc.hugetlb=0")) == 0
    other = make_service(GLIBC_TUNABLES="glibc.malloc.arena_max=2")
    assert huge_page_areas(other) > 0
