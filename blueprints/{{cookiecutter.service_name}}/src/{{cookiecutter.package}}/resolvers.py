"""GraphQL -> service calls, nothing else: bound to schema.graphql by name."""

import datetime as dt
import json
from typing import Any

from ariadne import MutationType, QueryType, ScalarType
from graphql import GraphQLResolveInfo

from . import audit, recovery
from .accounts import Accounts
from .admin import Admin, AdminUsers, require_admin
from .mfa import Factors
from .models import admin_view, owner_view
from .passkeys import Passkeys
from .sessions import Sessions
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
    return PublicUsers(
        context.services.store,
        context.settings.max_page_size,
        context.settings.max_filter_conditions,
        context.settings.public_result_window,
    )


@query.field("userById")
async def resolve_user_by_id(_: Any, info: GraphQLResolveInfo, _id: str) -> Any:
    return await _users(info).by_id(_id)


@query.field("userByIds")
async def resolve_user_by_ids(
    _: Any,
    info: GraphQLResolveInfo,
    _ids: list,
    limit: int | None = None,
    sort: str | None = None,
) -> Any:
    return await _users(info).by_ids(_ids, limit, sort)


@query.field("userOne")
async def resolve_user_one(
    _: Any,
    info: GraphQLResolveInfo,
    filter: dict | None = None,
    skip: int | None = None,
    sort: str | None = None,
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
async def resolve_user_count(
    _: Any, info: GraphQLResolveInfo, filter: dict | None = None
) -> Any:
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


def _accounts(info: GraphQLResolveInfo) -> Accounts:
    return info.context.services.accounts


async def _current_user(info: GraphQLResolveInfo) -> dict[str, Any]:
    """The user of the request's Bearer token, as stored now."""
    return await _accounts(info).authenticate(info.context.bearer_token)


@query.field("me")
async def resolve_me(_: Any, info: GraphQLResolveInfo) -> Any:
    return owner_view(await _current_user(info))


@query.field("publicKey")
def resolve_public_key(_: Any, info: GraphQLResolveInfo) -> str:
    return info.context.services.keys.public_pem


@query.field("emailAvailable")
async def resolve_email_available(_: Any, info: GraphQLResolveInfo, email: str) -> bool:
    return await _accounts(info).email_available(email, info.context.client_address)


@mutation.field("register")
async def resolve_register(_: Any, info: GraphQLResolveInfo, fields: dict) -> bool:
    return await _accounts(info).register(fields, info.context.client_address)


@mutation.field("login")
async def resolve_login(
    _: Any, info: GraphQLResolveInfo, email: str, password: str
) -> Any:
    context = info.context
    return await _accounts(info).login(email, password, context.client_address, context)


@mutation.field("refreshToken")
async def resolve_refresh_token(_: Any, info: GraphQLResolveInfo) -> Any:
    return await _accounts(info).refresh(info.context)


@mutation.field("logout")
async def resolve_logout(_: Any, info: GraphQLResolveInfo) -> bool:
    return await _accounts(info).logout(info.context)


@mutation.field("updateMe")
async def resolve_update_me(
    _: Any, info: GraphQLResolveInfo, fields: dict, code: str | None = None
) -> Any:
    context = info.context
    user = await _current_user(info)
    if "email" in fields or "password" in fields:
        await _reauthenticate(info, user, code)
    return await _accounts(info).update_me(
        user, fields, context, context.client_address
    )


@mutation.field("deleteMe")
async def resolve_delete_me(
    _: Any, info: GraphQLResolveInfo, password: str, code: str | None = None
) -> bool:
    context = info.context
    user = await _current_user(info)
    await _reauthenticate(info, user, code)
    return await _accounts(info).delete_me(
        user, password, context, context.client_address
    )


@query.field("sendVerificationEmail")
async def resolve_send_verification_email(_: Any, info: GraphQLResolveInfo) -> bool:
    return await recovery.send_verification_email(
        info.context.services, info.context.bearer_token
    )


@query.field("sendPasswordRecoveryEmail")
async def resolve_send_password_recovery_email(
    _: Any, info: GraphQLResolveInfo, email: str
) -> bool:
    context = info.context
    return await recovery.send_password_recovery_email(
        context.services, context.bearer_token, email
    )


@mutation.field("resetMyPassword")
async def resolve_reset_my_password(
    _: Any, info: GraphQLResolveInfo, password: str, passwordRecoveryToken: str
) -> Any:
    return await recovery.reset_password(
        info.context.services, password, passwordRecoveryToken
    )


# Second factors (mfa.py).


def _factors(info: GraphQLResolveInfo) -> Factors:
    return info.context.services.factors


@query.field("hasSecondFactor")
async def resolve_has_second_factor(_: Any, info: GraphQLResolveInfo) -> bool:
    return await _factors(info).has_factor((await _current_user(info))["_id"])


async def _enrolling_user(
    info: GraphQLResolveInfo, challenge: str | None
) -> dict[str, Any]:
    """The logged-in user, or the user of an enrolment challenge (mfa=required)."""
    if challenge is None:
        return await _current_user(info)
    return await _factors(info).enrolling_user(challenge)


async def _reauthenticate(
    info: GraphQLResolveInfo, user: dict[str, Any], code: str | None
) -> None:
    """A fresh second factor: a TOTP or recovery code, or a passkey's assertion (JSON)."""
    address = info.context.client_address
    if code is not None and code.lstrip().startswith("{"):
        await _passkeys(info).reauthenticate(user, code, address)
    else:
        await _factors(info).reauthenticate(user, code, address)


@mutation.field("startTotpEnrolment")
async def resolve_start_totp_enrolment(
    _: Any, info: GraphQLResolveInfo, challenge: str | None = None
) -> Any:
    return await _factors(info).start_totp(await _enrolling_user(info, challenge))


@mutation.field("confirmTotpEnrolment")
async def resolve_confirm_totp_enrolment(
    _: Any, info: GraphQLResolveInfo, code: str, challenge: str | None = None
) -> list[str]:
    return await _factors(info).confirm_totp(
        await _enrolling_user(info, challenge), code, info.context.client_address
    )


@mutation.field("completeMfaEnrolment")
async def resolve_complete_mfa_enrolment(
    _: Any, info: GraphQLResolveInfo, challenge: str
) -> Any:
    return await _factors(info).complete_enrolment(challenge, info.context)


@mutation.field("regenerateRecoveryCodes")
async def resolve_regenerate_recovery_codes(
    _: Any, info: GraphQLResolveInfo, code: str
) -> list[str]:
    return await _factors(info).regenerate_recovery_codes(
        await _current_user(info), code, info.context.client_address
    )


@mutation.field("disableTotp")
async def resolve_disable_totp(
    _: Any, info: GraphQLResolveInfo, password: str, code: str
) -> bool:
    return await _factors(info).disable_totp(
        await _current_user(info), password, code, info.context.client_address
    )


@mutation.field("loginWithSecondFactor")
async def resolve_login_with_second_factor(
    _: Any, info: GraphQLResolveInfo, challenge: str, code: str
) -> Any:
    context = info.context
    return await _factors(info).login(challenge, code, context.client_address, context)


# Passkeys (passkeys.py).


def _passkeys(info: GraphQLResolveInfo) -> Passkeys:
    return info.context.services.passkeys


@query.field("myPasskeys")
async def resolve_my_passkeys(_: Any, info: GraphQLResolveInfo) -> Any:
    return await _passkeys(info).mine(await _current_user(info))


@mutation.field("passkeyRegistrationOptions")
async def resolve_passkey_registration_options(
    _: Any, info: GraphQLResolveInfo, challenge: str | None = None
) -> str:
    user = await _enrolling_user(info, challenge)
    return await _passkeys(info).registration_options(user)


@mutation.field("registerPasskey")
async def resolve_register_passkey(
    _: Any,
    info: GraphQLResolveInfo,
    password: str,
    credential: str,
    name: str | None = None,
    challenge: str | None = None,
) -> Any:
    return await _passkeys(info).register(
        await _enrolling_user(info, challenge),
        password,
        credential,
        name,
        info.context.client_address,
    )


@mutation.field("deletePasskey")
async def resolve_delete_passkey(
    _: Any, info: GraphQLResolveInfo, password: str, id: str
) -> bool:
    return await _passkeys(info).delete(
        await _current_user(info), password, id, info.context.client_address
    )


@mutation.field("passkeyReauthenticationOptions")
async def resolve_passkey_reauthentication_options(
    _: Any, info: GraphQLResolveInfo
) -> str:
    user = await _current_user(info)
    return await _passkeys(info).reauthentication_options(user)


@mutation.field("passkeyLoginOptions")
async def resolve_passkey_login_options(
    _: Any, info: GraphQLResolveInfo, challenge: str | None = None
) -> str:
    return await _passkeys(info).login_options(challenge, info.context.client_address)


@mutation.field("loginWithPasskey")
async def resolve_login_with_passkey(
    _: Any, info: GraphQLResolveInfo, credential: str, challenge: str | None = None
) -> Any:
    context = info.context
    return await _passkeys(info).login(
        credential, challenge, context.client_address, context
    )


# Sessions and the audit trail of the logged-in user (sessions.py, audit.py).


def _sessions(info: GraphQLResolveInfo) -> Sessions:
    return Sessions(info.context.services.store, _accounts(info).audit)


@query.field("mySessions")
async def resolve_my_sessions(_: Any, info: GraphQLResolveInfo) -> Any:
    return await _sessions(info).mine(await _current_user(info), info.context)


@mutation.field("endSession")
async def resolve_end_session(_: Any, info: GraphQLResolveInfo, id: str) -> bool:
    return await _sessions(info).end(await _current_user(info), id, info.context)


@mutation.field("endOtherSessions")
async def resolve_end_other_sessions(_: Any, info: GraphQLResolveInfo) -> bool:
    return await _sessions(info).end_others(await _current_user(info), info.context)


@mutation.field("logoutEverywhere")
async def resolve_logout_everywhere(_: Any, info: GraphQLResolveInfo) -> bool:
    return await _sessions(info).end_all(await _current_user(info), info.context)


def _audit_event(event: dict[str, Any]) -> dict[str, Any]:
    """An audit event as the AuditEvent type has it (for admin listings too)."""
    return {
        **audit.payload(event),
        "userId": event["user_id"],
        "userAgent": event["user_agent"],
        "details": json.dumps(event["details"]),
    }


@query.field("myAuditEvents")
async def resolve_my_audit_events(
    _: Any, info: GraphQLResolveInfo, limit: int, before: str | None = None
) -> Any:
    user = await _current_user(info)
    events = await _accounts(info).audit.of_user(user["_id"], limit, before)
    return [_audit_event(event) for event in events]


bindables = [query, mutation, date_scalar, mongo_id_scalar]


# The admin API (admin.py): the caller's roles are read from the stored user.


async def _admin(info: GraphQLResolveInfo) -> Admin:
    """The admin API for the caller, who must hold the admin role (recorded as the actor)."""
    caller = require_admin(await _current_user(info))
    return Admin(info.context.services, caller["_id"])


@query.field("adminUsers")
async def resolve_admin_users(
    _: Any,
    info: GraphQLResolveInfo,
    filter: dict | None = None,
    emailPrefix: str | None = None,
    role: str | None = None,
    page: int | None = None,
    perPage: int | None = None,
    sort: str | None = None,
) -> Any:
    await _admin(info)
    settings = info.context.settings
    users = AdminUsers(
        info.context.services.store,
        settings.max_page_size,
        settings.max_filter_conditions,
        emailPrefix,
        role,
    )
    return await users.pagination(filter, page, perPage, sort)


@query.field("adminUser")
async def resolve_admin_user(_: Any, info: GraphQLResolveInfo, _id: str) -> Any:
    return admin_view(await (await _admin(info)).user(_id))


@mutation.field("adminUpdateUser")
async def resolve_admin_update_user(
    _: Any, info: GraphQLResolveInfo, _id: str, fields: dict
) -> Any:
    return await (await _admin(info)).update_user(_id, fields)


@mutation.field("adminDisableUser")
async def resolve_admin_disable_user(_: Any, info: GraphQLResolveInfo, _id: str) -> Any:
    return await (await _admin(info)).set_disabled(_id, True)


@mutation.field("adminEnableUser")
async def resolve_admin_enable_user(_: Any, info: GraphQLResolveInfo, _id: str) -> Any:
    return await (await _admin(info)).set_disabled(_id, False)


@mutation.field("adminDeleteUser")
async def resolve_admin_delete_user(_: Any, info: GraphQLResolveInfo, _id: str) -> bool:
    return await (await _admin(info)).delete_user(_id)


@mutation.field("adminEndSessions")
async def resolve_admin_end_sessions(_: Any, info: GraphQLResolveInfo, _id: str) -> int:
    return await (await _admin(info)).end_sessions(_id)


@mutation.field("adminSendPasswordReset")
async def resolve_admin_send_password_reset(
    _: Any, info: GraphQLResolveInfo, _id: str
) -> bool:
    return await (await _admin(info)).send_password_reset(_id)


@mutation.field("adminRemoveSecondFactors")
async def resolve_admin_remove_second_factors(
    _: Any, info: GraphQLResolveInfo, _id: str
) -> int:
    return await (await _admin(info)).remove_second_factors(_id)


def _moment(value: str | None) -> dt.datetime | None:
    """A Date argument as an aware datetime (UTC when it names no zone)."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@query.field("adminAuditEvents")
async def resolve_admin_audit_events(
    _: Any,
    info: GraphQLResolveInfo,
    limit: int,
    before: str | None = None,
    userId: str | None = None,
    event: str | None = None,
    outcome: str | None = None,
    actor: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Any:
    await _admin(info)
    events = await _accounts(info).audit.search(
        limit, before, userId, event, outcome, actor, _moment(since), _moment(until)
    )
    return [_audit_event(item) for item in events]
