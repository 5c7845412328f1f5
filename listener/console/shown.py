"""Values as people read them, in the console's pages: an item's value in the JSON form
npd-sync sends it (or Monday's), by its column's type, as HTML: an email as an email, a phone
number formatted, a link as a link (http and https only), a connect-boards value as the rows it
links; times in UTC, said so, that the page's script shows in the browser's zone.

Pure functions; everything shown is escaped, and only addresses of known schemes are links.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import phonenumbers
from markupsafe import Markup

from listener import text

EMPTY = Markup('<span class="muted">none</span>')
WEB = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)
Rows = Mapping[str, tuple[str, str]]  # item id -> (table, key)


def time(value: dt.datetime | None) -> Markup:
    """A time in UTC, said so; the page's script shows it in the browser's zone."""
    if value is None:
        return Markup('<span class="muted">-</span>')
    utc = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return Markup('<time datetime="{}" data-local>{} UTC</time>').format(
        text.iso(utc), utc.strftime("%Y-%m-%d %H:%M:%S")
    )


def stored_time(value: str | None) -> Markup | None:
    """A time as PostgreSQL prints a timestamptz ('2026-12-07 10:56:06.12+00'), shown as
    `time` shows it; None when the text is not one."""
    if not value:
        return None
    try:
        return time(dt.datetime.fromisoformat(value))
    except ValueError:
        return None


def value(raw: Any, kind: str | None, rows: Rows | None = None) -> Markup:
    """One value of an item (None: empty), by its column's type (None: not known)."""
    if raw is None or raw in ("", {}, []):
        return EMPTY
    if isinstance(raw, str):
        return _plain(raw, kind)
    if not isinstance(raw, dict):
        return _json(raw)
    shown = _object(raw, kind, rows or {})
    return shown if shown is not None else _json(raw)


def _plain(raw: str, kind: str | None) -> Markup:
    if kind == "link" and WEB.fullmatch(raw):
        return _link(raw, raw)
    if kind == "email":
        return _email(raw, raw)
    if kind == "phone":
        return _phone(raw, None)
    return Markup('<span class="value">{}</span>').format(raw)


def _object(raw: dict[str, Any], kind: str | None, rows: Rows) -> Markup | None:
    """The value of a column whose JSON form is an object, or None to show it as JSON."""
    if "item_ids" in raw:
        return _linked(raw.get("item_ids"), rows)
    if isinstance(raw.get("email"), str):
        return _email(raw["email"], raw.get("text"))
    if isinstance(raw.get("phone"), str):
        return _phone(raw["phone"], raw.get("countryShortName"))
    if isinstance(raw.get("url"), str):
        return _link(raw["url"], raw.get("text"))
    if isinstance(raw.get("date"), str):
        when = raw["date"] + (f" {raw['time']} UTC" if isinstance(raw.get("time"), str) else "")
        return Markup('<span class="value">{}</span>').format(when)
    if isinstance(raw.get("labels"), list):
        return Markup('<span class="value">{}</span>').format(", ".join(map(str, raw["labels"])))
    for key in ("label", "text"):
        if isinstance(raw.get(key), str) and len(raw) <= 2:
            return Markup('<span class="value">{}</span>').format(raw[key])
    return None


def _email(address: str, label: Any) -> Markup:
    shown = Markup('<a href="mailto:{}">{}</a>').format(quote(address, safe="@.+-_"), address)
    if isinstance(label, str) and label and label != address:
        shown += Markup(' <span class="muted">({})</span>').format(label)
    return shown


def _phone(number: str, country: Any) -> Markup:
    """A phone number in its international form, linked to call it; as given when it cannot
    be read."""
    region = country.upper() if isinstance(country, str) and len(country) == 2 else None
    try:
        parsed = phonenumbers.parse(number, None if number.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return Markup('<span class="value">{}</span>').format(number)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    pretty = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return Markup('<a href="tel:{}">{}</a>').format(e164, pretty)


def _link(url: str, label: Any) -> Markup:
    words = label if isinstance(label, str) and label else url
    if not WEB.fullmatch(url):
        return Markup('<span class="value">{}</span>').format(words)
    return Markup('<a href="{}" target="_blank" rel="noopener noreferrer">{} ↗</a>').format(
        url, words
    )


def _linked(ids: Any, rows: Rows) -> Markup:
    """A connect-boards value: the rows whose items it links, each a link to its row."""
    if not isinstance(ids, list) or not ids:
        return EMPTY
    parts = []
    for item in map(str, ids):
        row = rows.get(item)
        if row is None:
            parts.append(Markup('<span class="value">item {}</span>').format(item))
        else:
            address = "/row?" + urlencode({"table": row[0], "key": row[1]})
            parts.append(
                Markup('<a href="{}">{} {}</a> <span class="muted">(item {})</span>').format(
                    address, row[0], row[1], item
                )
            )
    return Markup(", ").join(parts)


def _json(raw: Any) -> Markup:
    return Markup('<code class="value">{}</code>').format(
        json.dumps(raw, ensure_ascii=False, sort_keys=True)
    )
