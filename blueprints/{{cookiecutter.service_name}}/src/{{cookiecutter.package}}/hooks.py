"""Your own code: custom field validators and event hooks.

authgen creates this file once and never writes it again; edit it freely.

A field with `validator: hooks:some_function` in user.yaml calls
`some_function(value)`; raise ValueError with a message to refuse the value
(the client gets it as a UserValidationError naming the field).

The event hooks below are called with the user (a dict of stored fields,
without the password hash). They run inside the request: keep them quick, and
raise an AuthError subclass from errors.py to refuse the operation. A hook
this file lacks is skipped, so a hooks.py from an older authgen keeps working.
"""

from typing import Any


async def after_register(user: dict[str, Any]) -> None:
    """Called after a new account is stored."""


async def after_login(user: dict[str, Any]) -> None:
    """Called after a successful login."""


async def after_email_verified(user: dict[str, Any]) -> None:
    """Called when the user confirms their email address."""


async def before_delete(user: dict[str, Any]) -> None:
    """Called before an account is deleted; raise to refuse."""
{%- for validator in cookiecutter._fields.values() | map(attribute="validator") | unique %}
{%- if validator.startswith("hooks:") %}


def {{ validator.split(":")[1] }}(value: Any) -> None:
    """A custom check named in user.yaml; raise ValueError("...") to refuse a value."""
{%- endif %}
{%- endfor %}
