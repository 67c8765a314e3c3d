"""Pieces every request model of the domain shares."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from hanoipay.validation import is_storable


def _storable(value: str) -> str:
    """Refuse text PostgreSQL cannot store (NUL, lone surrogates)."""
    if not is_storable(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)]
ShortText = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_storable)]
LongText = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_storable)]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")]
Id = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


class Strict(BaseModel):
    """Requests refuse unknown fields, so a typo is an error, not a silently ignored option."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """Responses are read from ORM objects."""

    model_config = ConfigDict(from_attributes=True)
