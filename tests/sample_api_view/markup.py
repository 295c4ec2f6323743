"""Helpers that read the chat view's files from the package and parse its page."""

from __future__ import annotations

from html.parser import HTMLParser
from importlib import resources


def static_bytes(name: str) -> bytes:
    return resources.files("sample_api").joinpath("static", name).read_bytes()


def static_text(name: str) -> str:
    return static_bytes(name).decode("utf-8")


def csp_directives(header: str) -> dict[str, str]:
    directives = {}
    for directive in header.split(";"):
        name, _, value = directive.strip().partition(" ")
        if name:
            directives[name] = value.strip()

    return directives


class PageMarkup(HTMLParser):
    """The parts of an HTML page that a Content-Security-Policy restricts."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []  # src of each script, None when inline
        self.stylesheets: list[str] = []
        self.style_elements = 0
        self.inline_script_text = ""
        self.attributes: list[tuple[str, str, str | None]] = []
        self.ids: set[str] = set()
        self.test_ids: set[str] = set()
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.attributes.extend((tag, name, value) for name, value in attrs)
        if "id" in values:
            self.ids.add(values["id"] or "")
        if "data-testid" in values:
            self.test_ids.add(values["data-testid"] or "")

        if tag == "script":
            self.scripts.append(values.get("src"))
            self._in_script = True
        elif tag == "style":
            self.style_elements += 1
        elif tag == "link" and values.get("rel") == "stylesheet":
            self.stylesheets.append(values.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script_text += data


def parse_page(html: str) -> PageMarkup:
    markup = PageMarkup()
    markup.feed(html)
    markup.close()
    return markup
