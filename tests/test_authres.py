"""Authentication-Results are read as written, and alignment uses the Public Suffix List
(issue 12, item 7).

- RFC 8601 §2.2: an Authentication-Results header carries no RFC 2047 encoded-words. Decoding
  them let "=?us-ascii?q?mx=2Ehome=2Eexample?=" (added by the sender) pass for the trusted
  authserv-id mx.home.example.
- RFC 7489 §3.1 relaxed alignment compares organisational domains (§3.2: one label below the
  public suffix). Suffix matching let ``header.d=com`` align with facebookmail.com.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.config import package_file
from watcher.pipeline.authenticity import aligned, authenticate, organisational_domain
from watcher.pipeline.message import parse
from watcher.pipeline.rules import RulePack, load_rules

TRUSTED = ("mx.home.example",)
CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def meta_mail(*auth: str, from_: str = "Facebook <notification@facebookmail.com>") -> bytes:
    lines = [f"Authentication-Results: {value}" for value in auth]
    lines += [
        f"From: {from_}",
        "To: ben.sample@example.net",
        "Subject: Your objection request",
        "Date: Fri, 20 Sep 2024 10:05:00 -0700",
        "",
        "This message was sent to ben.sample@example.net.",
    ]
    return "\r\n".join(lines).encode()


def test_encoded_word_authserv_id_is_not_the_trusted_server(pack: RulePack) -> None:
    """The sender wrote the only Authentication-Results, with an encoded authserv-id; the real
    server added none. It is from an untrusted server, so the verdict is none, not pass."""
    forged = (
        "=?us-ascii?q?mx=2Ehome=2Eexample?=; dkim=pass header.d=facebookmail.com; "
        "dmarc=pass header.from=facebookmail.com"
    )
    message = parse(meta_mail(forged))
    assert message.auth_results == (forged,)  # as written, not decoded
    verdict = authenticate(message, True, pack, TRUSTED)
    assert verdict.result == "none", verdict.reasons
    assert "1 from untrusted servers ignored" in verdict.reasons[0]


def test_encoded_words_inside_results_are_not_decoded(pack: RulePack) -> None:
    """An encoded header.d is no domain: it cannot align with the From domain."""
    value = "mx.home.example; dkim=pass header.d==?us-ascii?q?facebookmail=2Ecom?="
    message = parse(meta_mail(value))
    assert message.auth_results == (value,)
    assert authenticate(message, True, pack, TRUSTED).result == "fail"


@pytest.mark.parametrize(
    ("signer", "from_domain"),
    [
        ("com", "facebookmail.com"),  # a public suffix is no organisational domain
        ("co.uk", "facebook.co.uk"),
        ("github.io", "meta.github.io"),  # private section of the list: each user's own
        ("other.github.io", "meta.github.io"),
        ("evil.example", "facebookmail.com"),
        ("facebookmail.com.evil.example", "facebookmail.com"),
        ("", "facebookmail.com"),
        ("facebookmail.com", ""),
    ],
)
def test_not_aligned(signer: str, from_domain: str) -> None:
    assert not aligned(signer, from_domain)


@pytest.mark.parametrize(
    ("signer", "from_domain"),
    [
        ("mail.instagram.com", "instagram.com"),
        ("instagram.com", "mail.instagram.com"),
        ("mail.instagram.com", "mail.instagram.com"),
        ("facebookmail.com", "facebookmail.com"),
        ("FacebookMail.COM.", "facebookmail.com"),
        ("a.b.example.co.uk", "c.example.co.uk"),  # same organisational domain example.co.uk
        ("mx.home.example", "home.example"),  # unknown TLD: the default rule "*"
    ],
)
def test_aligned(signer: str, from_domain: str) -> None:
    assert aligned(signer, from_domain)


def test_organisational_domains() -> None:
    assert organisational_domain("mail.instagram.com") == "instagram.com"
    assert organisational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organisational_domain("com") is None
    assert organisational_domain("") is None


@pytest.mark.parametrize(
    ("a_label", "u_label"),
    [("xn--55qx5d.cn", "公司.cn"), ("xn--p1ai", "рф"), ("xn--mgbaam7a8h", "امارات")],
)
def test_punycode_domains_meet_the_same_idn_rules_as_unicode_ones(
    a_label: str, u_label: str
) -> None:
    """The list keeps IDN rules in Unicode only: an A-label domain is decoded first, so a
    public suffix written in punycode is still one and aligns with nothing."""
    assert organisational_domain(a_label) is None
    assert organisational_domain(u_label) is None
    assert organisational_domain(f"mail.shop.{a_label}") == f"shop.{u_label}"
    assert aligned(f"mail.shop.{a_label}", f"shop.{u_label}")
    assert not aligned(f"shop.{a_label}", f"other.{a_label}")
    assert not aligned(a_label, a_label)
    # A label that is not valid punycode is kept: it matches no rule and breaks nothing.
    assert organisational_domain("mail.xn--zz.com") == "xn--zz.com"


def test_dkim_signed_by_a_public_suffix_fails(pack: RulePack) -> None:
    message = parse(meta_mail("mx.home.example; dkim=pass header.d=com"))
    verdict = authenticate(message, True, pack, TRUSTED)
    assert verdict.result == "fail"
    assert "no DKIM/DMARC pass aligned with facebookmail.com" in verdict.reasons[0]


def test_dkim_by_the_parent_domain_aligns_with_a_subdomain_sender(pack: RulePack) -> None:
    message = parse(
        meta_mail(
            "mx.home.example; dkim=pass header.d=instagram.com",
            from_="Instagram <no-reply@mail.instagram.com>",
        )
    )
    assert authenticate(message, True, pack, TRUSTED).result == "pass"


def test_the_suffix_list_is_bundled_and_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network at run time: with sockets refused, a fresh process still answers."""
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network use')\n"
        "socket.socket = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from watcher.pipeline.authenticity import aligned, organisational_domain\n"
        "assert organisational_domain('x.mail.instagram.com') == 'instagram.com'\n"
        "assert not aligned('com', 'facebookmail.com')\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert socket.socket is not None  # this process untouched


@pytest.mark.parametrize("top", ['"mx.home.example"', '"MX.HOME.EXAMPLE"', '"mx.home\\.example"'])
def test_a_quoted_authserv_id_is_the_trusted_servers_own(top: str, pack: RulePack) -> None:
    """RFC 8601 §2.2 allows the authserv-id as a quoted-string. The trusted server's own
    (failing) verdict on top must not be passed over for a forged pass below it (trial 2)."""
    message = parse(
        meta_mail(
            f"{top}; dkim=fail header.d=facebookmail.com; dmarc=fail header.from=facebookmail.com",
            "mx.home.example; dkim=pass header.d=facebookmail.com; dmarc=pass "
            "header.from=facebookmail.com",
        )
    )
    assert authenticate(message, True, pack, TRUSTED).result != "pass"
