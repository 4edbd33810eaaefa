"""An HTML checker: nothing in a response may run script or break out of markup."""

from __future__ import annotations

import json
from html.parser import HTMLParser

# Attributes whose value is a URL a browser may navigate to or fetch.
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "hx-get", "hx-post", "hx-patch",
     "hx-put", "hx-delete", "data-row-url", "data-update-url", "data-expand-url",
     "data-shift-href"}
)  # fmt: skip
# Elements our templates never render; if one appears, user text became markup.
FORBIDDEN_TAGS = frozenset(
    {"img", "svg", "math", "iframe", "object", "embed", "frame", "base", "link",
     "meta", "style", "textarea", "video", "audio"}
)  # fmt: skip
ALLOWED_HEAD_TAGS = frozenset({"link", "meta"})


class _Checker(HTMLParser):
    """Collects every problem found while parsing."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self.values: list[str] = []
        self.in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Check one element and its attributes."""
        if tag == "head":
            self.in_head = True
        if tag in FORBIDDEN_TAGS and not (self.in_head and tag in ALLOWED_HEAD_TAGS):
            self.problems.append(f"unexpected <{tag}>")
        if tag == "script":
            src = dict(attrs).get("src") or ""
            if not src.startswith("/static/"):
                self.problems.append(f"script not from /static/: {attrs}")
        for name, value in attrs:
            value = value or ""
            self.values.append(value)
            if name.startswith("on"):
                self.problems.append(f"event handler attribute {name}={value!r}")
            if name == "style":
                self.problems.append(f"inline style {value!r}")
            if name in URL_ATTRIBUTES:
                scheme = value.strip().lower().replace("\t", "").replace("\n", "")
                # The empty favicon (<link rel="icon" href="data:,">) is inert.
                empty_icon = self.in_head and tag == "link" and value == "data:,"
                if scheme.startswith(("javascript:", "data:", "vbscript:")) and not (
                    empty_icon
                ):
                    self.problems.append(f"{name} with a script URL: {value!r}")
            if name in ("hx-vals", "hx-headers", "hx-request"):
                try:
                    json.loads(value)
                except ValueError:
                    self.problems.append(f"{name} is not valid JSON: {value!r}")
            if name.startswith("hx-on"):
                self.problems.append(f"inline htmx handler {name}")

    def handle_endtag(self, tag: str) -> None:
        """Track leaving <head>."""
        if tag == "head":
            self.in_head = False

    def handle_data(self, data: str) -> None:
        """Collect text (to find payloads shown as text)."""
        self.text.append(data)


def assert_safe_html(body: str) -> None:
    """Fail if the markup contains anything that could run script."""
    checker = _Checker()
    checker.feed(body)
    checker.close()
    assert not checker.problems, checker.problems


def shown(body: str, payload: str) -> bool:
    """True when the payload appears as text or as an attribute value (inert)."""
    checker = _Checker()
    checker.feed(body)
    checker.close()
    return any(payload in part for part in checker.text + checker.values)
