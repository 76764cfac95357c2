"""Keeps API keys out of every log line, whichever logger wrote it and at whatever level.

Two rules, applied to every record:
- a known key (and its JSON- and URL-escaped forms) is replaced by its last four characters;
- everything after `SecretString` or `SecretBinary` is cut, so botocore's DEBUG dump of a
  GetSecretValue answer shows no key even before the keys are known.

Records are cleaned where they are made (a log record factory, so every logger and handler sees
the clean text) and the Powertools formatter cleans its finished JSON line once more, which
covers `extra` fields and tracebacks.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

WINDOW = 8  # every key is at least this long (config.API_KEY); keys are found by their first 8 characters
SECRET_FIELD = re.compile(r"(Secret(?:String|Binary)).*", re.DOTALL)


def mask(api_key: str) -> str:
    """At most the last 4 characters, and none of a key too short to spare them."""
    return f"…{api_key[-4:]}" if len(api_key) >= 12 else "…"


def _forms(key: str) -> set[str]:
    """The ways a key can be written into a log line: as it is, inside JSON, inside a URL."""
    return {key, json.dumps(key)[1:-1], quote(key, safe=""), quote_plus(key, safe="")}


class Redactor:
    """Replaces known keys in text. Lookup by an 8-character prefix keeps it linear in the
    text's length, whatever the number of keys."""

    def __init__(self) -> None:
        self._index: dict[str, list[tuple[str, str]]] = {}
        self._known: set[str] = set()  # a warm function adds the same keys every run

    def add(self, keys: Iterable[str]) -> None:
        for key in keys:
            if len(key) < WINDOW or key in self._known:
                continue
            self._known.add(key)
            for form in _forms(key):
                entries = self._index.setdefault(form[:WINDOW], [])
                if all(known != form for known, _ in entries):
                    entries.append((form, mask(key)))
                    entries.sort(key=lambda entry: -len(entry[0]))

    def __call__(self, text: str) -> str:
        if not self._index or len(text) < WINDOW:
            return text
        pieces, start, index, end = [], 0, 0, len(text) - WINDOW
        while index <= end:
            for form, hint in self._index.get(text[index : index + WINDOW], ()):
                if text.startswith(form, index):
                    pieces += [text[start:index], hint]
                    index = start = index + len(form)
                    break
            else:
                index += 1
        return "".join([*pieces, text[start:]]) if pieces else text


redact = Redactor()


def clean(text: str) -> str:
    return redact(SECRET_FIELD.sub(r"\1: [REDACTED]", text))


def _install_record_factory() -> None:
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a malformed record keeps its raw text, still cleaned)
            message = str(record.msg)
        record.msg, record.args = clean(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = clean(logging.Formatter().formatException(record.exc_info))
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with every finished line cleaned of keys."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_install_record_factory()
