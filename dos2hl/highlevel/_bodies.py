"""The two kinds of HighLevel body: requests forbid unknown fields, responses keep them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["DataType", "Request", "Response"]

DataType = Literal["TEXT", "LARGE_TEXT", "NUMERICAL", "PHONE", "MONETORY", "CHECKBOX", "SINGLE_OPTIONS",
                   "MULTIPLE_OPTIONS", "DATE", "TEXTBOX_LIST", "FILE_UPLOAD", "RADIO", "EMAIL"]


class Request(BaseModel):
    """A request body: unknown fields are an error; ``None`` fields are not sent."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True)

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class Response(BaseModel):
    """A response body: extra fields kept (``model_extra``)."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True, populate_by_name=True)
