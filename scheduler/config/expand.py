"""`${NAME}` and `${NAME:-default}` in string values, from the environment."""

from __future__ import annotations

import re
from collections.abc import Mapping

# --------------------------------------------------------------------------------------------
# Environment expansion

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def expand(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """`text` with `${NAME}` and `${NAME:-default}` replaced; the problems found, if any."""
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        whole, name, default = match[0], match[1], match[2]
        if whole == "$${":
            return "${"
        if name is None:
            problems.append(
                "malformed ${...}: write ${NAME} or ${NAME:-default}, or $${ for a literal ${"
            )
            return whole
        value = environ.get(name)
        if default is not None:
            return value or default
        if value is None:
            problems.append(
                f"environment variable {name} is not set; set it or write ${{{name}:-default}}"
            )
            return whole
        return value

    return _REFERENCE.sub(replace, text), problems
