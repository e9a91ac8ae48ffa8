"""Trial 2, item 3: an RFC 2047 encoded display name that decodes to a special character.

``From: =?utf-8?b?RmFjZTtib29r?= <security@facebookmail-support.com>`` ("Face;book") was
decoded before the address list was parsed, so the ";" ended a group and the mail had no
sender: kind other, not suspicious, no warning. An encoded-word hides its specials
(RFC 2047 §5): the address list is read on the raw value and only the display name is
decoded. An ordinary encoded ``"Müller, Hans"`` was misread the same way.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main
from watcher.pipeline.message import parse

LOOKALIKE = "security@facebookmail-support.com"
# The trial's names: each hides one special of RFC 5322 §3.2.3 in an encoded-word.
NAMES = ["Face;book", 'Fa"ce', "Fa<ce", "Face, book", "Meta: x", "a@b.c", "Fa(ce", "Fa\\ce"]


def _b(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def _mail(from_value: str, to_value: str = "anna.beispiel@example.org") -> bytes:
    return (
        "Return-Path: <x@facebookmail-support.com>\n"
        "Authentication-Results: mx.home.example; dkim=pass header.d=facebookmail-support.com "
        "header.s=s1; spf=pass smtp.mailfrom=facebookmail-support.com; dmarc=pass (p=REJECT) "
        "header.from=facebookmail-support.com\n"
        f"Date: Mon, 10 Jun 2024 11:00:00 -0700\nTo: {to_value}\nFrom: {from_value}\n"
        "Subject: Dein Einspruch\nMessage-ID: <e11@x>\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        "Hallo!\n\nWir haben deinen Antrag geprüft und erkennen deinen Einspruch an. Das "
        "bedeutet, dein Antrag wird künftig berücksichtigt.\n\nIm Privacy Center findest du "
        "weitere Informationen über generative KI:\n"
        "https://privacycenter.instagram.com/privacy/genai\n\nPrivacy Operations\n\n"
        "This message was sent to anna.beispiel@example.org.\n"
    ).encode()


@pytest.mark.parametrize("name", NAMES)
def test_an_encoded_special_stays_in_the_display_name(name: str) -> None:
    message = parse(_mail(f"{_b(name)} <{LOOKALIKE}>"))
    assert (message.from_name, message.from_addr) == (name, LOOKALIKE)


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?q?M=C3=BCller=2C_Hans?= <hans@example.de>",
        _b("Müller, Hans") + " <hans@example.de>",
        # Split over two words (RFC 2047 §6.2: the white space between them is dropped).
        "=?utf-8?q?M=C3=BCller=2C?= =?utf-8?q?_Hans?= <hans@example.de>",
        # Inside a quoted string, where senders put them although RFC 2047 §5 says not to.
        '"=?utf-8?q?M=C3=BCller=2C_Hans?=" <hans@example.de>',
    ],
)
def test_an_ordinary_encoded_name_with_a_comma_keeps_its_sender(value: str) -> None:
    message = parse(_mail(value))
    assert (message.from_name, message.from_addr) == ("Müller, Hans", "hans@example.de")


def test_a_decoded_quote_inside_a_quoted_string_does_not_end_it() -> None:
    message = parse(_mail('"Face=?utf-8?q?=22?=book" <' + LOOKALIKE + ">"))
    assert (message.from_name, message.from_addr) == ('Face"book', LOOKALIKE)


def test_recipients_behind_an_encoded_name_with_specials_are_all_read() -> None:
    to = f"{_b('Beispiel, Anna')} <anna.beispiel@example.org>, {_b('x; y')} <ben@example.net>"
    message = parse(_mail(f"Facebook <{LOOKALIKE}>", to))
    assert message.recipients == ("anna.beispiel@example.org", "ben@example.net")


def test_plain_and_simply_encoded_names_read_as_before() -> None:
    for value, expected in [
        (f"Facebook <{LOOKALIKE}>", "Facebook"),
        (f'"Meta Privacy" <{LOOKALIKE}>', "Meta Privacy"),
        (f"=?utf-8?q?Meta_Privacy?= <{LOOKALIKE}>", "Meta Privacy"),
        (f"Hans =?utf-8?q?M=C3=BCller?= <{LOOKALIKE}>", "Hans Müller"),
        (f"{_b('Dr. Hans')} <{LOOKALIKE}>", "Dr. Hans"),
    ]:
        message = parse(_mail(value))
        assert (message.from_name, message.from_addr) == (expected, LOOKALIKE), value
    # The ambiguity guard still reads the raw commas: two mailboxes without a comma.
    message = parse(_mail("notification@facebookmail.com <x@attacker.example>"))
    assert (message.from_name, message.from_addr) == ("", "")


@pytest.mark.parametrize("name", NAMES)
def test_the_look_alike_with_an_encoded_special_is_suspicious(name: str, tmp_path: Path) -> None:
    mail = tmp_path / "lookalike.eml"
    mail.write_bytes(_mail(f"{_b(name)} <{LOOKALIKE}>"))
    done = CliRunner().invoke(
        main,
        ["scan", "--json", "--trusted-authserv-id", "mx.home.example", str(mail)],
        catch_exceptions=False,
    )
    result = json.loads(done.output.splitlines()[0])
    assert result["suspicious"] is True, result
    assert result["authenticity"] == "fail"
    assert any("facebookmail-support.com" in r for r in result["authenticity_reasons"])
