"""What the OpenAPI schema accepts, the service accepts, and the other way round, for the
characters regex dialects disagree on (`\\s`): schemathesis generates from the schema's
patterns with ECMAScript's meaning, pydantic checks with Rust's, `not_blank` with Python's."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from pgarena.service.schemas import BLANKS, ProductIn, UserIn

SCHEMAS = {"UserIn": UserIn.model_json_schema(), "ProductIn": ProductIn.model_json_schema()}
EMAIL = re.compile(SCHEMAS["UserIn"]["properties"]["email"]["pattern"])
NAME = re.compile(SCHEMAS["ProductIn"]["properties"]["name"]["pattern"])


def accepted(model: type[UserIn] | type[ProductIn], **fields: object) -> bool:
    try:
        model(**fields)
    except ValidationError:
        return False
    return True


def product(name: str) -> dict[str, object]:
    return {"name": name, "price": 100, "sku": "SKU-1"}


@pytest.mark.parametrize("blank", list(BLANKS), ids=lambda c: f"U+{ord(c):04X}")
def test_a_blank_anywhere_in_an_email_is_refused_by_schema_and_service_alike(blank: str) -> None:
    for email in (f"a{blank}b@example.com", f"ab@exa{blank}mple.com", f"ab@example.c{blank}m"):
        assert not EMAIL.search(email)
        assert not accepted(UserIn, username="someone", email=email)


@pytest.mark.parametrize("blank", list(BLANKS), ids=lambda c: f"U+{ord(c):04X}")
def test_a_name_of_blanks_only_is_refused_by_schema_and_service_alike(blank: str) -> None:
    assert not NAME.search(blank * 3)
    assert not accepted(ProductIn, **product(blank * 3))
    # With something else in it, it is a name.
    assert NAME.search(f"{blank}x{blank}")
    assert accepted(ProductIn, **product(f"{blank}x{blank}"))


def test_ordinary_addresses_and_names_pass_both() -> None:
    for email in ("ana@example.com", "o'brien+tag@mail.example.org", "δοκιμή@παράδειγμα.δοκιμή"):
        assert EMAIL.search(email)
        assert accepted(UserIn, username="someone", email=email)
    assert accepted(ProductIn, **product("Ünïcode ☕ mug"))
