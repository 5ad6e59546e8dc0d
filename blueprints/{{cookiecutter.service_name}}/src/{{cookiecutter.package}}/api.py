"""GraphQL execution: the schema, request limits, and a cache of checked queries.

Clients send the same few queries over and over, so a query is parsed,
measured and validated once and the result kept; only execution is per request.
"""

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import lru_cache
from inspect import isawaitable
from pathlib import Path
from typing import Any

from ariadne import make_executable_schema
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import NoSchemaIntrospectionCustomRule

from .errors import (
    AuthError,
    GraphQLValidationError,
    InternalServerError,
    MethodNotAllowedError,
    QueryTooComplexError,
    TooManyPasswordChecksError,
)
from .resolvers import bindables
from .transport import error_payload

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("schema.graphql")
#: Root fields that hash a password (updateMe always: its password may come in a variable).
HASHING_FIELDS = frozenset(
    {
        "login",
        "register",
        "updateMe",
        "deleteMe",
        "resetMyPassword",
        "disableTotp",
        "registerPasskey",
        "deletePasskey",
    }
)

# Introspection is measured apart from data queries: the standard introspection
# query (GraphiQL's, graphql-core's, code generators') unwraps types through
# 8 or more levels of `ofType`, deeper than AUTH_MAX_QUERY_DEPTH, but its cost
# lies in its lists (types > fields > args): with at most 3 of them nested, the
# answer stays the size of the schema, however a query is written.
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
INTROSPECTION_LISTS = frozenset(
    {
        "types",
        "directives",
        "fields",
        "args",
        "inputFields",
        "interfaces",
        "possibleTypes",
        "enumValues",
    }
)
INTROSPECTION_MAX_DEPTH = 20
INTROSPECTION_MAX_LISTS = 3


def build_schema() -> GraphQLSchema:
    return make_executable_schema(SCHEMA_PATH.read_text(encoding="utf-8"), *bindables)


class QueryLimits:
    """How big a query may be before it is refused unexecuted."""

    def __init__(self, max_depth: int, max_aliases: int, max_fields: int) -> None:
        self.max_depth = max_depth
        self.max_aliases = max_aliases
        self.max_fields = max_fields

    def check(self, document: DocumentNode) -> None:
        fragments = {
            node.name.value: node
            for node in document.definitions
            if isinstance(node, FragmentDefinitionNode)
        }
        fields = aliases = 0
        for node in document.definitions:
            if isinstance(node, (OperationDefinitionNode, FragmentDefinitionNode)):
                counted = _count(node.selection_set)
                fields += counted[0]
                aliases += counted[1]
        if fields > self.max_fields:
            raise QueryTooComplexError(
                f"The query selects {fields} fields; the limit is {self.max_fields}."
            )
        if aliases > self.max_aliases:
            raise QueryTooComplexError(
                f"The query uses {aliases} aliases; the limit is {self.max_aliases}."
            )
        known_depths: dict[str, int] = {}
        for node in document.definitions:
            if isinstance(node, OperationDefinitionNode):
                for field in _fields(node.selection_set, fragments, set()):
                    if field.name.value in INTROSPECTION_ROOTS:
                        _check_introspection(field, fragments)
                        continue
                    depth = 1 + _depth(
                        field.selection_set, fragments, _every_field, known_depths
                    )
                    if depth > self.max_depth:
                        raise QueryTooComplexError(
                            f"The query is {depth} levels deep; the limit is {self.max_depth}."
                        )


def _count(selection_set: SelectionSetNode | None) -> tuple[int, int]:
    fields = aliases = 0
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            fields += 1
            aliases += selection.alias is not None
        if isinstance(selection, (FieldNode, InlineFragmentNode)):
            inner = _count(selection.selection_set)
            fields += inner[0]
            aliases += inner[1]
    return fields, aliases


def _fields(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    expanded: set[str],
) -> Iterator[FieldNode]:
    """The fields of a selection set, its fragments spread, each fragment
    once: a second spread of it selects the same fields again, which GraphQL
    merges (and a cycle is a validation error)."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, expanded)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in expanded and name in fragments:
                expanded.add(name)
                yield from _fields(fragments[name].selection_set, fragments, expanded)


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    counts: Callable[[FieldNode], bool],
    known: dict[str, int],
    visiting: frozenset[str] = frozenset(),
) -> int:
    """The most fields that `counts` on one path down the selection set.
    A fragment is measured once (`known`), so fragments that spread each other
    twice over cost no more than their size (not 2 to the power of their number)."""
    deepest = 0
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            inner = int(counts(selection)) + _depth(
                selection.selection_set, fragments, counts, known, visiting
            )
        elif isinstance(selection, InlineFragmentNode):
            inner = _depth(selection.selection_set, fragments, counts, known, visiting)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in visiting or name not in fragments:
                continue  # cycles and unknown fragments are validation errors
            if name not in known:
                known[name] = _depth(
                    fragments[name].selection_set,
                    fragments,
                    counts,
                    known,
                    visiting | {name},
                )
            inner = known[name]
        else:
            continue
        deepest = max(deepest, inner)
    return deepest


def _every_field(field: FieldNode) -> bool:
    return True


def _introspection_list(field: FieldNode) -> bool:
    return field.name.value in INTROSPECTION_LISTS


def _check_introspection(
    field: FieldNode, fragments: dict[str, FragmentDefinitionNode]
) -> None:
    """Introspection has its own bounds: deep enough for the standard query,
    and few enough nested lists that its answer stays the size of the schema."""
    depth = 1 + _depth(field.selection_set, fragments, _every_field, {})
    if depth > INTROSPECTION_MAX_DEPTH:
        raise QueryTooComplexError(
            f"The introspection query is {depth} levels deep; the limit is {INTROSPECTION_MAX_DEPTH}."
        )
    lists = _depth(field.selection_set, fragments, _introspection_list, {})
    if lists > INTROSPECTION_MAX_LISTS:
        raise QueryTooComplexError(
            f"The introspection query nests {lists} lists; the limit is {INTROSPECTION_MAX_LISTS}."
        )


class GraphQLRunner:
    """Checks and runs GraphQL requests against the schema."""

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: QueryLimits,
        introspection: bool = True,
        cache_size: int = 512,
    ):
        self.schema = schema
        self.limits = limits
        # Without introspection, __schema and __type are validation errors.
        self.rules = (
            specified_rules
            if introspection
            else (*specified_rules, NoSchemaIntrospectionCustomRule)
        )
        self.cache_size = cache_size
        self._documents: OrderedDict[str, DocumentNode | list[dict]] = OrderedDict()
        # Documents are cached, so is what is read of them (keyed by the text:
        # hashing a DocumentNode walks all of it).
        self._hashing_fields = lru_cache(cache_size)(self._count_hashing_fields)

    def prepare(self, query: str) -> DocumentNode | list[dict]:
        """The checked document, or the formatted errors that refuse it."""
        cached = self._documents.get(query)
        if cached is not None:
            self._documents.move_to_end(query)
            return cached
        prepared = self._check(query)
        self._documents[query] = prepared
        if len(self._documents) > self.cache_size:
            self._documents.popitem(last=False)
        return prepared

    def _check(self, query: str) -> DocumentNode | list[dict]:
        try:
            document = parse(query, max_tokens=self.limits.max_fields * 20)
        except GraphQLError as error:
            return [format_error(error)]
        try:
            self.limits.check(document)
        except AuthError as error:
            return [error_payload(error)]
        errors = validate(self.schema, document, self.rules)
        if errors:
            return [format_error(error) for error in errors]
        return document

    def _count_hashing_fields(self, query: str, operation_name: str | None) -> int:
        prepared = self.prepare(query)
        return (
            0
            if isinstance(prepared, list)
            else _hashing_fields(prepared, operation_name)
        )

    def root_fields(
        self, query: str, operation_name: str | None
    ) -> list[tuple[str, str]] | None:
        """(name, response key) of the root fields the request selects; None
        when the document is refused or names no operation it holds."""
        prepared = self.prepare(query)
        if isinstance(prepared, list):
            return None
        operation = get_operation_ast(prepared, operation_name)
        if operation is None:
            return None
        fragments = {
            node.name.value: node
            for node in prepared.definitions
            if isinstance(node, FragmentDefinitionNode)
        }
        return [
            (field.name.value, (field.alias or field.name).value)
            for field in _fields(operation.selection_set, fragments, set())
        ]

    async def run(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
        read_only: bool = False,
    ) -> dict[str, Any]:
        """The response to one request; `read_only` (GET) refuses mutations
        with MethodNotAllowedError, as GraphQL over HTTP has it."""
        prepared = self.prepare(query)
        if isinstance(prepared, list):
            return {"errors": prepared}
        if read_only:
            operation = get_operation_ast(prepared, operation_name)
            if operation is not None and operation.operation is not OperationType.QUERY:
                raise MethodNotAllowedError()
        if self._hashing_fields(query, operation_name) > 1:
            return {"errors": [error_payload(TooManyPasswordChecksError())]}
        result = execute(
            self.schema,
            prepared,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
        )
        if isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        response: dict[str, Any] = {"data": result.data}
        if result.errors:
            response["errors"] = [format_error(error) for error in result.errors]
        return response


def _hashing_fields(document: DocumentNode, operation_name: str | None) -> int:
    """How many password hashing root fields the operation to run selects
    (each response key once, as the executor runs it)."""
    operations = [
        node
        for node in document.definitions
        if isinstance(node, OperationDefinitionNode)
    ]
    if operation_name is not None:
        operations = [
            node
            for node in operations
            if node.name and node.name.value == operation_name
        ]
    if len(operations) != 1:
        return 0  # execution refuses it
    fragments = {
        node.name.value: node
        for node in document.definitions
        if isinstance(node, FragmentDefinitionNode)
    }
    keys: set[str] = set()
    pending, seen = [operations[0].selection_set], set()
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                if selection.name.value in HASHING_FIELDS:
                    keys.add((selection.alias or selection.name).value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif (
                isinstance(selection, FragmentSpreadNode)
                and selection.name.value not in seen
            ):
                seen.add(selection.name.value)
                pending.append(fragments[selection.name.value].selection_set)
    return len(keys)


def format_error(error: GraphQLError) -> dict[str, Any]:
    """The client's view of an error: a type and a safe message, never internals."""
    original = error.original_error
    if isinstance(original, AuthError):
        known = original
    elif original is None or not error.path:
        # Syntax, validation and variable errors describe the request itself.
        known = GraphQLValidationError(error.message)
    else:
        log.error("unexpected error in %s", error.path, exc_info=original)
        known = InternalServerError()
    return {**error.formatted, **error_payload(known)}
