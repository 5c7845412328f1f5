"""Conformance with monday.com's official schema (shared/monday/schema-2026-10.graphql).

`validate_against_official` checks a document the listener sends; `schema_differences`
checks that the emulator's own schema is a faithful subset of the official one.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    parse,
    print_ast,
    validate,
)
from graphql.error import GraphQLSyntaxError

ENV_VAR = "NPD_SYNC_MONDAY_SCHEMA"
FILE_NAME = "schema-2026-10.graphql"
_REPO = Path(__file__).resolve().parents[2]


class OfficialSchemaMissing(FileNotFoundError):
    """The official schema file is not on this machine; the message says where it looked."""


def official_schema_path() -> Path:
    """Where the official SDL is: $NPD_SYNC_MONDAY_SCHEMA when set, else
    <repo>/../shared/monday/, else /work/shared/monday/ (CI clones the repo elsewhere
    but keeps shared there). Raises OfficialSchemaMissing naming the paths tried."""
    if os.environ.get(ENV_VAR):
        candidates = [Path(os.environ[ENV_VAR])]  # set on purpose: no silent fallback
    else:
        candidates = [
            _REPO.parent / "shared" / "monday" / FILE_NAME,
            Path("/work/shared/monday") / FILE_NAME,
        ]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise OfficialSchemaMissing(f"monday.com's official schema not found (tried {tried})")


@functools.cache
def official_schema() -> GraphQLSchema:
    """The official schema, built once per process (it is 385 KB)."""
    return build_schema(official_schema_path().read_text(encoding="utf-8"))


def validate_against_official(document: str) -> list[str]:
    """Messages of every problem monday.com would report for `document` (empty: valid).

    Raises OfficialSchemaMissing when the official schema file is absent.
    """
    schema = official_schema()
    try:
        ast = parse(document)
    except GraphQLSyntaxError as exc:
        return [exc.message]
    return [error.message for error in validate(schema, ast)]


def schema_differences(ours: GraphQLSchema, official: GraphQLSchema) -> list[str]:
    """Everything in `ours` that is not exactly as in `official`: types and their kind,
    interfaces, fields and their types, arguments with types and defaults, input fields,
    enum values. Descriptions are ignored."""
    problems: list[str] = []
    for name, ours_type in ours.type_map.items():
        if name.startswith("__"):
            continue
        theirs = official.type_map.get(name)
        if theirs is None:
            problems.append(f"type {name} does not exist")
        elif type(theirs) is not type(ours_type):
            problems.append(f"type {name} is {_kind(ours_type)}, not {_kind(theirs)}")
        else:
            problems.extend(_type_differences(ours_type, theirs))
    for kind in ("query_type", "mutation_type", "subscription_type"):
        ours_root, theirs_root = getattr(ours, kind), getattr(official, kind)
        if ours_root is not None and (theirs_root is None or theirs_root.name != ours_root.name):
            problems.append(f"schema {kind} is {ours_root.name}, not {theirs_root}")
    return problems


def _type_differences(ours: GraphQLNamedType, theirs: GraphQLNamedType) -> list[str]:
    problems: list[str] = []
    name = ours.name
    if isinstance(ours, GraphQLObjectType | GraphQLInterfaceType):
        assert isinstance(theirs, GraphQLObjectType | GraphQLInterfaceType)
        missing = {i.name for i in ours.interfaces} - {i.name for i in theirs.interfaces}
        problems += [f"{name} does not implement {i}" for i in sorted(missing)]
        for field_name, field in ours.fields.items():
            other = theirs.fields.get(field_name)
            if other is None:
                problems.append(f"field {name}.{field_name} does not exist")
            else:
                problems += _field_differences(f"{name}.{field_name}", field, other)
    elif isinstance(ours, GraphQLInputObjectType):
        assert isinstance(theirs, GraphQLInputObjectType)
        for field_name, input_field in ours.fields.items():
            other_input = theirs.fields.get(field_name)
            if other_input is None:
                problems.append(f"input field {name}.{field_name} does not exist")
            else:
                problems += _input_differences(f"{name}.{field_name}", input_field, other_input)
        required = {n for n, f in theirs.fields.items() if _required(f) and n not in ours.fields}
        problems += [f"required input field {name}.{n} is missing" for n in sorted(required)]
    elif isinstance(ours, GraphQLEnumType):
        assert isinstance(theirs, GraphQLEnumType)
        missing = set(ours.values) - set(theirs.values)
        problems += [f"enum value {name}.{v} does not exist" for v in sorted(missing)]
    return problems


def _field_differences(where: str, ours: GraphQLField, theirs: GraphQLField) -> list[str]:
    problems = []
    if str(ours.type) != str(theirs.type):
        problems.append(f"field {where} is {ours.type}, not {theirs.type}")
    for arg_name, arg in ours.args.items():
        other = theirs.args.get(arg_name)
        if other is None:
            problems.append(f"argument {where}({arg_name}) does not exist")
        else:
            problems += _input_differences(f"{where}({arg_name})", arg, other)
    # A required argument we left out would make our documents invalid on Monday.
    required = {n for n, a in theirs.args.items() if _required(a) and n not in ours.args}
    problems += [f"required argument {where}({n}) is missing" for n in sorted(required)]
    return problems


def _input_differences(
    where: str,
    ours: GraphQLArgument | GraphQLInputField,
    theirs: GraphQLArgument | GraphQLInputField,
) -> list[str]:
    problems = []
    if str(ours.type) != str(theirs.type):
        problems.append(f"{where} is {ours.type}, not {theirs.type}")
    if _default(ours) != _default(theirs):
        problems.append(f"{where} defaults to {_default(ours)}, not {_default(theirs)}")
    return problems


def _default(value: GraphQLArgument | GraphQLInputField) -> str | None:
    node = value.ast_node
    return print_ast(node.default_value) if node and node.default_value else None


def _required(value: GraphQLArgument | GraphQLInputField) -> bool:
    return str(value.type).endswith("!") and _default(value) is None


def _kind(named: GraphQLNamedType) -> str:
    kind = type(named).__name__.removeprefix("GraphQL").removesuffix("Type")
    kind = {"InputObject": "input", "Object": "type"}.get(kind, kind.lower())
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
