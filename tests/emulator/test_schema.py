"""The emulator's schema is a faithful subset of monday.com's; documents validate on both."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema

from emulator import conformance, engine

from .helpers import LOOKUP, MUTATION

# The documents the listener's client sends (from the issue), with $i2 declared.
OTHERS = [
    "query { me { id name email } version { kind value } versions { kind value display_name } }",
    "query ($ids: [ID!]) { boards(ids: $ids) { id name state board_kind items_count"
    " columns { id title type settings archived }"
    " items_page(limit: 100) { cursor items { id } } } }",
    "query ($ids: [ID!]) { items(ids: $ids, limit: 100) { id name state board { id }"
    " created_at updated_at column_values { id type text value"
    " ... on EmailValue { email label } ... on PhoneValue { phone country_short_name }"
    " ... on StatusValue { index label } ... on LinkValue { url url_text }"
    " ... on DateValue { date time } ... on NumbersValue { number } } } }",
    "query ($c: String!) { next_items_page(cursor: $c, limit: 500) { cursor items { id } } }",
    "mutation ($b: ID!, $i: ID) { change_simple_column_value(board_id: $b, item_id: $i,"
    ' column_id: "text", value: "x") { id } change_column_value(board_id: $b, item_id: $i,'
    ' column_id: "text", value: "\\"x\\"") { id } delete_item(item_id: $i) { id state } }',
    'mutation ($b: ID!) { create_column(board_id: $b, id: "extra", title: "Extra",'
    ' column_type: text) { id type } create_board(board_name: "b", board_kind: public) { id } }',
    "mutation ($b: ID!, $u: String!, $e: WebhookEventType!, $c: JSON, $i: ID!) {"
    " create_webhook(board_id: $b, url: $u, event: $e, config: $c) { id board_id event config }"
    " delete_webhook(id: $i) { id } }",
    "query ($b: ID!) { webhooks(board_id: $b, app_webhooks_only: false) { id event config } }",
    'query ($b: [ID!], $i: [ID!]) { boards(ids: $b) { activity_logs(from: "2026-01-01T00:00:00Z",'
    ' to: "2026-12-31T00:00:00Z", column_ids: ["phone"], group_ids: ["topics"], item_ids: $i,'
    ' user_ids: ["1"], limit: 100, page: 2)'
    " { id event entity user_id created_at data account_id } } }",
    # The daily call limit and today's usage (issue 17).
    "query { platform_api { daily_limit { base total }"
    " daily_analytics { last_updated by_day { day usage } } } }",
    # Connect boards columns (issue 18): created connected, read through BoardRelationValue.
    'mutation ($b: ID!, $d: JSON) { create_column(board_id: $b, title: "Company",'
    " column_type: board_relation, defaults: $d) { id type settings } }",
    "query ($ids: [ID!]) { items(ids: $ids, limit: 100) { id"
    " column_values(types: [board_relation]) { id type text value"
    " ... on BoardRelationValue { display_value linked_item_ids linked_items { id name } } } } }",
]


@pytest.fixture(scope="module")
def official() -> GraphQLSchema:
    try:
        return conformance.official_schema()
    except conformance.OfficialSchemaMissing as exc:
        pytest.skip(f"cannot check conformance: {exc}")


def ours() -> GraphQLSchema:
    sdl = resources.files("emulator").joinpath("schema.graphql").read_text("utf-8")
    return build_schema(sdl)


def test_emulator_schema_is_a_faithful_subset_of_the_official_one(official: GraphQLSchema) -> None:
    assert conformance.schema_differences(ours(), official) == []


def test_subset_check_catches_every_kind_of_difference(official: GraphQLSchema) -> None:
    wrong = build_schema(
        """
        type Query { me: User!  boards(ids: [ID], limit: Int = 10): [Board]  nope: Int }
        type User { id: ID! name: String }
        interface Board { id: ID! }
        enum State { active gone }
        input ItemsPageByColumnValuesQuery { column_id: String }
        type Mutation { archive_item(item_id: ID!): User  create_item(board_id: ID!): User }
        """
    )
    problems = conformance.schema_differences(wrong, official)
    expected = [
        "field Query.me is User!, not User",
        "Query.boards(ids) is [ID], not [ID!]",
        "Query.boards(limit) defaults to 10, not 25",
        "field Query.nope does not exist",
        "field User.name is String, not String!",
        "type Board is an interface, not a type",
        "enum value State.gone does not exist",
        "ItemsPageByColumnValuesQuery.column_id is String, not String!",
        "required input field ItemsPageByColumnValuesQuery.column_values is missing",
        "Mutation.archive_item(item_id) is ID!, not ID",
        "required argument Mutation.create_item(item_name) is missing",
    ]
    for problem in expected:
        assert any(problem in p for p in problems), (problem, problems)


@pytest.mark.parametrize("document", [MUTATION, LOOKUP, *OTHERS])
def test_documents_are_valid_on_monday_and_on_the_emulator(
    official: GraphQLSchema, document: str
) -> None:
    assert conformance.validate_against_official(document) == []
    assert isinstance(engine.prepare(document, None), engine.Prepared)


def test_the_issues_mutation_without_i2_declared_is_invalid(official: GraphQLSchema) -> None:
    undeclared = MUTATION.replace(", $i2: ID", "")
    assert conformance.validate_against_official(undeclared) == ["Variable '$i2' is not defined."]
    assert not isinstance(engine.prepare(undeclared, None), engine.Prepared)


def test_validate_against_official_reports_syntax_and_field_errors(
    official: GraphQLSchema,
) -> None:
    assert conformance.validate_against_official("query { me { id }") != []
    problems = conformance.validate_against_official("query { boards { pos } }")
    assert problems == ["Cannot query field 'pos' on type 'Board'."]


def test_env_var_names_the_official_schema(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sdl = tmp_path / "monday.graphql"
    sdl.write_text("type Query { me: Int }")
    monkeypatch.setenv(conformance.ENV_VAR, str(sdl))
    assert conformance.official_schema_path() == sdl


def test_env_var_pointing_nowhere_is_reported_not_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "absent.graphql"
    monkeypatch.setenv(conformance.ENV_VAR, str(missing))
    with pytest.raises(conformance.OfficialSchemaMissing, match=str(missing)):
        conformance.official_schema_path()
