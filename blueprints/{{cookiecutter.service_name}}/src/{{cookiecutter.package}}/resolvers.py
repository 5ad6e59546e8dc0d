"""GraphQL -> service calls, nothing else: bound to schema.graphql by name."""

import datetime as dt
from typing import Any

from ariadne import MutationType, QueryType, ScalarType
from graphql import GraphQLResolveInfo

from .errors import NotImplementedYetError
from .store import is_valid_id
from .users import PublicUsers

query = QueryType()
mutation = MutationType()
date_scalar = ScalarType("Date")
mongo_id_scalar = ScalarType("MongoID")


@date_scalar.serializer
def serialize_date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@date_scalar.value_parser
def parse_date(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a Date is an ISO 8601 string")
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date") from None
    return value


@mongo_id_scalar.value_parser
def parse_mongo_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a MongoID is a string of 24 hexadecimal digits")
    return value


def _users(info: GraphQLResolveInfo) -> PublicUsers:
    context = info.context
    return PublicUsers(context.services.store, context.settings.max_page_size)


@query.field("userById")
async def resolve_user_by_id(_: Any, info: GraphQLResolveInfo, _id: str) -> Any:
    return await _users(info).by_id(_id)


@query.field("userByIds")
async def resolve_user_by_ids(
    _: Any, info: GraphQLResolveInfo, _ids: list, limit: int | None = None, sort: str | None = None
) -> Any:
    return await _users(info).by_ids(_ids, limit, sort)


@query.field("userOne")
async def resolve_user_one(
    _: Any, info: GraphQLResolveInfo, filter: dict | None = None, skip: int | None = None, sort: str | None = None
) -> Any:
    return await _users(info).one(filter, skip, sort)


@query.field("userMany")
async def resolve_user_many(
    _: Any,
    info: GraphQLResolveInfo,
    filter: dict | None = None,
    skip: int | None = None,
    limit: int | None = None,
    sort: str | None = None,
) -> Any:
    return await _users(info).many(filter, skip, limit, sort)


@query.field("userCount")
async def resolve_user_count(_: Any, info: GraphQLResolveInfo, filter: dict | None = None) -> Any:
    return await _users(info).count(filter)


@query.field("userPagination")
async def resolve_user_pagination(
    _: Any,
    info: GraphQLResolveInfo,
    filter: dict | None = None,
    page: int | None = None,
    perPage: int | None = None,
    sort: str | None = None,
) -> Any:
    return await _users(info).pagination(filter, page, perPage, sort)


# The account half of the API.


def _not_yet(*_: Any, **__: Any) -> Any:
    raise NotImplementedYetError()


for _name in ("me", "publicKey", "emailAvailable", "sendPasswordRecoveryEmail", "sendVerificationEmail"):
    query.set_field(_name, _not_yet)
for _name in ("register", "login", "refreshToken", "logout", "updateMe", "deleteMe", "resetMyPassword"):
    mutation.set_field(_name, _not_yet)

bindables = [query, mutation, date_scalar, mongo_id_scalar]
