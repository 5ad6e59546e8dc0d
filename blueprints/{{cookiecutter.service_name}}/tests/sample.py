"""Valid sample users for any spec: values of each field's type within its rules."""

import datetime as dt
from enum import Enum
from typing import Any

from {{ cookiecutter.package }} import models
from {{ cookiecutter.package }}.models import FIELDS, FieldInfo
from {{ cookiecutter.package }}.store import new_id

#: MongoDB keeps datetimes to the millisecond, so samples have no microseconds.
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def enum_values(field: FieldInfo) -> list[str]:
    enum: type[Enum] = getattr(models, field.name[0].upper() + field.name[1:])
    return [member.value for member in enum]


def sample_value(field: FieldInfo, i: int) -> Any:
    """A value of the field for the i-th user: distinct per i, within the field's rules."""
    if field.type == "string":
        if field.format == "email":
            value = f"contact{i}@example.org"
        elif field.format == "url":
            value = f"https://example.org/{i}"
        else:
            value = f"{field.name[:3]}{i:07d}"
            if field.max_length is not None:
                value = value[-field.max_length :]
    elif field.type in ("int", "float"):
        low = field.min if field.min is not None else 0
        high = field.max if field.max is not None else low + 1000
        value = low + (i * 7) % (int(high - low) + 1)
        value = (
            int(value) if field.type == "int" else float(value) + 0.25 * (value < high)
        )
    elif field.type == "boolean":
        value = i % 2 == 0
    elif field.type == "date":
        value = dt.date(1970, 1, 1) + dt.timedelta(days=(i * 37) % 20000)
    elif field.type == "datetime":
        value = EPOCH + dt.timedelta(minutes=i * 13 % 5000, milliseconds=i % 1000)
    else:
        choices = enum_values(field)
        value = choices[i % len(choices)]
    return [value] if field.list else value


def sample_user(i: int, **overrides: Any) -> dict[str, Any]:
    """A complete user record as the store takes it."""
    user = {
        "_id": new_id(),
        "email": f"user{i}@example.com",
        "email_verified": i % 3 == 0,
        "password_hash": "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA",
        "created_at": EPOCH + dt.timedelta(seconds=i),
        "roles": [],
        "disabled": False,
    }
    user.update({name: sample_value(field, i) for name, field in FIELDS.items()})
    user.update(overrides)
    return user
