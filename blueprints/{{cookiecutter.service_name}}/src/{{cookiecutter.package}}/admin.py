"""The admin API and the `admin` command: roles, and every user's account.

Every operation is checked against the caller as stored now, not against the
roles claim of their token: a revoked admin loses the API at once. No change
may leave the service without an enabled admin (LastAdminError), so there is
always someone who can undo a mistake.
"""

from typing import Any

from . import recovery
from .accounts import call_hook, duplicate_error, valid_email
from .errors import (
    LastAdminError,
    UnauthorizedError,
    UserNotFoundError,
    UserValidationError,
)
from .links import RESET_PASSWORD, VERIFY_EMAIL
from .models import FIELDS, ROLES, admin_view, validate_fields
from .rules import normalize_email
from .services import Services
from .store import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DuplicateValueError,
    SideWrites,
    Store,
    UserQuery,
    is_valid_id,
)
from .users import PublicUsers

ADMIN = "admin"
#: The fields the admin queries sort on: the ids, emails, dates and every single value.
SORT_FIELDS = ("_id", "email", "created_at") + tuple(
    name for name, field in FIELDS.items() if not field.list
)
#: Longest email prefix searched (an address is at most 320 characters).
PREFIX_MAX_LENGTH = 320


def is_admin(user: dict[str, Any]) -> bool:
    return ADMIN in (user.get("roles") or [])


def require_admin(user: dict[str, Any]) -> dict[str, Any]:
    """The stored user if they hold the admin role; UnauthorizedError otherwise."""
    if not is_admin(user):
        raise UnauthorizedError("This needs the admin role.")
    return user


def valid_roles(values: list[str]) -> list[str]:
    """The roles in user.yaml's order, each once; UserValidationError for an unknown one."""
    unknown = sorted(set(values) - set(ROLES))
    if unknown:
        raise UserValidationError(
            f"roles: unknown role {unknown[0]!r}; one of: {', '.join(ROLES)}."
        )
    return [role for role in ROLES if role in values]


async def keep_an_admin(store: Store, user: dict[str, Any]) -> None:
    """LastAdminError if `user` is the only enabled admin (the check precedes the
    write: two admins demoting each other at the same instant can both pass)."""
    if not is_admin(user) or user.get("disabled"):
        return
    enabled_admins = AllOf(
        (Compare("roles", "has", ADMIN), Compare("disabled", "ne", True))
    )
    if await store.count_users(enabled_admins) <= 1:
        raise LastAdminError()


class AdminUsers(PublicUsers):
    """adminUsers: the public queries' filters, sorts and pages over every field,
    plus a case-insensitive email prefix and a role."""

    view = staticmethod(admin_view)
    sort_fields = SORT_FIELDS

    def __init__(
        self,
        store: Store,
        max_page_size: int,
        max_filter_conditions: int,
        email_prefix: str | None = None,
        role: str | None = None,
    ) -> None:
        super().__init__(store, max_page_size, max_filter_conditions)
        self.extra: list[Condition] = []
        if email_prefix:
            # Stored addresses are lower-case ASCII (rules.normalize_email).
            prefix = email_prefix.strip().lower()[:PREFIX_MAX_LENGTH]
            self.extra.append(Compare("email", "prefix", prefix))
        if role is not None:
            self.extra.append(Compare("roles", "has", role))

    def _where(self, graphql_filter: dict | None) -> Condition | None:
        where = super()._where(graphql_filter)
        if not self.extra:
            return where
        return AllOf(tuple(self.extra) + ((where,) if where is not None else ()))


class Admin:
    """adminUser, adminUpdateUser, adminDisableUser, adminEnableUser,
    adminDeleteUser, adminEndSessions, adminSendPasswordReset."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store

    async def user(self, user_id: str) -> dict[str, Any]:
        user = await self.store.get_user(user_id) if is_valid_id(user_id) else None
        if user is None:
            raise UserNotFoundError("No user has this id.")
        return user

    async def update_user(self, user_id: str, fields: dict[str, Any]) -> dict:
        """Any field, validated as updateMe validates it. A new email is
        unverified unless email_verified is given too, and ends the user's
        outstanding links."""
        user = await self.user(user_id)
        values = dict(fields)
        email = values.pop("email", None)
        verified = values.pop("email_verified", None)
        roles = values.pop("roles", None)
        changes = validate_fields(values, creating=False)
        side = None
        if email is not None and valid_email(email) != user["email"]:
            changes.update(email=valid_email(email), email_verified=False)
            side = SideWrites(revoked_purposes=[VERIFY_EMAIL, RESET_PASSWORD])
        if verified is not None:
            changes["email_verified"] = verified
        if roles is not None:
            changes["roles"] = valid_roles(roles)
            if ADMIN not in changes["roles"]:
                await keep_an_admin(self.store, user)
        try:
            updated = await self.store.update_user(user_id, changes, side)
        except DuplicateValueError as error:
            raise duplicate_error(error) from None
        if updated is None:
            raise UserNotFoundError("No user has this id.")
        return admin_view(updated)

    async def set_disabled(self, user_id: str, disabled: bool) -> dict[str, Any]:
        """A disabled user's sessions end with the change; their auth tokens are
        refused from then on (authenticate reads the stored user)."""
        user = await self.user(user_id)
        if disabled:
            await keep_an_admin(self.store, user)
        side = SideWrites(end_sessions=True) if disabled else None
        updated = await self.store.update_user(user_id, {"disabled": disabled}, side)
        if updated is None:
            raise UserNotFoundError("No user has this id.")
        return admin_view(updated)

    async def delete_user(self, user_id: str) -> bool:
        user = await self.user(user_id)
        await keep_an_admin(self.store, user)
        await call_hook("before_delete", user)
        return await self.store.delete_user(user_id)

    async def end_sessions(self, user_id: str) -> int:
        """How many refresh tokens ended: every device of the user must log in again."""
        await self.user(user_id)
        return await self.store.end_user_sessions(user_id)

    async def send_password_reset(self, user_id: str) -> bool:
        """A recovery link to the user's address, within its mail limit."""
        user = await self.user(user_id)
        await recovery.mail_recovery_link(self.services, user["email"])
        return True


# `python -m <package> admin ...`: roles given on the server, for the first admin.


async def run_command(store: Store, command: str, email: str, role: str) -> str:
    """grant, revoke or list; the line to print. ValueError(one line) for a
    mistake: an unknown email or role, the last admin's admin role."""
    if command == "list":
        return "\n".join(await _role_holders(store)) or "(no user has a role)"
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
    try:
        address = normalize_email(email)
    except ValueError:
        address = ""
    user = await store.get_user_by_email(address)
    if user is None:
        raise ValueError(f"no user has the email {email!r}")
    roles = set(user.get("roles") or [])
    if command == "grant":
        roles.add(role)
    else:
        if role == ADMIN:
            try:
                await keep_an_admin(store, user)
            except LastAdminError as error:
                raise ValueError(str(error)) from None
        roles.discard(role)
    await store.update_user(user["_id"], {"roles": valid_roles(sorted(roles))})
    return f"{user['email']}: {' '.join(valid_roles(sorted(roles))) or '(no roles)'}"


async def _role_holders(store: Store) -> list[str]:
    """`email role...` of every user with a role, in id order, read page by page."""
    any_role = AnyOf(tuple(Compare("roles", "has", role) for role in ROLES))
    lines: list[str] = []
    while page := await store.find_users(
        UserQuery(where=any_role, skip=len(lines), limit=500)
    ):
        lines += [f"{user['email']} {' '.join(user['roles'])}" for user in page]
    return lines
