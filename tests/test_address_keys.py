"""Address keys: how a contact is found from a message's participants whatever spelling they used."""

from __future__ import annotations

import pytest

from vrtx_pipelines.records.addresses import address_key


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("ann.lee@gmail.com", "annlee@gmail.com"),
        ("Ann.Lee+crm@GMail.com", "annlee@gmail.com"),
        ("annlee@googlemail.com", "annlee@gmail.com"),
        ('"Lee, Ann" <A.N.N.Lee@gmail.com>', "annlee@gmail.com"),
        ("J.Smith@Acme.com", "j.smith@acme.com"),
        ("j.smith+invoices@acme.com", "j.smith@acme.com"),
        (" Bob <bob@example.org> ", "bob@example.org"),
    ],
)
def test_spellings_of_one_mailbox_share_a_key(spelling: str, key: str) -> None:
    assert address_key(spelling) == key


def test_dots_outside_gmail_name_different_people() -> None:
    assert address_key("j.smith@acme.com") != address_key("jsmith@acme.com")


@pytest.mark.parametrize(
    "junk", ["", "not an address", "@acme.com", "ann@", "ann@localhost", "+x@gmail.com", "a" * 700]
)
def test_what_is_not_an_address_has_no_key(junk: str) -> None:
    assert address_key(junk) is None
