"""Values as people read them (listener/console/shown.py): pure, as a table."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from listener.console import shown

ROWS = {"501": ("organizations", "7")}


@pytest.mark.parametrize(
    ("raw", "kind", "html"),
    [
        (None, "text", '<span class="muted">none</span>'),
        ("", "text", '<span class="muted">none</span>'),
        ("Ada <b>", "name", '<span class="value">Ada &lt;b&gt;</span>'),
        (
            {"email": "ada@example.com", "text": "ada@example.com"},
            "email",
            '<a href="mailto:ada@example.com">ada@example.com</a>',
        ),
        (
            {"email": "ada@example.com", "text": "Ada"},
            "email",
            '<a href="mailto:ada@example.com">ada@example.com</a> <span class="muted">(Ada)</span>',
        ),
        (
            {"email": 'x"><script>@e.com', "text": ""},
            "email",
            '<a href="mailto:x%22%3E%3Cscript%3E@e.com">x&#34;&gt;&lt;script&gt;@e.com</a>',
        ),
        (
            {"phone": "+442071838750", "countryShortName": "GB"},
            "phone",
            '<a href="tel:+442071838750">+44 20 7183 8750</a>',
        ),
        ({"phone": "12", "countryShortName": "ZZ"}, "phone", '<span class="value">12</span>'),
        (
            {"url": "https://example.com/a?b=1&c", "text": "site"},
            "link",
            '<a href="https://example.com/a?b=1&amp;c" target="_blank" '
            'rel="noopener noreferrer">site ↗</a>',
        ),
        ({"url": "javascript:alert(1)", "text": "x"}, "link", '<span class="value">x</span>'),
        ({"text": "long\ntext"}, "long_text", '<span class="value">long\ntext</span>'),
        ({"label": "Done"}, "status", '<span class="value">Done</span>'),
        ({"labels": ["a", "b"]}, "dropdown", '<span class="value">a, b</span>'),
        ({"date": "2026-12-07"}, "date", '<span class="value">2026-12-07</span>'),
        (
            {"date": "2026-12-07", "time": "10:00:00"},
            "date",
            '<span class="value">2026-12-07 10:00:00 UTC</span>',
        ),
        (
            {"item_ids": [501, 502]},
            "board_relation",
            '<a href="/row?table=organizations&amp;key=7">organizations 7</a> '
            '<span class="muted">(item 501)</span>, <span class="value">item 502</span>',
        ),
        ({"item_ids": []}, "board_relation", '<span class="muted">none</span>'),
        ({"odd": 1}, None, '<code class="value">{&#34;odd&#34;: 1}</code>'),
        ("12.5", "numbers", '<span class="value">12.5</span>'),
    ],
)
def test_values_as_people_read_them(raw: Any, kind: str | None, html: str) -> None:
    assert str(shown.value(raw, kind, ROWS)) == html


def test_times_are_utc_said_so_for_the_browser_to_show_in_its_zone() -> None:
    when = dt.datetime(2026, 12, 7, 10, 56, 6, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert str(shown.time(when)) == (
        '<time datetime="2026-12-07T08:56:06Z" data-local>2026-12-07 08:56:06 UTC</time>'
    )
    assert str(shown.time(None)) == '<span class="muted">-</span>'
    assert str(shown.stored_time("2026-12-07 08:56:06+00")) == str(shown.time(when))
    assert shown.stored_time("yesterday") is None
