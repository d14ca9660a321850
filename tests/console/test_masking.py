"""Masking and the search box's guesses: pure functions, no database."""

import pytest

from console.interpret import search_keys_guess
from logs.masking import (
    MASK,
    Masker,
    addresses_hidden,
    addresses_of,
    email_masked,
    key_is_sensitive,
    masker_build,
    number_masked,
)

WORDS = ("token", "password", "secret", "code", "otp")


@pytest.mark.parametrize(
    "key", ["reset_token", "resetToken", "RESET-TOKEN", "password", "otp", "verificationCode"]
)
def test_keys_naming_a_secret_are_sensitive(key):
    assert key_is_sensitive(key, WORDS)


@pytest.mark.parametrize("key", ["first_name", "order_id", "email", "url"])
def test_ordinary_keys_are_not(key):
    assert not key_is_sensitive(key, WORDS)


def test_a_reset_link_keeps_host_and_path_and_loses_the_token():
    masker = masker_build(sources=[{"reset_token": "abc123XYZ"}], words=WORDS)
    assert (
        masker.text("Go to https://x.example/reset?token=abc123XYZ now")
        == f"Go to https://x.example/reset?token={MASK} now"
    )


def test_every_spelling_of_a_secret_is_masked():
    secret = "a&b c/d+e"
    masker = masker_build(sources=[{"password": secret}], words=WORDS)
    for spelling in (secret, "a&amp;b c/d+e", "a%26b%20c%2Fd%2Be", "a%26b+c%2Fd%2Be"):
        assert masker.text(f"[{spelling}]") == f"[{MASK}]"


def test_nested_secrets_and_numbers_are_found_and_fields_masked_whole():
    request = {"to": {"id": "u1"}, "parameters": {"auth": {"otp": 482913}, "note": "code 482913"}}
    masker = masker_build(sources=[request], words=WORDS)
    assert masker.data(request) == {
        "to": {"id": "u1"},
        "parameters": {"auth": {"otp": MASK}, "note": f"code {MASK}"},
    }


def test_short_secrets_are_masked_under_their_key_only():
    masker = masker_build(sources=[{"code": "42"}], words=WORDS)
    assert masker.data({"code": "42", "text": "42 apples"}) == {"code": MASK, "text": "42 apples"}


def test_an_empty_word_list_or_a_reveal_masks_nothing():
    assert masker_build(sources=[{"token": "abcdef"}], words=[]).text("abcdef") == "abcdef"
    assert Masker().data({"token": "abcdef"}) == {"token": "abcdef"}


@pytest.mark.parametrize(
    ("pasted", "first"),
    [
        ("0b8e5a53-4a9c-4f4e-9a57-1d2f3c4b5a6e", "tracking_id"),
        ("alice@example.com", "email"),
        ("alice@exa", "email_prefix"),
        ("+1 (415) 555-0100", "number"),
        ("4155550100", "number"),
        ("usr_123", "user_id"),
        ("SM0123456789abcdef", "user_id"),
    ],
)
def test_the_box_guesses_the_likeliest_key_first(pasted, first):
    assert search_keys_guess(pasted)[0].name == first


def test_a_value_that_could_be_several_keys_tries_each():
    names = [key.name for key in search_keys_guess("SM0123456789abcdef")]
    assert names == ["user_id", "provider_message_id", "email_prefix"]
    assert search_keys_guess("  ") == []


# -- addresses (Account.viewer_addresses, ApiKey.masked) ----------------------------------------


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("olivia@example.com", "o•••@example.com"),
        ("o@example.com", "o•••@example.com"),
        ("not-an-address", "•••"),
        ("", ""),
    ],
)
def test_an_email_address_keeps_its_first_letter_and_domain(address, shown):
    assert email_masked(address) == shown


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("+447700903217", "+44 ••• ••3217"),
        ("+14155550100", "+1 ••• ••0100"),
        ("+33612345678", "+33 ••• ••5678"),
        ("12", "•••"),
    ],
)
def test_a_number_keeps_its_country_and_last_four_digits(number, shown):
    assert number_masked(number) == shown


def test_every_address_in_every_string_is_masked_in_any_spelling():
    known = addresses_of(
        email="olivia@example.com",
        number="+14155550100",
        request={"user": {"id": "u1", "number": "(415) 555-0100"}},
    )
    masker = addresses_hidden(Masker(), known=known)
    payload = {
        "To": "+14155550100",
        "to_plain": "14155550100",
        "spelled": "call (415) 555-0100",
        "url": "https://t.example/o?r=olivia%40example.com&n=%2B14155550100",
        "cc": ["bob@example.org"],
        "sent_at": "2026-12-06T03:00:00+00:00",
    }
    shown = str(masker.data(payload))
    for full in ("olivia", "bob@", "4155550100", "555-0100"):
        assert full not in shown
    assert "o•••%40example.com" in shown and "b•••@example.org" in shown
    assert "2026-12-06T03:00:00+00:00" in shown  # times are not numbers to mask
