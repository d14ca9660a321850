"""Phone numbers are stored and searched in E.164, so "+1 (415) 555-0100", "4155550100"
and "+14155550100" are one number. Numbers without a country code are read as US/Canada,
as NotificationAPI documents ("E.164 or unformatted US/CA")."""

import phonenumbers

DEFAULT_REGION = "US"


def phone_normalize(raw: str) -> str:
    """The E.164 form of `raw`, or ValueError saying what is wrong with it."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("The phone number is empty.")
    try:
        parsed = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError(
            f"{text!r} is not a phone number: use E.164 (+14155550100) or a US/Canadian "
            "number with its area code."
        ) from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(
            f"{text!r} has the wrong number of digits for its country: use E.164, "
            "e.g. +14155550100."
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
