"""Text from users, models and files, made safe to print: never read as Rich markup (a title such as
`fix [/INST] parsing` is text, not a closing tag), never a lone surrogate a terminal cannot encode."""

from __future__ import annotations

from rich.markup import escape


def printable(text: object) -> str:
    """`text` as a str any UTF-8 stream can take: undecodable bytes (lone surrogates) become `\\udcff`."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def plain(text: object) -> str:
    """`text` for a Rich string with markup on: shown as written."""
    return escape(printable(text))


def quoted(text: object) -> str:
    """A value the user typed, as a shell would show it: control characters and bad bytes spelled out."""
    s = printable(text)
    return s if s.isprintable() else repr(s)[1:-1]
