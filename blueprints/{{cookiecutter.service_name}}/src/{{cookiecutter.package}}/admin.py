"""The admin API and the `admin` command: roles, and every user's account.

Every operation is checked against the caller as stored now, not against the
roles claim of their token: a revoked admin loses the API at once. No change
may leave the service without an enabled admin (LastAdminError), so there is
always someone who can undo a mistake: the store makes such a write and its
check one step (store.base.UserStore.update_user's `keep`), so two admins
demoting each other at once cannot both succeed. Every action is recorded in
the audit trail with the admin's id as actor (`system` for the command).
"""

from collections.abc import Awaitable
from typing import Any, TypeVar

from . import audit, recovery, roles
from .accounts import call_hook, duplicate_error, valid_email
from .errors import (
    LastAdminError,
    NoSecondFactorError,
    TooManyRequestsError,
    UnauthorizedError,
    UserNotFoundError,
    UserValidationError,
)
from .links import RESET_PASSWORD, VERIFY_EMAIL
from .mail import outbox_record
from .mfa import CHALLENGE
from .models import FIELDS, ROLES, account_view, admin_view, validate_fields
from .roles import ADMIN, is_admin, keep_for
from .rules import normalize_email
from .services import Services
from .store import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    DuplicateValueError,
    LastMatchError,
    SideWrites,
    Store,
    UserQuery,
    is_valid_id,
)
from .users import PublicUsers

#: The fields the admin queries sort on: the ids, emails, dates and every single value.
SORT_FIELDS = ("_id", "email", "created_at") + tuple(
    name for name, field in FIELDS.items() if not field.list
)
#: How the mfa_removed notice names what an admin's removal took.
ADMIN_REMOVAL = "all of them, by an administrator"
#: Longest email prefix searched (an address is at most 320 characters).
PREFIX_MAX_LENGTH = 320


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


T = TypeVar("T")


def role_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list]:
    """The roles granted and revoked between two states of a user (an event's details)."""
    old, new = before.get("roles") or [], after.get("roles") or []
    return {
        "granted": [role for role in new if role not in old],
        "revoked": [role for role in old if role not in new],
    }


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
    adminDeleteUser, adminEndSessions, adminSendPasswordReset,
    adminRemoveSecondFactors; each action audited with the admin as actor."""

    def __init__(self, services: Services, actor: str) -> None:
        """`actor`: the calling admin's id, recorded with each action."""
        self.services = services
        self.store = services.store
        self.actor = actor
        self.trail = services.accounts.audit

    async def _record(
        self,
        event: str,
        user_id: str,
        outcome: str = audit.SUCCESS,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self.trail.record(
            event, user_id, actor=self.actor, outcome=outcome, details=details
        )

    async def _guarded(self, event: str, user_id: str, write: Awaitable[T]) -> T:
        """A write the store refuses if it would leave no enabled admin:
        LastAdminError then, recorded as a failed `event`."""
        try:
            return await write
        except LastMatchError:
            details = {"reason": "last_admin"}
            await self._record(event, user_id, audit.FAILURE, details)
            raise LastAdminError() from None

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
        keep = None
        if roles is not None:
            changes["roles"] = valid_roles(roles)
            if ADMIN not in changes["roles"]:
                keep = keep_for(user)
        write = self.store.update_user(user_id, changes, side, keep=keep)
        try:
            updated = await self._guarded(audit.USER_UPDATED, user_id, write)
        except DuplicateValueError as error:
            raise duplicate_error(error) from None
        if updated is None:
            raise UserNotFoundError("No user has this id.")
        # Which fields changed, never their values.
        changed = sorted(n for n in changes if updated.get(n) != user.get(n))
        await self._record(audit.USER_UPDATED, user_id, details={"fields": changed})
        if "roles" in changed:
            details = role_changes(user, updated)
            await self._record(audit.ROLES_CHANGED, user_id, details=details)
        return admin_view(updated)

    async def set_disabled(self, user_id: str, disabled: bool) -> dict[str, Any]:
        """A disabled user's sessions end with the change; their auth tokens are
        refused from then on (authenticate reads the stored user)."""
        user = await self.user(user_id)
        event = audit.ACCOUNT_DISABLED if disabled else audit.ACCOUNT_ENABLED
        side = SideWrites(end_sessions=True) if disabled else None
        keep = keep_for(user) if disabled else None
        write = self.store.update_user(user_id, {"disabled": disabled}, side, keep=keep)
        updated = await self._guarded(event, user_id, write)
        if updated is None:
            raise UserNotFoundError("No user has this id.")
        await self._record(event, user_id)
        return admin_view(updated)

    async def delete_user(self, user_id: str) -> bool:
        user = await self.user(user_id)
        deletion = roles.delete_user(
            self.store, user, lambda: call_hook("before_delete", user)
        )
        deleted = await self._guarded(audit.ACCOUNT_DELETED, user_id, deletion)
        await self._record(audit.ACCOUNT_DELETED, user_id)
        return deleted

    async def end_sessions(self, user_id: str) -> int:
        """How many refresh tokens ended: every device of the user must log in again."""
        await self.user(user_id)
        ended = await self.store.end_user_sessions(user_id)
        details = {"sessions": "all", "count": ended}
        await self._record(audit.SESSION_ENDED, user_id, details=details)
        return ended

    async def send_password_reset(self, user_id: str) -> bool:
        """A recovery link to the user's address, within its mail limit
        (TooManyRequestsError beyond it: the admin may be told)."""
        user = await self.user(user_id)
        if not await recovery.mail_recovery_link(
            self.services, user["email"], self.actor
        ):
            event = audit.PASSWORD_RESET_REQUESTED
            await self._record(event, user_id, audit.THROTTLED)
            raise TooManyRequestsError(
                "This address has had its share of mails; try again later."
            )
        return True

    async def remove_second_factors(self, user_id: str) -> int:
        """Every second factor of the user goes (a lost authenticator), with
        their sessions and pending second-factor logins; the user gets the
        mfa_removed notice. Returns how many factor records went."""
        user = await self.user(user_id)
        removed = await self.store.delete_factors(user_id)
        if not removed:
            raise NoSecondFactorError("This user has no second factor.")
        await self.store.delete_user_tokens(user_id, CHALLENGE)
        await self.store.end_user_sessions(user_id)
        context = {"user": account_view(user), "factor": ADMIN_REMOVAL}
        notice = outbox_record(user["email"], "mfa_removed_email", context)
        await self.store.add_side_writes(SideWrites(mails=[notice]))
        self.services.mailer.wake()
        details = {"factors": removed}
        await self._record(audit.SECOND_FACTORS_REMOVED, user_id, details=details)
        return removed


# `python -m <package> admin ...`: roles given on the server, for the first admin.


async def run_command(
    store: Store, trail: audit.Audit, command: str, email: str, role: str
) -> str:
    """grant, revoke or list; the line to print. ValueError(one line) for a
    mistake: an unknown email or role, the last admin's admin role. A grant
    or revoke is recorded as roles_changed with the actor `system`."""
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
    keep = None
    if command == "grant":
        roles.add(role)
    else:
        roles.discard(role)
        keep = keep_for(user) if role == ADMIN else None
    changes = {"roles": valid_roles(sorted(roles))}
    try:
        updated = await store.update_user(user["_id"], changes, keep=keep)
    except LastMatchError:
        await trail.record(
            audit.ROLES_CHANGED,
            user["_id"],
            audit.SYSTEM,
            outcome=audit.FAILURE,
            details={"reason": "last_admin"},
        )
        raise ValueError(LastAdminError.message) from None
    if updated is None:
        raise ValueError(f"no user has the email {email!r}")
    details = role_changes(user, updated)
    await trail.record(audit.ROLES_CHANGED, user["_id"], audit.SYSTEM, details=details)
    return f"{updated['email']}: {' '.join(updated['roles']) or '(no roles)'}"


async def _role_holders(store: Store) -> list[str]:
    """`email role...` of every user with a role, in id order, read page by page."""
    any_role = AnyOf(tuple(Compare("roles", "has", role) for role in ROLES))
    lines: list[str] = []
    while page := await store.find_users(
        UserQuery(where=any_role, skip=len(lines), limit=500)
    ):
        lines += [f"{user['email']} {' '.join(user['roles'])}" for user in page]
    return lines
