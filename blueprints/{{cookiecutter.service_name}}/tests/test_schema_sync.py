"""The start's schema sync on data written under an older model, on every store.

Renames move values (and indexes follow), type changes convert the values or
stop the start with the field, the count and an example, a new field while a
removed one still holds values is refused, and defaults are filled only into
fields that are new.
"""

from dataclasses import replace

import pytest
from sample import sample_user
from test_store import (
    anyio_backend,
    each,
    execute_sql,
    forget_field,
    opener,
)  # noqa: F401
from test_store import user_indexes

from {{ cookiecutter.package }}.models import FIELDS
from {{ cookiecutter.package }}.store import SchemaError, Store
from {{ cookiecutter.package }}.store.sql import SqlStore

pytestmark = pytest.mark.anyio

WITH_DEFAULT = [n for n, f in FIELDS.items() if f.has_default and not f.required]
INTS = [n for n, f in FIELDS.items() if f.type == "int" and not f.list]
#: One single-valued field, unique if the spec has one (its index must follow).
SCALARS = sorted(
    (n for n, f in FIELDS.items() if not f.list), key=lambda n: not FIELDS[n].unique
)[:1]


async def move_field(store: Store, name: str, old: str) -> None:
    """Make stored users look as if the field had been called `old`."""
    if isinstance(store, SqlStore):
        await execute_sql(store, f'ALTER TABLE users RENAME COLUMN "{name}" TO "{old}"')
    else:
        await store.users.update_many({}, {"$rename": {name: old}})
        recorded = (await store.schema.find_one({"_id": "users"}))["fields"]
        recorded[old] = recorded.pop(name)
        await store.schema.update_one({"_id": "users"}, {"$set": {"fields": recorded}})


async def store_as_text(store: Store, name: str, value: str) -> None:
    """Make stored users look as if the field had been a string holding `value`."""
    await forget_field(store, name)
    if isinstance(store, SqlStore):
        await execute_sql(
            store,
            f'ALTER TABLE users ADD COLUMN "{name}" TEXT',
            f"UPDATE users SET \"{name}\" = '{value}'",
        )
    else:
        await store.users.update_many({}, {"$set": {name: value}})
        await store.schema.update_one(
            {"_id": "users"}, {"$set": {f"fields.{name}": "str"}}
        )


@pytest.mark.parametrize("name", each(WITH_DEFAULT, "optional defaulted"))
async def test_a_cleared_default_stays_cleared_after_a_restart(opener, name):
    store = await opener()
    user = sample_user(40)
    await store.insert_user(user)
    await store.update_user(user["_id"], {name: None})
    reopened = await opener()
    assert (await reopened.get_user(user["_id"]))[name] is None


@pytest.mark.parametrize("name", each(SCALARS, "single-valued"))
async def test_a_declared_rename_moves_the_values_and_their_index(
    opener, name, monkeypatch
):
    store = await opener()
    user = sample_user(41)
    await store.insert_user(user)
    await move_field(store, name, f"{name}Old")
    monkeypatch.setitem(FIELDS, name, replace(FIELDS[name], renamed_from=f"{name}Old"))
    reopened = await opener()
    assert (await reopened.get_user(user["_id"]))[name] == user[name]
    indexes = await user_indexes(reopened)
    assert all(f"{name}Old" not in keys for keys in indexes.values())
    if FIELDS[name].unique:
        assert indexes[f"ux_users_{name}"] == [name]
    # Started again with the declaration (nothing left to move): no change.
    again = await opener()
    assert (await again.get_user(user["_id"]))[name] == user[name]


@pytest.mark.parametrize("name", each(SCALARS, "single-valued"))
async def test_a_new_field_while_a_removed_one_holds_values_stops_the_start(
    opener, name
):
    store = await opener()
    await store.insert_user(sample_user(42))
    await move_field(store, name, f"{name}Old")
    with pytest.raises(SchemaError) as refused:
        await opener()
    message = str(refused.value)
    assert f"'{name}'" in message and f"'{name}Old'" in message
    assert f"renamed_from: {name}Old" in message


@pytest.mark.parametrize("name", each(INTS[:1], "int"))
async def test_a_type_change_the_values_take_is_converted(opener, name):
    store = await opener()
    user = sample_user(43)
    await store.insert_user(user)
    await store_as_text(store, name, "41")
    reopened = await opener()
    assert (await reopened.get_user(user["_id"]))[name] == 41


@pytest.mark.parametrize("name", each(INTS[:1], "int"))
async def test_a_type_change_the_values_cannot_take_stops_the_start(opener, name):
    store = await opener()
    await store.insert_user(sample_user(44))
    await store.insert_user(sample_user(45))
    await store_as_text(store, name, "forty")
    with pytest.raises(
        SchemaError,
        match=rf"field '{name}' is now int but 2 stored user\(s\).*'forty'.*user\.yaml",
    ):
        await opener()
