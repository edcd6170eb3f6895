"""The starter config `newswatch init` writes: the package's `example.toml`, the one source of
that text (the repository's config/example.toml is a link to it)."""

from __future__ import annotations

from importlib import resources

STARTER_CONFIG = (resources.files(__package__) / "example.toml").read_text(encoding="utf-8")
