"""Pure decisions about articles: URL identity (`urls`), text fingerprints (`fingerprint`),
near-duplicate sketches (`neardup`), what an item is (`articles`), whether a stored article
changed (`update`) and which alerts go out (`alerting`). Nothing here does I/O; the fetch
pipeline and the archive call these (docs/how-it-decides.md)."""
