"""Monday's error shapes (2025-01+ format) and the exceptions resolvers raise."""

from __future__ import annotations

from typing import Any

COLUMN_VALUE_HELP = (
    "Please check our API documentation for the correct data structure for this column. "
    "https://developer.monday.com/api-reference/docs/change-column-values"
)


class ApiError(Exception):
    """An application error: HTTP 200, the failing field null, `extensions.code` set.

    graphql-core copies `extensions` onto the GraphQLError it builds around us.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int = 200,
        error_data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.error_data = error_data

    @property
    def extensions(self) -> dict[str, Any]:
        """The `extensions` object of the error as Monday sends it."""
        ext: dict[str, Any] = {"code": self.code, "status_code": self.status_code}
        if self.error_data is not None:
            ext["error_data"] = self.error_data
        return ext


class BareError(Exception):
    """An error Monday reports with a message and nothing else (no code, no data): the
    whole response becomes {"errors": [{"message": ...}]}."""


class ColumnValueError(ApiError):
    """A value a column does not accept (ColumnValueException)."""

    def __init__(self, column_id: str, column_type: str, reason: str) -> None:
        super().__init__(
            "ColumnValueException",
            f"invalid value - {reason}. {COLUMN_VALUE_HELP}",
            error_data={"column_type": column_type, "column_id": column_id},
        )


def invalid_board(board_id: str) -> ApiError:
    """The board does not exist (or is not visible to the token)."""
    return ApiError(
        "InvalidBoardIdException",
        "The board does not exist. Please check your board ID and try again",
        error_data={"board_id": board_id},
    )


def invalid_column(column_id: str, board_id: str) -> ApiError:
    """A column id the board does not have."""
    return ApiError(
        "InvalidColumnIdException",
        "This column ID doesn't exist for the board",
        error_data={"column_id": column_id, "board_id": board_id},
    )


def item_not_found(item_id: str, board_id: str | None = None) -> ApiError:
    """A missing or deleted item (ResourceNotFoundException)."""
    where = f" in board {board_id}" if board_id else ""
    return ApiError(
        "ResourceNotFoundException",
        f"Item with id {item_id} was not found{where}",
        status_code=404,
        error_data={"item_id": item_id},
    )


def item_name_length(length: int) -> ApiError:
    """An item name outside 1-255 characters."""
    return ApiError(
        "ItemNameTooLongException",
        "Item name must be between 1 and 255 characters long",
        error_data={"item_name_length": length},
    )


def invalid_argument(message: str) -> ApiError:
    """A bad argument that Monday reports as InvalidArgumentException."""
    return ApiError("InvalidArgumentException", message)


def json_parse(message: str) -> ApiError:
    """A JSON argument that is not a JSON-encoded object."""
    return ApiError("JsonParseException", message, status_code=400)


def error_body(code: str, message: str, request_id: str, **extensions: Any) -> dict[str, Any]:
    """A whole response body holding one request-level error (no data, no path)."""
    return {
        "errors": [{"message": message, "extensions": {"code": code, **extensions}}],
        "extensions": {"request_id": request_id},
    }
