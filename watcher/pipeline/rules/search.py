"""Searching one mail's text for phrases: :class:`TextSearch`.

A phrase whose required words (:func:`watcher.pipeline.rules.text.required_words`) the text
lacks is not searched at all, and its pattern is not even compiled (:class:`Phrase`). A
decision must be stated by the mail itself: :meth:`TextSearch.find_stated` skips a match
inside a quotation (:func:`quoted`).
"""

from __future__ import annotations

import itertools
import re

from watcher.pipeline.rules.text import Phrase, required_words

_UNSEEN = object()  # a search not made yet (None is a search that found nothing)


class TextSearch:
    """The normalised *text* of one mail (and its *links*, see :func:`links_text`) with a
    cache of phrase searches: the rules of one language share their evidence, so each shared
    phrase is searched once per mail. A phrase whose required words (:func:`required_words`)
    are missing from the text is not searched at all."""

    __slots__ = (
        "_cache",
        "_folded",
        "_from_cache",
        "_link_cache",
        "_links_folded",
        "_words",
        "links",
        "text",
    )

    def __init__(self, text: str, links: str = "") -> None:
        self.text = text
        self.links = links
        self._folded = text.casefold()
        self._links_folded = links.casefold()
        # Keyed by id(): hashing a compiled pattern hashes its whole code. The patterns live
        # in the pack (and compile_phrase's cache) for as long as this object does.
        self._cache: dict[int, str | None] = {}
        self._link_cache: dict[int, str | None] = {}
        self._from_cache: dict[tuple[int, int], str | None] = {}
        self._words: dict[str, bool] = {}  # required word -> occurs in the text

    def _possible(self, item: Phrase | re.Pattern[str]) -> bool:
        """False when a word *item* requires is missing from the text."""
        words, folded = self._words, self._folded
        for alternatives in _needs_of(item):
            for word in alternatives:
                present = words.get(word)
                if present is None:
                    present = words[word] = word in folded
                if present:
                    break
            else:
                return False
        return True

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The first match of *pattern* in the text (not cached), or None."""
        return pattern.search(self.text) if self._possible(pattern) else None

    def find(self, item: Phrase | re.Pattern[str]) -> str | None:
        """The text the first match of *item* (a phrase or a pattern) covers, or None. A
        phrase's pattern is compiled only when its required words occur."""
        key = id(item)
        result = self._cache.get(key, _UNSEEN)
        if result is _UNSEEN:
            found = _pattern_of(item).search(self.text) if self._possible(item) else None
            result = self._cache[key] = found.group(0) if found else None
        return result  # type: ignore[return-value]

    def find_stated(self, item: Phrase | re.Pattern[str], start: int = 0) -> str | None:
        """Like :meth:`find`, for a match the mail states itself: one that begins at or after
        index *start* of the text (the body, when the text is "subject body") and does not
        stand inside a quotation (see :func:`quoted`). Meta states its decisions; a comment,
        a message or a group's name relayed in a notification is quoted."""
        key = (id(item), start)
        result = self._from_cache.get(key, _UNSEEN)
        if result is _UNSEEN:
            result = None
            if self._possible(item):
                pattern, text = _pattern_of(item), self.text
                for found in itertools.islice(pattern.finditer(text, max(start, 0)), 20):
                    if not quoted(text, found.start(), found.end(), max(start, 0)):
                        result = found.group(0)
                        break
            self._from_cache[key] = result
        return result  # type: ignore[return-value]

    def find_with_links(self, item: Phrase | re.Pattern[str]) -> str | None:
        """Like :meth:`find`, then in the link targets."""
        result = self.find(item)
        if result is not None or not self.links:
            return result
        key = id(item)
        try:
            return self._link_cache[key]
        except KeyError:
            link: str | None = None
            if all(any(a in self._links_folded for a in alts) for alts in _needs_of(item)):
                found = _pattern_of(item).search(self.links)
                link = found.group(0) if found else None
            self._link_cache[key] = link
            return link


# required_words() by id() of the pattern; the entry holds the pattern too, so its id cannot
# be reused by another object while the entry exists.
_NEEDS: dict[int, tuple[re.Pattern[str], tuple[tuple[str, ...], ...]]] = {}


def _needs(pattern: re.Pattern[str]) -> tuple[tuple[str, ...], ...]:
    """required_words(*pattern*), looked up by identity (cheaper than hashing a pattern)."""
    try:
        return _NEEDS[id(pattern)][1]
    except KeyError:
        needs = required_words(pattern)
        _NEEDS[id(pattern)] = (pattern, needs)
        return needs


_QUOTE_REACH = 600  # characters after a quoted match within which its quotation must end


def quoted(text: str, begin: int, end: int, start: int = 0) -> bool:
    """True when ``text[begin:end]`` stands inside a quotation: an odd number of double quotes
    (every typographic quote is one after :func:`normalise`) lies between *start* and
    *begin*, and another follows within _QUOTE_REACH characters after *end*."""
    return text.count('"', start, begin) % 2 == 1 and '"' in text[end : end + _QUOTE_REACH]


def _needs_of(item: Phrase | re.Pattern[str]) -> tuple[tuple[str, ...], ...]:
    return item.needs if isinstance(item, Phrase) else _needs(item)


def _pattern_of(item: Phrase | re.Pattern[str]) -> re.Pattern[str]:
    return item.pattern if isinstance(item, Phrase) else item


def may_match(pattern: re.Pattern[str], folded: str) -> bool:
    """False when a word *pattern* requires (:func:`required_words`) is missing from *folded*
    (a case-folded text): then *pattern* cannot match that text. True says nothing."""
    return all(any(word in folded for word in alts) for alts in _needs(pattern))
