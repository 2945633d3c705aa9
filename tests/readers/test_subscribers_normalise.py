"""Address validation and identity: no I/O."""

from __future__ import annotations

import pytest

from digest.errors import InvalidEmailError
from digest.readers.addresses import email_hash, normalise


def test_domain_is_lower_cased_and_space_stripped():
    assert normalise("  Ada.Lovelace@Example.COM ") == "Ada.Lovelace@example.com"


@pytest.mark.parametrize("bad", [
    "", "   ", "not-an-address", "a@b", "x@example.com\r\nBcc: victim@example.org",
    "x@example.com\n", "'; DROP TABLE subscribers; --", "a" * 330 + "@example.com",
    "admin'-- @example.com",
])
def test_invalid_addresses_are_refused_with_a_reason(bad):
    with pytest.raises(InvalidEmailError) as exc:
        normalise(bad)
    assert str(exc.value)


def test_line_breaks_are_named():
    with pytest.raises(InvalidEmailError, match="line breaks"):
        normalise("x@example.com\r\nBcc: y@example.com")


@pytest.mark.parametrize("address",
                         ["x@spam.test.example", "x@SPAM.example", "x@mail.spam.example"])
def test_blocked_domains_and_their_subdomains(address):
    with pytest.raises(InvalidEmailError, match="cannot subscribe"):
        normalise(address, ["spam.example", "spam.test.example"])


def test_blocklist_matches_whole_labels_only():
    assert normalise("x@notspam.example", ["spam.example"]) == "x@notspam.example"


def test_hash_ignores_case_and_surrounding_space():
    assert email_hash(" Ada@Example.com", b"key") == email_hash("ada@example.com", b"key")
    assert len(email_hash("ada@example.com", b"key")) <= 64  # fits Subscriber.email_hash
