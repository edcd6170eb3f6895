"""tomllib gives no line numbers: `locate_keys` scans the raw text for table headers and keys,
so that a problem can say its line. Run only when a problem is reported."""

from __future__ import annotations

import json
from bisect import bisect_right

from scheduler.config.problems import BARE_KEY, KeyPath

# --------------------------------------------------------------------------------------------
# Line numbers: tomllib has none, so scan the text for headers and keys


def locate_keys(text: str) -> dict[KeyPath, int]:
    """Key path -> 1-based line where it is first written (tables: their header line).

    Paths use 0-based indexes for arrays of tables: `("sources", 1, "every")`. Keys inside
    inline tables and arrays are not listed: their enclosing key is.
    """
    return _Locator(text).lines


class _Locator:
    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [i for i, char in enumerate(text) if char == "\n"]
        self.lines: dict[KeyPath, int] = {}
        self.explicit: set[KeyPath] = set()
        self.duplicate_line: int | None = None  # first key or table defined twice
        self.arrays: dict[tuple[str, ...], int] = {}  # [[a.b]] -> its current index
        self.table: KeyPath = ()
        self.scan()

    def line_at(self, position: int) -> int:
        return bisect_right(self.newlines, position - 1) + 1

    def scan(self) -> None:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            while i < n and text[i] in " \t\r":
                i += 1
            if i >= n:
                break
            if text[i] == "[":
                i = self.header(i)
            elif text[i] not in "#\n":
                i = self.key_value(i)
            end = text.find("\n", i)
            i = n if end < 0 else end + 1

    def header(self, i: int) -> int:
        line = self.line_at(i)
        many = self.text.startswith("[[", i)
        parts, i = self.keys(i + (2 if many else 1))
        if not parts:
            return i
        path: list[str | int] = []
        plain: tuple[str, ...] = ()
        for index, part in enumerate(parts):
            plain += (part,)
            path.append(part)
            last = index == len(parts) - 1
            if many and last:
                self.arrays[plain] = self.arrays.get(plain, -1) + 1
                path.append(self.arrays[plain])
            elif plain in self.arrays:
                path.append(self.arrays[plain])
        self.table = tuple(path)
        self.register(self.table, line)
        return i

    def key_value(self, i: int) -> int:
        line = self.line_at(i)
        parts, i = self.keys(i)
        if not parts or not self.text.startswith("=", i):
            return i
        self.register((*self.table, *parts), line)
        return self.skip_value(i + 1)

    def register(self, path: KeyPath, line: int) -> None:
        if path in self.explicit and self.duplicate_line is None:
            self.duplicate_line = line
        self.explicit.add(path)
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def keys(self, i: int) -> tuple[list[str], int]:
        """A dotted key starting at i: its parts, and the position after it and its spaces."""
        text, parts = self.text, []
        while True:
            while i < len(text) and text[i] in " \t":
                i += 1
            if text.startswith('"', i):
                end = i + 1
                while end < len(text) and text[end] not in '"\n':
                    end += 2 if text[end] == "\\" else 1
                try:
                    parts.append(json.loads(text[i : end + 1]))
                except ValueError:
                    parts.append(text[i + 1 : end])
                i = end + 1
            elif text.startswith("'", i):
                end = text.find("'", i + 1)
                end = len(text) if end < 0 else end
                parts.append(text[i + 1 : end])
                i = end + 1
            else:
                bare = BARE_KEY.match(text, i)
                if not bare:
                    return [], i
                parts.append(bare[0])
                i = bare.end()
            while i < len(text) and text[i] in " \t":
                i += 1
            if not text.startswith(".", i):
                return parts, i
            i += 1

    def skip_value(self, i: int) -> int:
        """The position of the newline that ends the value starting at i (or the text's end)."""
        text, n, depth = self.text, len(self.text), 0
        while i < n:
            char = text[i]
            if text.startswith('"""', i) or text.startswith("'''", i):
                quote = text[i : i + 3]
                i += 3
                while i < n and not text.startswith(quote, i):
                    i += 2 if quote == '"""' and text[i] == "\\" else 1
                i += 3
                while i < n and text[i] == quote[0]:  # up to two quotes may end the content
                    i += 1
                continue
            if char == '"' or char == "'":
                i += 1
                while i < n and text[i] not in (char, "\n"):
                    i += 2 if char == '"' and text[i] == "\\" else 1
            elif char == "#":
                end = text.find("\n", i)
                i = n if end < 0 else end
                continue
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
            elif char == "\n" and depth <= 0:
                return i
            i += 1
        return i
