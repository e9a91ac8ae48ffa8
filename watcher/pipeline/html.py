"""HTML mail parts -> text and link targets, through BeautifulSoup with the lxml parser.

The one module that imports bs4. Rendering is linear in the document and bounded
(MAX_HTML_CHARS characters read, _MAX_HTML_NODES elements built): a hostile part costs about a
second, not minutes. BeautifulSoup is imported on first use, so importing this module is cheap.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4.builder import TreeBuilder

# At most this many characters of one HTML part are read (the caller flags longer parts).
MAX_HTML_CHARS = 2_000_000

_BLOCK_TAGS = frozenset(("br", "p", "div", "tr", "li", "td", "h1", "h2", "h3", "table"))
# Elements whose content no reader sees; their text and links are left out.
_HIDDEN_TAGS = frozenset(("script", "style", "head", "title"))
_LINK_TAGS = frozenset(("a", "area", "form"))
# Whitespace-only text is kept as written (BeautifulSoup would shorten it to one space or line
# break), so blank lines come out as lxml's own tree gave them.
_KEEP_WHITESPACE = frozenset(("html", "pre", "textarea"))
# BeautifulSoup makes a Python object of every element and comment (10-30 us each on the
# 2-core test machine), and libxml2 reports all of them to it: its own tree builder stops at
# depth 256, its event interface does not. 2 MB of "<div>" would be 400,000 objects, 12 s and
# 280 MB. Real mail has hundreds of elements (at most 1,372 in the 4,802 mails of
# ../shared/realmail); past this bound nothing more is built but text and links are still read
# (see _bounded_builder), and a 2 MB hostile part costs about 1 s.
_MAX_HTML_NODES = 20_000


@functools.cache
def _import_bs4() -> None:
    """Import BeautifulSoup without Soup Sieve, its CSS-selector engine: nothing here selects
    by CSS, and Soup Sieve compiles its selector grammar on import (130 ms of a 370 ms bs4
    import on the 2-core test machine, a third of a first scan's start-up). bs4 supports running
    without it (``Tag.select`` then raises); other code importing soupsieve later still can."""
    if "soupsieve" in sys.modules or "bs4" in sys.modules:
        return
    sys.modules["soupsieve"] = None  # type: ignore[assignment]  # makes "import soupsieve" fail
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bs4 warns that CSS selectors are unavailable
            import bs4  # noqa: F401
    finally:
        del sys.modules["soupsieve"]


def html_to_text(html: str) -> tuple[str, list[str]]:
    """Render HTML to text with BeautifulSoup and the lxml parser (libxml2, lenient like a
    browser); return (text, link targets in document order).

    Text pieces are joined with spaces, and a line break follows each block element; text
    split only by a comment or a hidden element stays one piece ("Me<!-- -->ta" is "Meta").
    Scripts, styles, the head and comments are dropped; entities are decoded by libxml2. Links
    are the href of a and area elements and the action of forms, outside hidden elements. At
    most MAX_HTML_CHARS characters are read (the caller flags longer parts); the work is linear
    in the document: the tree is walked without recursion, and past _MAX_HTML_NODES nodes
    nothing more is built.
    """
    # Heavy imports kept to the one place that needs them.
    _import_bs4()
    from bs4 import BeautifulSoup, ParserRejectedMarkup, Tag
    from bs4.element import NavigableString, PreformattedString

    # Given as UTF-8 bytes, with lone surrogates replaced (lxml refuses them in a str), and
    # that encoding named, so a document declaring another charset (<meta charset>,
    # <?xml encoding=...?>) is not decoded a second time.
    data = html[:MAX_HTML_CHARS].encode("utf-8", "replace")
    unbuilt = _Unbuilt([], [])
    try:
        soup = BeautifulSoup(data, builder=_bounded_builder()(unbuilt), from_encoding="utf-8")
    except ParserRejectedMarkup:  # lxml gave up on the document: nothing readable in it
        return "", []
    pieces: list[str] = []
    links: list[str] = []
    # One iterator per open element, and whether a line break follows it: an explicit stack,
    # so 400,000 nested elements cost no recursion.
    stack = [iter(soup.contents)]
    breaks = [False]
    glued = False  # the last piece is text whose next sibling may continue it
    while stack:
        for node in stack[-1]:
            if isinstance(node, Tag):
                name = node.name
                if name in _HIDDEN_TAGS:
                    continue
                glued = False
                if name in _LINK_TAGS:
                    target = node.get("href") or node.get("action")
                    if isinstance(target, str) and target.strip():
                        links.append(target.strip())
                if node.contents:
                    stack.append(iter(node.contents))
                    breaks.append(name in _BLOCK_TAGS)
                    break
                if name in _BLOCK_TAGS:
                    pieces.append("\n")
            # Comments, the doctype and processing instructions are PreformattedStrings.
            elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
                if glued:
                    pieces[-1] += node
                else:
                    pieces.append(str(node))
                    glued = True
        else:  # every child seen: the element ends here
            stack.pop()
            glued = False
            if breaks.pop():
                pieces.append("\n")
    text = " ".join(pieces)
    if unbuilt.text:  # what was read past the bound follows everything built, as in the mail
        text += " " + "".join(unbuilt.text)
    return text, links + unbuilt.links


def html_links(html: str) -> list[str]:
    """The link targets of *html* in document order, exactly as :func:`html_to_text` returns
    them, without rendering the text: for an HTML part whose text is not used (the mail has a
    text/plain body), its links are still checked.

    BeautifulSoup builds only the link elements and the hidden ones (a SoupStrainer), so links
    inside a hidden element are still left out; the same bounded builder reads what lies past
    _MAX_HTML_NODES. About two thirds of the cost of rendering (lxml still reports every
    element to BeautifulSoup).
    """
    _import_bs4()
    from bs4 import BeautifulSoup, ParserRejectedMarkup, Tag
    from bs4.filter import SoupStrainer

    data = html[:MAX_HTML_CHARS].encode("utf-8", "replace")
    unbuilt = _Unbuilt([], [])
    try:
        soup = BeautifulSoup(
            data,
            builder=_bounded_builder()(unbuilt),
            from_encoding="utf-8",
            parse_only=SoupStrainer(list(_LINK_TAGS | _HIDDEN_TAGS)),
        )
    except ParserRejectedMarkup:
        return []
    links: list[str] = []
    stack = [iter(soup.contents)]
    while stack:
        for node in stack[-1]:
            if not isinstance(node, Tag) or node.name in _HIDDEN_TAGS:
                continue
            if node.name in _LINK_TAGS:
                target = node.get("href") or node.get("action")
                if isinstance(target, str) and target.strip():
                    links.append(target.strip())
            if node.contents:  # a link element inside a form, say
                stack.append(iter(node.contents))
                break
        else:
            stack.pop()
    return links + unbuilt.links


@dataclass
class _Unbuilt:
    """What the bounded builder read past _MAX_HTML_NODES: text pieces and separators to be
    joined as they are, and link targets, both in document order."""

    text: list[str]
    links: list[str]


@functools.cache
def _bounded_builder() -> Callable[[_Unbuilt], TreeBuilder]:
    """The class of BeautifulSoup's lxml HTML tree builder with a bound on what one document
    makes it build; it is called with the _Unbuilt that receives what is read past the bound.

    Defined on first use so that importing this module does not import bs4. Past
    _MAX_HTML_NODES elements and comments, nothing more is built: the text goes to
    ``_Unbuilt.text`` with a space at each element boundary and a line break after each block
    element (what the walk in html_to_text gives), the link targets to ``_Unbuilt.links``;
    comments and text inside hidden elements are dropped. An event then costs a method call
    rather than an object.
    """
    _import_bs4()
    from bs4 import MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
    from bs4.builder._lxml import LXMLTreeBuilder

    # A mail part holding only a URL, or an XHTML part, is still a mail part to read.
    warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)
    warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)

    class BoundedBuilder(LXMLTreeBuilder):
        def __init__(self, unbuilt: _Unbuilt) -> None:
            super().__init__(
                multi_valued_attributes=None, preserve_whitespace_tags=set(_KEEP_WHITESPACE)
            )
            self.unbuilt = unbuilt
            self.reset()

        def reset(self) -> None:
            # BeautifulSoup calls this before each attempt at the document.
            super().reset()
            self.unbuilt.text.clear()
            self.unbuilt.links.clear()
            self.nodes = 0
            self.built: list[bool] = []  # per open element: was it built
            self.hidden: list[bool] = []  # per open unbuilt element: is its text hidden

        def start(
            self,
            tag: str | bytes,
            attrib: dict[str | bytes, str | bytes],
            nsmap: dict[str, str] | None = None,
        ) -> None:
            self.nodes += 1
            if self.nodes <= _MAX_HTML_NODES:
                self.built.append(True)
                super().start(tag, attrib, nsmap or {})
                return
            hidden = tag in _HIDDEN_TAGS or (bool(self.hidden) and self.hidden[-1])
            self.built.append(False)
            self.hidden.append(hidden)
            if not hidden:
                self.unbuilt.text.append(" ")
                if tag in _LINK_TAGS:
                    target = attrib.get("href") or attrib.get("action")
                    if isinstance(target, str) and target.strip():
                        self.unbuilt.links.append(target.strip())

        def end(self, tag: str | bytes) -> None:
            if not self.built or self.built.pop():
                super().end(tag)
            elif not self.hidden.pop():
                self.unbuilt.text.append("\n" if tag in _BLOCK_TAGS else " ")

        def data(self, data: str | bytes) -> None:
            if self.nodes <= _MAX_HTML_NODES:
                super().data(data)
            elif isinstance(data, str) and not (self.hidden and self.hidden[-1]):
                self.unbuilt.text.append(data)

        def comment(self, text: str | bytes) -> None:
            self.nodes += 1
            if self.nodes <= _MAX_HTML_NODES:
                super().comment(text)

        def pi(self, target: str, data: str) -> None:
            self.nodes += 1
            if self.nodes <= _MAX_HTML_NODES:
                super().pi(target, data)

    return BoundedBuilder
