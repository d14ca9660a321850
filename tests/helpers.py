"""Helpers shared by test modules of several apps."""

from django.contrib.messages.storage.cookie import MessageSerializer
from django.core import signing


def walk(client, url: str, data: dict) -> list:
    """POST `data` to `url` and follow every redirect by hand, so each response's own
    Set-Cookie headers can be read (the test client's follow=True keeps only the last)."""
    responses = [client.post(url, data)]
    while responses[-1].status_code in (301, 302, 303):
        responses.append(client.get(responses[-1]["Location"]))
    return responses


def cookie_texts(response) -> list[str]:
    """Every cookie the response sets, as sent and, for Django's signed message cookie (which
    may be compressed), as decoded: a secret in it must be found either way."""
    texts = []
    for morsel in response.cookies.values():
        texts.append(morsel.OutputString())
        try:
            decoded = signing.get_cookie_signer(salt="django.contrib.messages").unsign_object(
                morsel.value, serializer=MessageSerializer
            )
        except (signing.BadSignature, ValueError):
            continue
        texts.append(str([str(message) for message in decoded or []]))
    return texts


def assert_no_cookie_holds(responses, secret: str) -> None:
    for response in responses:
        where = getattr(response, "request", {}).get("PATH_INFO")
        for text in cookie_texts(response):
            assert secret not in text, f"a cookie set by {where} holds the secret"
