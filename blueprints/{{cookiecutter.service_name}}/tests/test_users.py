"""The public user queries over HTTP: filters, operators, sorts, pages, and privacy.

Users are written straight into the service's database (a second store
opened on it), so the data has every kind of value, nulls included.
"""

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from sample import sample_user

from {{ cookiecutter.package }}.models import FIELDS, PUBLIC_FIELDS
from {{ cookiecutter.package }}.store import new_id, open_store

#: The module runs on each (see conftest.py): the embedded default and a server database.
DATABASES = ["sqlite", "postgresql"]
{% raw %}

SELECTION = " ".join(PUBLIC_FIELDS)
PUBLIC = [name for name, field in FIELDS.items() if field.public]
SORTABLE = [name for name in PUBLIC if FIELDS[name].indexed]
UNIQUE_PUBLIC = [name for name in PUBLIC if FIELDS[name].unique]
#: Everything UserPublicInfo must not have: private and internal fields.
HIDDEN = ["email", "password", "password_hash", "created_at"] + [
    n for n, f in FIELDS.items() if not f.public
]


def each(names: list[str], what: str) -> list[Any]:
    return names or [
        pytest.param(
            None, marks=pytest.mark.skip(reason=f"the spec has no {what} field")
        )
    ]


def wire(value: Any) -> Any:
    """A stored value as GraphQL returns it."""
    if isinstance(value, list):
        return [wire(item) for item in value]
    if isinstance(value, dt.datetime):
        return (
            value.astimezone(dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def public(user: dict[str, Any]) -> dict[str, Any]:
    return {name: wire(user[name]) for name in PUBLIC_FIELDS}


def same(found: dict[str, Any]) -> dict[str, Any]:
    """A returned user with datetimes reduced to milliseconds, as every store keeps them."""
    return {
        name: (
            wire(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
            if name in FIELDS
            and FIELDS[name].type == "datetime"
            and isinstance(value, str)
            else value
        )
        for name, value in found.items()
    }


@pytest.fixture(scope="module")
def users(service) -> list[dict[str, Any]]:
    """30 users; every fifth has no optional field set."""
    people = []
    for i in range(30):
        user = sample_user(1000 + i)
        if i % 5 == 4:
            user.update(
                {name: None for name, field in FIELDS.items() if not field.required}
            )
        people.append(user)

    async def insert() -> None:
        store = open_store(service.env["AUTH_DATABASE_URL"])
        await store.open()
        try:
            for user in people:
                await store.insert_user(user)
        finally:
            await store.close()

    asyncio.run(insert())
    return people


def ids(users: list[dict[str, Any]]) -> list[str]:
    return [user["_id"] for user in users]


def many(
    client, filter: dict | None = None, sort: str | None = None, **arguments: Any
) -> list[dict[str, Any]]:
    query = f"""query($filter: FilterFindManyUserPublicInfoInput, $sort: SortFindManyUserPublicInfoInput,
        $skip: Int, $limit: Int) {{
      userMany(filter: $filter, sort: $sort, skip: $skip, limit: $limit) {{ {SELECTION} }}
    }}"""
    result = client(query, {"filter": filter, "sort": sort, **arguments})
    assert "errors" not in result, result
    return result["data"]["userMany"]


def error_type(result: dict[str, Any]) -> str:
    return result["errors"][0]["extensions"]["type"]


def test_user_by_id(client, users):
    user = users[0]
    result = client(
        f"query($id: MongoID!) {{ userById(_id: $id) {{ {SELECTION} }} }}",
        {"id": user["_id"]},
    )
    assert same(result["data"]["userById"]) == public(user)
    for missing in (new_id(), "not-an-id", "", user["_id"].upper()):
        result = client(
            "query($id: MongoID!) { userById(_id: $id) { _id } }", {"id": missing}
        )
        assert result == {"data": {"userById": None}}


def test_user_by_ids(client, users):
    wanted = [users[3]["_id"], None, "bad", users[1]["_id"], new_id()]
    query = "query($ids: [MongoID]!, $sort: SortFindByIdsUserPublicInfoInput) { userByIds(_ids: $ids, sort: $sort) { _id } }"
    result = client(query, {"ids": wanted, "sort": "_ID_DESC"})
    assert [u["_id"] for u in result["data"]["userByIds"]] == sorted(
        [users[3]["_id"], users[1]["_id"]], reverse=True
    )
    assert client(query, {"ids": []}) == {"data": {"userByIds": []}}


def test_an_id_in_capitals_names_no_user_on_any_store(client, users):
    """Ids are given out in lowercase; MongoDB would read capitals as the same
    ObjectId and SQL as a string before every lowercase one, so no store does."""
    capitals = users[0]["_id"].upper()
    for op in ("gt", "gte", "lte", "lt"):
        assert many(client, {"_operators": {"_id": {op: capitals}}}) == [], op
    assert many(client, {"_id": capitals}) == []
    assert many(client, {"_operators": {"_id": {"in": [capitals]}}}) == []


@pytest.mark.parametrize("name", each(UNIQUE_PUBLIC, "unique public"))
def test_user_one_by_unique_field(client, users, name):
    user = users[7]
    query = f"query($filter: FilterFindOneUserPublicInfoInput) {{ userOne(filter: $filter) {{ {SELECTION} }} }}"
    result = client(query, {"filter": {name: wire(user[name])}})
    assert same(result["data"]["userOne"]) == public(user)


@pytest.mark.parametrize("name", ["_id", "email_verified", *PUBLIC])
def test_equality_on_every_public_field(client, users, name):
    value = users[2][name]
    expected = [user for user in users if user[name] == value]
    assert ids(many(client, {name: wire(value)})) == ids(expected)
    absent = [user for user in users if user[name] is None]
    assert ids(many(client, {name: None})) == ids(absent)


@pytest.mark.parametrize("name", ["_id", *SORTABLE])
def test_operators(client, users, name):
    pivot, other = users[12][name], users[20][name]
    present = [user for user in users if user[name] is not None]
    expected = {
        "gt": [u for u in present if u[name] > pivot],
        "gte": [u for u in present if u[name] >= pivot],
        "lt": [u for u in present if u[name] < pivot],
        "lte": [u for u in present if u[name] <= pivot],
        "ne": [u for u in users if u[name] != pivot],
        "in": [u for u in present if u[name] in (pivot, other)],
        "nin": [u for u in users if u[name] not in (pivot, other)],
    }
    for op, wanted in expected.items():
        operand = (
            [wire(pivot), wire(other), None] if op in ("in", "nin") else wire(pivot)
        )
        assert ids(many(client, {"_operators": {name: {op: operand}}})) == ids(
            wanted
        ), op
    assert many(client, {"_operators": {name: {"gt": None}}}) == []


def test_and_or(client, users):
    first, second = users[1], users[2]
    either = {"OR": [{"_id": first["_id"]}, {"_id": second["_id"]}]}
    assert ids(many(client, either)) == ids([first, second])
    both = {"AND": [{"_id": first["_id"]}, {"email_verified": first["email_verified"]}]}
    assert ids(many(client, both)) == ids([first])
    assert many(client, {"AND": [{"_id": first["_id"]}, {"_id": second["_id"]}]}) == []
    assert many(client, {"OR": []}) == []


@pytest.mark.parametrize("name", ["_id", *SORTABLE])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_sorts(client, users, name, direction):
    descending = direction == "DESC"
    # Nulls first when ascending, last when descending; ties broken by id, in the same direction.
    present = sorted(
        (u for u in users if u[name] is not None),
        key=lambda u: (u[name], u["_id"]),
        reverse=descending,
    )
    absent = sorted(
        (u for u in users if u[name] is None),
        key=lambda u: u["_id"],
        reverse=descending,
    )
    expected = present + absent if descending else absent + present
    found = many(client, sort=f"{name.upper()}_{direction}")
    assert [same(u) for u in found] == [public(u) for u in expected]


def test_count(client, users):
    assert client("{ userCount }") == {"data": {"userCount": len(users)}}
    verified = [u for u in users if u["email_verified"]]
    result = client(
        "query($f: FilterUserPublicInfoInput) { userCount(filter: $f) }",
        {"f": {"email_verified": True}},
    )
    assert result == {"data": {"userCount": len(verified)}}


PAGINATION = """query($page: Int, $perPage: Int) {
  userPagination(page: $page, perPage: $perPage) {
    count items { _id } pageInfo { currentPage perPage pageCount itemCount hasNextPage hasPreviousPage }
  }
}"""


def test_pagination(client, users):
    result = client(PAGINATION, {"page": 2, "perPage": 7})["data"]["userPagination"]
    assert result["count"] == len(users)
    assert [u["_id"] for u in result["items"]] == ids(users[7:14])
    assert result["pageInfo"] == {
        "currentPage": 2,
        "perPage": 7,
        "pageCount": 5,
        "itemCount": len(users),
        "hasNextPage": True,
        "hasPreviousPage": True,
    }
    past = client(PAGINATION, {"page": 99, "perPage": 7})["data"]["userPagination"]
    assert past["items"] == [] and past["pageInfo"]["hasNextPage"] is False


def test_page_sizes_are_capped(client, users):
    capped = client(PAGINATION, {"page": 1, "perPage": 2**31 - 1})["data"][
        "userPagination"
    ]
    assert capped["pageInfo"]["perPage"] == 100
    assert len(many(client, limit=2**31 - 1)) == len(users)
    assert many(client, skip=len(users)) == []


@pytest.mark.parametrize(
    "query, variables",
    [
        (PAGINATION, {"page": 0, "perPage": 5}),
        (PAGINATION, {"page": 1, "perPage": 0}),
        (PAGINATION, {"page": -3, "perPage": -1}),
        ("{ userMany(limit: 0) { _id } }", None),
        ("{ userMany(skip: -1) { _id } }", None),
        ("{ userOne(skip: -1) { _id } }", None),
        # Past AUTH_PUBLIC_RESULT_WINDOW (test_query_plans.py).
        ("{ userMany(skip: 2147483647) { _id } }", None),
    ],
)
def test_bad_sizes_are_typed_errors(client, users, query, variables):
    result = client(query, variables)
    assert error_type(result) == "BadRequestError"


@pytest.mark.parametrize(
    "query",
    [
        "{ userById(_id: 5) { _id } }",
        "{ userPagination(page: 99999999999) { count } }",
        "{ userMany(filter: {_operators: {_id: {gt: 12}}}) { _id } }",
    ],
)
def test_malformed_arguments_are_validation_errors(client, query):
    assert error_type(client(query)) == "GraphQLValidationError"


@pytest.mark.parametrize("name", HIDDEN)
def test_hidden_fields_cannot_be_read_filtered_or_sorted(client, users, name):
    attempts = [
        f"{{ userMany {{ _id {name} }} }}",
        f"{{ userById(_id: \"{users[0]['_id']}\") {{ {name} }} }}",
        f"{{ userOne(filter: {{ {name}: null }}) {{ _id }} }}",
        f"{{ userCount(filter: {{ {name}: null }}) }}",
        f"{{ userMany(filter: {{ _operators: {{ {name}: {{ ne: null }} }} }}) {{ _id }} }}",
        f"{{ userMany(sort: {name.upper()}_ASC) {{ _id }} }}",
        f"{{ userPagination(sort: {name.upper()}_DESC) {{ count }} }}",
    ]
    for query in attempts:
        result = client(query)
        assert error_type(result) == "GraphQLValidationError", query
        assert result.get("data") is None


def _texts(users: list[dict], names: list[str]) -> set[str]:
    values = [wire(user[name]) for user in users for name in names if name in user]
    items = [
        item
        for value in values
        for item in (value if isinstance(value, list) else [value])
    ]
    return {item for item in items if isinstance(item, str)}


def test_no_public_query_returns_a_private_value(client, users):
    # A value that a public field also holds (two equal sample dates) proves nothing.
    private = _texts(users, HIDDEN) - _texts(users, list(PUBLIC_FIELDS))
    responses = [
        client(f"{{ userMany(limit: 100) {{ {SELECTION} }} }}"),
        client(f"{{ userPagination(perPage: 100) {{ items {{ {SELECTION} }} }} }}"),
        client(f"{{ userOne {{ {SELECTION} }} }}"),
    ]
    text = json.dumps(responses)
    assert [value for value in private if value in text] == []
{%- endraw %}
