"""A tiny HTML tree (stdlib only) so view tests can look at elements, not substrings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
    "source", "track", "wbr",
}  # fmt: skip


@dataclass
class Element:
    """One element: its tag, attributes, children (elements and text)."""

    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def __getitem__(self, name: str) -> str:
        return self.attrs[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        """An attribute's value, or `default`."""
        return self.attrs.get(name, default)

    @property
    def classes(self) -> set[str]:
        """The class names."""
        return set((self.attrs.get("class") or "").split())

    def iter(self) -> Iterator[Element]:
        """This element and every element inside it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Elements inside (or this one) with the tag and exact attribute values.

        `class_` matches one class name among several; other underscores stand
        for dashes (data_field="name"), a trailing one is dropped (for_="x").
        """
        found = []
        for el in self.iter():
            if tag and el.tag != tag:
                continue
            if "class_" in attrs and attrs["class_"] not in el.classes:
                continue
            if all(
                el.attrs.get(k.rstrip("_").replace("_", "-")) == v
                for k, v in attrs.items()
                if k != "class_"
            ):
                found.append(el)
        return found

    def find(self, tag: str | None = None, **attrs: str) -> Element | None:
        """The first match of find_all, or None."""
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def by_id(self, element_id: str) -> Element:
        """The element with this id (AssertionError if there is none)."""
        found = self.find(id=element_id)
        assert found is not None, f"no element with id {element_id!r}"
        return found

    @property
    def text(self) -> str:
        """The text content with whitespace collapsed."""
        parts: list[str] = []

        def walk(el: Element) -> None:
            for child in el.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return " ".join(" ".join(parts).split())


class _Builder(HTMLParser):
    """Build Elements; unclosed tags are closed by their parent's end tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v if v is not None else "" for k, v in attrs})
        self.stack[-1].children.append(el)
        if tag not in VOID:
            self.stack.append(el)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    """Parse HTML (a page or a fragment) into a tree under a "#root" element."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def top_level(html: str) -> list[Element]:
    """The top-level elements of a fragment."""
    return [c for c in parse(html).children if isinstance(c, Element)]


def assert_fragment(html: str) -> Element:
    """Check the body is a fragment (no page around it) and return its tree."""
    start = html.lstrip()[:200].lower()
    assert not start.startswith("<!doctype"), "expected a fragment, got a page"
    assert "<html" not in html.lower() and "<body" not in html.lower()
    return parse(html)
