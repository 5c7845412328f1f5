"""GraphQL with graphql-core: the executable schema, a cache of checked documents, costs.

The listener sends the same batched document shapes again and again, so parsing and
validating a query text happens once per text (LRU), and each request only executes.
A miss costs about 0.3 ms per aliased mutation (graphql-core's parser and validator);
a hit only the execution, about 0.07 ms per mutation.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    build_schema,
    execute,
    get_named_type,
    get_nullable_type,
    parse,
    specified_rules,
    validate,
)
from graphql.error import GraphQLSyntaxError
from graphql.pyutils import AwaitableOrValue
from graphql.validation import ASTValidationContext

from emulator import resolvers
from emulator.errors import ApiError
from emulator.limits import FREE_FIELDS, AccountLimits

log = logging.getLogger(__name__)

CACHE_ENTRIES = 512
# A parsed 500-alias batch holds ~100 bytes of AST per character of query text, so the
# cache is bounded by text size too: 1M characters is about 100 MB of ASTs at most.
CACHE_CHARS = 1_000_000

# graphql-ruby's codes (Monday runs graphql-ruby), e.g. "undefinedField" in the wild.
_RULE_CODES = {
    "FieldsOnCorrectTypeRule": "undefinedField",
    "KnownArgumentNamesRule": "argumentNotAccepted",
    "ProvidedRequiredArgumentsRule": "missingRequiredArguments",
    "ValuesOfCorrectTypeRule": "argumentLiteralsIncompatible",
    "VariablesInAllowedPositionRule": "variableMismatch",
    "VariablesAreInputTypesRule": "variableRequiresValidType",
    "NoUndefinedVariablesRule": "variableNotDefined",
    "NoUnusedVariablesRule": "variableNotUsed",
    "UniqueVariableNamesRule": "variableNotUnique",
    "KnownTypeNamesRule": "undefinedType",
    "ScalarLeafsRule": "selectionMismatch",
    "OverlappingFieldsCanBeMergedRule": "fieldConflict",
    "UniqueArgumentNamesRule": "argumentNotUnique",
    "KnownFragmentNamesRule": "undefinedFragment",
    "NoUnusedFragmentsRule": "useAndDefineFragment",
    "KnownOperationTypesRule": "missingOperationType",
}
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
PARSE_ERROR = "PARSE_ERROR"
INVALID_VARIABLES = "INVALID_VARIABLES"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL_ERROR = "INTERNAL_SERVER_ERROR"


class _CodingContext:
    """A validation context that stamps a code on each error a rule reports."""

    def __init__(self, context: ASTValidationContext, code: str) -> None:
        self._context = context
        self._code = code

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {"code": self._code}
        self._context.report_error(error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _coded(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    code = _RULE_CODES.get(rule.__name__, VALIDATION_FAILED)

    def __init__(self: ASTValidationRule, context: ASTValidationContext) -> None:
        # Rules report through self.context (some directly), so wrap the context.
        rule.__init__(self, cast(ASTValidationContext, _CodingContext(context, code)))

    return type(rule.__name__, (rule,), {"__init__": __init__})


_RULES = tuple(_coded(rule) for rule in specified_rules)


def _build() -> GraphQLSchema:
    sdl = resources.files("emulator").joinpath("schema.graphql").read_text("utf-8")
    schema = build_schema(sdl)
    for type_name, fields in resolvers.RESOLVERS.items():
        owner = schema.type_map[type_name]
        assert isinstance(owner, GraphQLObjectType)
        for field_name, resolve in fields.items():
            owner.fields[field_name].resolve = resolve
    interface = schema.type_map["ColumnValue"]
    assert isinstance(interface, GraphQLInterfaceType)
    interface.resolve_type = resolvers.value_type
    return schema


SCHEMA = _build()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked document and the operation to run, with its root field names."""

    document: DocumentNode
    operation: OperationDefinitionNode
    root_fields: tuple[str, ...]
    fragments: dict[str, FragmentDefinitionNode]

    @property
    def is_mutation(self) -> bool:
        """Whether the operation is a mutation."""
        return self.operation.operation is OperationType.MUTATION

    @property
    def mutations(self) -> int:
        """How many mutations the operation runs (the `complexity` field is not one)."""
        if not self.is_mutation:
            return 0
        return sum(1 for name in self.root_fields if name not in ("complexity", "__typename"))

    def cost(self, limits: AccountLimits, variables: dict[str, Any] | None = None) -> int:
        """The complexity, computed before running as Monday does (see emulator.limits): each
        field's weight times how many of it may come back, over the whole selection."""
        mutation = self.is_mutation
        root = SCHEMA.mutation_type if mutation else SCHEMA.query_type
        assert root is not None
        total = 0
        for node in _fields(self.operation.selection_set, self.fragments):
            name = node.name.value
            weight = limits.cost(name, mutation=mutation, scalar=_is_scalar(root, name))
            if weight == 0 and name in FREE_FIELDS:
                continue
            total += _field_cost(node, root, weight, limits, variables or {}, self.fragments, None)
        return total


class DocumentCache:
    """A least-recently-used map bounded by entry count and by total query length."""

    def __init__(self, max_entries: int, max_chars: int) -> None:
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._entries: OrderedDict[tuple[str, str | None], Prepared | tuple[GraphQLError, ...]]
        self._entries = OrderedDict()
        self._chars = 0

    def get(self, key: tuple[str, str | None]) -> Prepared | tuple[GraphQLError, ...] | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: tuple[str, str | None], value: Prepared | tuple[GraphQLError, ...]) -> None:
        if len(key[0]) > self._max_chars:
            return
        self._entries[key] = value
        self._chars += len(key[0])
        while len(self._entries) > self._max_entries or self._chars > self._max_chars:
            old, _ = self._entries.popitem(last=False)
            self._chars -= len(old[0])

    def __len__(self) -> int:
        return len(self._entries)


CACHE = DocumentCache(CACHE_ENTRIES, CACHE_CHARS)


def prepare(query: str, operation_name: str | None) -> Prepared | tuple[GraphQLError, ...]:
    """The checked document for `query`, or the errors that stop it (cached)."""
    key = (query, operation_name)
    found = CACHE.get(key)
    if found is None:
        found = _prepare(query, operation_name)
        CACHE.put(key, found)
    return found


def _prepare(query: str, operation_name: str | None) -> Prepared | tuple[GraphQLError, ...]:
    try:
        checked = parse(query)
    except GraphQLSyntaxError as exc:
        exc.extensions = {"code": PARSE_ERROR}
        return (exc,)
    problems = validate(SCHEMA, checked, _RULES)
    if problems:
        return tuple(problems)
    operations = [d for d in checked.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None and len(operations) == 1:
        operation = operations[0]
    else:
        named = [o for o in operations if o.name and o.name.value == operation_name]
        if not named:
            message = (
                "Must provide operation name if query contains multiple operations"
                if operation_name is None
                else f"Unknown operation named '{operation_name}'"
            )
            return (GraphQLError(message, extensions={"code": BAD_REQUEST}),)
        operation = named[0]
    fragments = {
        d.name.value: d for d in checked.definitions if isinstance(d, FragmentDefinitionNode)
    }
    roots = tuple(_root_fields(operation.selection_set, fragments))
    return Prepared(checked, operation, roots, fragments)


def _root_fields(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> list[str]:
    names: list[str] = []
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            names.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            names += _root_fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            names += _root_fields(fragment.selection_set, fragments)
    return names


def _fields(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    found: list[FieldNode] = []
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found += _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            found += _fields(fragments[selection.name.value].selection_set, fragments)
    return found


def _is_scalar(parent: GraphQLNamedType, name: str) -> bool:
    fields = getattr(parent, "fields", {})
    return name in fields and not hasattr(get_named_type(fields[name].type), "fields")


def _field_cost(
    node: FieldNode,
    parent: GraphQLNamedType,
    weight: int,
    limits: AccountLimits,
    variables: dict[str, Any],
    fragments: dict[str, FragmentDefinitionNode],
    page: int | None,
) -> int:
    """A field's weight plus what it selects, times how many of it may come back.

    `page` is the bound a parent's `limit` puts on a list below it (items in an ItemsResponse).
    """
    definition = getattr(parent, "fields", {}).get(node.name.value)
    if definition is None:  # __typename and the like
        return weight
    returned = get_nullable_type(definition.type)
    count = 1
    if isinstance(returned, GraphQLList):
        # Monday counts what may come back: the ids asked for, else the limit, else a page.
        count = _size(node, "ids", variables) or _size(node, "limit", variables) or page or 0
        count = count or limits.list_default
    own_limit = _size(node, "limit", variables)
    inner = 0
    target = get_named_type(definition.type)
    if node.selection_set is not None:
        for child in _fields(node.selection_set, fragments):
            child_def = getattr(target, "fields", {}).get(child.name.value)
            scalar = child_def is None or not hasattr(get_named_type(child_def.type), "fields")
            child_weight = limits.scalar_cost if scalar else limits.object_cost
            # A limit on a non-list field (items_page(limit:)) bounds the list inside it.
            below = own_limit if not isinstance(returned, GraphQLList) else None
            inner += _field_cost(child, target, child_weight, limits, variables, fragments, below)
    return count * (weight + inner)


def _size(node: FieldNode, argument: str, variables: dict[str, Any]) -> int | None:
    for arg in node.arguments or ():
        if arg.name.value == argument:
            return _count(arg.value, variables, argument == "ids")
    return None


def _count(value: ValueNode, variables: dict[str, Any], is_list: bool) -> int | None:
    if isinstance(value, VariableNode):
        raw = variables.get(value.name.value)
        if is_list:
            return len(raw) if isinstance(raw, list) else (1 if raw is not None else None)
        return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else None
    if isinstance(value, ListValueNode):
        return len(value.values)
    if isinstance(value, IntValueNode):
        return int(value.value) if not is_list else 1
    return 1 if is_list else None


def run(
    plan: Prepared, variables: dict[str, Any] | None, context: Any
) -> AwaitableOrValue[ExecutionResult]:
    """Execute a plan: synchronously, unless it holds a coroutine field (create_webhook)."""
    return execute(
        SCHEMA,
        plan.document,
        context_value=context,
        variable_values=variables,
        operation_name=plan.operation.name.value if plan.operation.name else None,
    )


def format_error(error: GraphQLError) -> dict[str, Any]:
    """An error as Monday shows it, always with `extensions.code`."""
    formatted: dict[str, Any] = dict(error.formatted)
    extensions = dict(formatted.get("extensions") or {})
    if "code" not in extensions:
        original = error.original_error
        if original is not None and not isinstance(original, ApiError | GraphQLError):
            # A bug in the emulator, not a client mistake: say so loudly.
            log.error("emulator resolver failed", exc_info=original)
            extensions = {"code": INTERNAL_ERROR, "status_code": 500}
        elif error.path is None:
            # Without a path the error is about the request: variables that do not fit.
            extensions = {"code": INVALID_VARIABLES}
        else:
            extensions = {"code": INTERNAL_ERROR, "status_code": 500}
    formatted["extensions"] = extensions
    return formatted
