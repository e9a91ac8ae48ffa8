"""Build a large synthetic Maildir for the benchmarks: years of ordinary mail with Meta's
privacy mails (and look-alikes) from tests/corpus planted 1 in ``meta_every``.

The Maildir is written once per (size, seed) under ``bench/out/`` and hard-linked into a
Dovecot user's home for each run, so a second run starts in seconds. Files carry Dovecot's
``S=`` (size) and ``W=`` (RFC822.SIZE) fields and a ``dovecot-uidlist`` fixes UID order, so
Dovecot does not have to read every file before the first command is answered.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
CORPUS = REPO / "tests" / "corpus"
sys.path[:0] = [str(REPO), str(REPO / "tests")]

# Sender domains that are not Meta's.
_DOMAINS = [
    "gmx.de",
    "web.de",
    "posteo.de",
    "mailbox.org",
    "example.org",
    "example.net",
    "t-online.de",
    "gmail.com",
    "github.com",
    "notifications.github.com",
    "amazon.de",
    "dhl.de",
    "bahn.de",
    "sparkasse.de",
    "newsletter.heise.de",
    "zalando.de",
    "ikea.com",
    "uni-hamburg.de",
    "stadtwerke.example",
]
# 1 in 200 ordinary mails comes from one of these or has such a subject: real mail from a
# metal workshop or about metadata must not be mistaken for Meta, but costs a fetch when the
# server-side search (a substring match) picks it.
_BAIT_DOMAINS = ("metallbau-schmidt.de", "metadata-services.example")
_BAIT_SUBJECTS = ("Metadaten-Export {n} abgeschlossen", "Metal concert tickets")
BAIT_EVERY = 200
_FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hannah",
    "Ida",
    "Jonas",
    "Karl",
    "Lena",
    "Max",
    "Nina",
    "Oskar",
    "Paul",
    "Rosa",
    "Sophie",
    "Tim",
    "Ulla",
    "Vera",
    "Wim",
    "Demetrios",
    "Mika",
    "Kira",
]
_LAST = [
    "Schmidt",
    "Müller",
    "Weber",
    "Fischer",
    "Becker",
    "Wagner",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
]
_SUBJECTS = (
    "Re: Termin am {n}. Mai",
    "Ihre Bestellung {n} wurde versandt",
    "Rechnung {n}",
    "Meeting notes {n}",
    "Re: Re: Urlaub in Italien",
    "Your order #{n} has shipped",
    "Newsletter {n}: Neues aus der Stadtbibliothek",
    "Kita-Anmeldung für das Kindergartenjahr",
    "Einladung zum Kinoabend",
    "Social media tips for small businesses #{n}",
    "Wikipedia-Spendenaufruf {n}",
    "Fwd: Fotos vom Skiurlaub",
    "Financial report Q{n}",
    "[GitHub] Pull request #{n} merged",
    "Ihr Kontoauszug ist verfügbar",
    "Trial period ends in {n} days",
    "Asia trip itinerary",
    "Jahreshauptversammlung des Vereins",
    "Re: Mietvertrag",
    "Paketankündigung: Ihr Paket kommt heute",
    "Special offer: {n}% off",
    "Die Zeit: Ihr Wochenüberblick",
    "Reminder: dentist appointment",
)
_WORDS = [
    "der",
    "die",
    "das",
    "und",
    "ist",
    "nicht",
    "mit",
    "für",
    "auf",
    "wir",
    "ihr",
    "sie",
    "den",
    "dem",
    "ein",
    "eine",
    "zu",
    "von",
    "im",
    "es",
    "wie",
    "noch",
    "schon",
    "heute",
    "morgen",
    "gestern",
    "bitte",
    "danke",
    "gruß",
    "liebe",
    "viele",
    "termin",
    "woche",
    "projekt",
    "the",
    "and",
    "for",
    "you",
    "with",
    "this",
    "that",
    "have",
    "from",
    "will",
    "are",
    "our",
    "your",
    "about",
    "project",
    "meeting",
    "please",
    "thanks",
    "regards",
    "update",
    "report",
    "invoice",
    "order",
    "delivery",
    "weekend",
    "family",
    "garden",
    "train",
    "ticket",
    "office",
    "budget",
    "review",
    "draft",
    "final",
    "version",
    "attached",
    "document",
    "question",
]


@dataclass(frozen=True)
class Planted:
    """One corpus mail planted in the Maildir: its unique Message-ID and expected label."""

    message_id: str
    corpus_file: str
    kind: str
    suspicious: bool
    sender_is_meta: bool  # From is on one of Meta's sender domains


@dataclass(frozen=True)
class Mailbox:
    """A generated Maildir: where, how many messages, what was planted."""

    path: Path
    messages: int
    planted: tuple[Planted, ...]
    large: int
    total_bytes: int


def meta_sender_domains() -> tuple[str, ...]:
    """Meta's sender domains as rules.yaml lists them."""
    data = yaml.safe_load((REPO / "rules.yaml").read_text(encoding="utf-8"))
    return tuple(d.lower() for d in data["meta"]["sender_domains"])


def corpus_meta_mails() -> list[tuple[str, bytes, dict[str, object]]]:
    """The corpus mails labelled with a kind other than ``other``: Meta privacy mails and
    look-alikes, as (file name, bytes, label)."""
    labels = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))["messages"]
    out = []
    for name in sorted(labels):
        if labels[name]["kind"] != "other":
            out.append((name, (CORPUS / name).read_bytes(), labels[name]))
    return out


def _with_message_id(raw: bytes, message_id: str) -> bytes:
    # Each planted copy needs its own Message-ID, or the watcher rightly treats copies 2..n
    # as duplicates of the first.
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    lines = [ln for ln in lines if not ln.lower().startswith(b"message-id:")]
    lines.insert(0, b"Message-ID: " + message_id.encode())
    return b"\r\n".join(lines) + sep + body


def _text_pool(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    line = 0
    while length < size:
        w = rng.choice(_WORDS)
        words.append(w)
        length += len(w) + 1
        line += len(w) + 1
        if line > 68:
            words.append("\n")
            line = 0
    return " ".join(words).replace(" \n ", "\n")


def _ordinary(rng: random.Random, i: int, when: float, pool: str, blob: bytes) -> bytes:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    bait = i % BAIT_EVERY == 7
    domain = rng.choice(_BAIT_DOMAINS if bait and i % 2 else _DOMAINS)
    subject = rng.choice(_BAIT_SUBJECTS if bait and not i % 2 else _SUBJECTS)
    subject = subject.format(n=rng.randint(1, 9999))
    size = rng.randint(2_000, 60_000)
    start = rng.randrange(0, len(pool) - size - 1)
    body = pool[start : start + size]
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when))
    head = (
        f"Return-Path: <{first.lower()}@{domain}>\n"
        f"Delivered-To: anna@example.org\n"
        f"From: {first} {last} <{first.lower()}.{last.lower()}@{domain}>\n"
        f"To: Anna <anna@example.org>\n"
        f"Subject: {subject}\n"
        f"Date: {date}\n"
        f"Message-ID: <bench-{i}@{domain}>\n"
        f"MIME-Version: 1.0\n"
    )
    if blob:
        # A large attachment: 7-12 MB of base64, sliced from one random blob.
        att = blob[: rng.randint(7_000_000, 12_000_000)]
        b64 = "\n".join(att[k : k + 76].decode() for k in range(0, len(att), 76))
        return (
            head + 'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\n'
            "Content-Type: text/plain; charset=utf-8\n\n" + body[:2000] + "\n--b1\n"
            'Content-Type: application/pdf; name="scan.pdf"\n'
            "Content-Transfer-Encoding: base64\n"
            'Content-Disposition: attachment; filename="scan.pdf"\n\n' + b64 + "\n--b1--\n"
        ).encode()
    if i % 4 == 0:
        html = "<html><body><p>" + body.replace("\n", "</p>\n<p>") + "</p></body></html>"
        return (
            head + 'Content-Type: multipart/alternative; boundary="a1"\n\n--a1\n'
            "Content-Type: text/plain; charset=utf-8\n\n" + body + "\n--a1\n"
            "Content-Type: text/html; charset=utf-8\n\n" + html + "\n--a1--\n"
        ).encode()
    return (head + "Content-Type: text/plain; charset=utf-8\n\n" + body + "\n").encode()


def _maildir_name(n: int, when: float, data: bytes) -> str:
    vsize = len(data.replace(b"\r\n", b"\n")) + data.count(b"\n")
    return f"{int(when)}.M{n}P1.bench,S={len(data)},W={vsize}"


def generate(
    messages: int,
    seed: int = 1,
    meta_every: int = 200,
    large_every: int = 500,
    out: Path | None = None,
) -> Mailbox:
    """Write (or reuse) a Maildir of *messages* messages spread over 15 years.

    Every *meta_every*-th message is a corpus mail of a non-``other`` kind (cycled, with a
    unique Message-ID); every *large_every*-th ordinary message carries a 7-12 MB attachment;
    the rest are 2-60 KB. Returns the Maildir and what was planted.
    """
    path = out or OUT / f"maildir-{messages}-s{seed}"
    manifest = path / "bench-manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        return Mailbox(
            path,
            data["messages"],
            tuple(Planted(**p) for p in data["planted"]),
            data["large"],
            data["total_bytes"],
        )
    if path.exists():
        shutil.rmtree(path)
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("cur", "new", "tmp"):
        (tmp / sub).mkdir(parents=True)
    rng = random.Random(seed)
    pool = _text_pool(rng, 3_000_000)
    blob = __import__("base64").b64encode(rng.randbytes(9_000_000))
    meta = corpus_meta_mails()
    meta_domains = meta_sender_domains()
    start = time.time() - 15 * 365 * 86400
    step = 15 * 365 * 86400 / max(messages, 1)
    planted: list[Planted] = []
    uidlist: list[str] = []
    large = 0
    total = 0
    for n in range(1, messages + 1):
        when = start + n * step
        if n % meta_every == meta_every // 2:
            name, raw, label = meta[len(planted) % len(meta)]
            mid = f"<bench-meta-{n}-{len(planted)}@bench.example>"
            data = _with_message_id(raw, mid)
            sender = data.split(b"\nFrom:", 1)[1].split(b"\n", 1)[0].decode("latin-1").lower()
            domain = sender.rsplit("@", 1)[-1].strip(" >\r")
            planted.append(
                Planted(
                    mid,
                    name,
                    str(label["kind"]),
                    bool(label.get("suspicious", False)),
                    any(domain == d or domain.endswith("." + d) for d in meta_domains),
                )
            )
        else:
            is_large = n % large_every == 0
            large += is_large
            data = _ordinary(rng, n, when, pool, blob if is_large else b"")
        base = _maildir_name(n, when, data)
        (tmp / "cur" / f"{base}:2,S").write_bytes(data)
        uidlist.append(f"{n} :{base}")
        total += len(data)
    # Dovecot's uidlist v3: "3 V<uidvalidity> N<next uid> G<guid>", then "<uid> :<name>".
    header = f"3 V{1_700_000_000 + seed} N{messages + 1} G{rng.randbytes(16).hex()}"
    (tmp / "dovecot-uidlist").write_text(header + "\n" + "\n".join(uidlist) + "\n")
    manifest_data = {
        "messages": messages,
        "planted": [p.__dict__ for p in planted],
        "large": large,
        "total_bytes": total,
    }
    (tmp / "bench-manifest.json").write_text(json.dumps(manifest_data))
    tmp.rename(path)
    return Mailbox(path, messages, tuple(planted), large, total)


def install(mailbox: Mailbox, maildir: Path, uid: int, gid: int) -> None:
    """Hard-link *mailbox* into a Dovecot user's (empty) Maildir and hand it to the mail user.

    Falls back to copying when hard links are not possible (another file system).
    """
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(mailbox.path / "cur"):
        dest = maildir / "cur" / entry.name
        try:
            os.link(entry.path, dest)
        except OSError:
            shutil.copy2(entry.path, dest)
    shutil.copy2(mailbox.path / "dovecot-uidlist", maildir / "dovecot-uidlist")
    for root, dirs, files in os.walk(maildir.parent):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)
    os.chown(maildir.parent, uid, gid)
