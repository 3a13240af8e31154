"""desk.domain.calendar: NYSE sessions, holidays, half days, DST and IB's extended hours.

Hard facts of 2026 are asserted as such (published NYSE holiday and early-close dates);
everything else is checked against exchange_calendars' own XNYS answers (the source of
the calendar), and the extended hours against a brute-force model built from them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk.domain.calendar import (
    NEW_YORK,
    SECONDS_PER_YEAR,
    ExchangeCalendar,
    exchange_date,
    exchange_midnight,
    get_calendar,
    nyse_calendar,
    parse_expiry,
    years_between,
)

NY = ZoneInfo("America/New_York")
CAL = nyse_calendar()

#: NYSE holidays of 2026 (nyse.com "Holidays & Trading Hours"): New Year's Day, Martin
#: Luther King Jr. Day, Washington's Birthday, Good Friday, Memorial Day, Juneteenth,
#: Independence Day (observed: July 4 is a Saturday), Labor Day, Thanksgiving, Christmas.
HOLIDAYS_2026 = [
    date(2026, 1, 1),
    date(2026, 1, 19),
    date(2026, 2, 16),
    date(2026, 4, 3),
    date(2026, 5, 25),
    date(2026, 6, 19),
    date(2026, 7, 3),
    date(2026, 9, 7),
    date(2026, 11, 26),
    date(2026, 12, 25),
]
#: 13:00 ET early closes of 2026: the day after Thanksgiving and Christmas Eve.
EARLY_CLOSES_2026 = [date(2026, 11, 27), date(2026, 12, 24)]


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NY)


@pytest.fixture(scope="module")
def xnys() -> xc.ExchangeCalendar:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xc.get_calendar("XNYS", start="1995-01-01", end="2036-12-31")


# --- hard facts ------------------------------------------------------------------------------


def test_2026_holidays_and_half_days() -> None:
    assert CAL.holidays(date(2026, 1, 1), date(2026, 12, 31)) == HOLIDAYS_2026
    sessions = CAL.sessions(date(2026, 1, 1), date(2026, 12, 31))
    assert [s.day for s in sessions if s.early_close] == EARLY_CLOSES_2026
    assert len(sessions) == 251  # 261 weekdays - 10 holidays


def test_thanksgiving_2026_is_closed_and_the_day_after_closes_at_13() -> None:
    thanksgiving, friday = date(2026, 11, 26), date(2026, 11, 27)
    assert not CAL.is_session(thanksgiving) and CAL.is_holiday(thanksgiving)
    assert CAL.phase(et(2026, 11, 26, 10)).phase == "closed"
    assert not CAL.is_open(et(2026, 11, 26, 10)) and not CAL.is_open(et(2026, 11, 26, 10), outside_rth=True)
    with pytest.raises(ValueError, match="not a XNYS session"):
        CAL.session(thanksgiving)
    s = CAL.session(friday)
    assert (s.pre_open, s.open, s.close, s.post_close) == (
        et(2026, 11, 27, 4),
        et(2026, 11, 27, 9, 30),
        et(2026, 11, 27, 13),
        et(2026, 11, 27, 17),
    )
    assert s.early_close and s.close.tzinfo == UTC
    assert CAL.phase(et(2026, 11, 27, 12, 59)).phase == "regular"
    assert CAL.phase(et(2026, 11, 27, 13)).phase == "post"
    assert CAL.phase(et(2026, 11, 27, 17)).phase == "closed"
    assert not CAL.session(date(2026, 11, 25)).early_close


def test_dst_changes_move_the_open_in_utc() -> None:
    # 2026: DST starts Sunday March 8, ends Sunday November 1
    assert CAL.session(date(2026, 3, 6)).open == datetime(2026, 3, 6, 14, 30, tzinfo=UTC)
    assert CAL.session(date(2026, 3, 9)).open == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert CAL.phase(datetime(2026, 3, 9, 13, 30, tzinfo=UTC)).regular
    assert CAL.phase(datetime(2026, 3, 9, 13, 29, tzinfo=UTC)).phase == "pre"
    assert CAL.session(date(2026, 10, 30)).close == datetime(2026, 10, 30, 20, 0, tzinfo=UTC)
    assert CAL.session(date(2026, 11, 2)).close == datetime(2026, 11, 2, 21, 0, tzinfo=UTC)
    # the pre-market starts at 04:00 New York time on both sides of the change
    assert CAL.session(date(2026, 3, 9)).pre_open == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    assert CAL.session(date(2026, 3, 6)).pre_open == datetime(2026, 3, 6, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "phase", "rth", "extended"),
    [
        (et(2026, 11, 25, 3, 59), "closed", False, False),
        (et(2026, 11, 25, 4, 0), "pre", False, True),
        (et(2026, 11, 25, 9, 29), "pre", False, True),
        (et(2026, 11, 25, 9, 30), "regular", True, True),
        (et(2026, 11, 25, 15, 59), "regular", True, True),
        (et(2026, 11, 25, 16, 0), "post", False, True),
        (et(2026, 11, 25, 19, 59), "post", False, True),
        (et(2026, 11, 25, 20, 0), "closed", False, False),
        (et(2026, 11, 28, 12, 0), "closed", False, False),  # Saturday
        (et(1989, 6, 1, 12, 0), "unknown", False, False),
        (et(2099, 6, 1, 12, 0), "unknown", False, False),
    ],
)
def test_phases_and_open_for_orders(when: datetime, phase: str, rth: bool, extended: bool) -> None:
    p = CAL.phase(when)
    assert p.phase == phase
    assert CAL.is_open(when) is rth and CAL.is_open(when, outside_rth=True) is extended
    if phase in ("pre", "regular", "post"):
        assert p.session == when.date().isoformat() and p.extended is (phase != "regular")


def test_the_close_that_ends_the_session_an_order_belongs_to() -> None:
    close = CAL.session_close
    assert close(et(2026, 11, 25, 10)) == et(2026, 11, 25, 16)  # in the session: today's
    assert close(et(2026, 11, 25, 17)) == et(2026, 11, 27, 13)  # after it: the next session's
    assert close(et(2026, 11, 25, 17), outside_rth=True) == et(2026, 11, 25, 20)
    assert close(et(2026, 11, 26, 10)) == et(2026, 11, 27, 13)  # Thanksgiving: Friday's half day
    assert close(et(2026, 11, 26, 10), outside_rth=True) == et(2026, 11, 27, 17)
    assert close(et(2026, 11, 27, 14)) == et(2026, 11, 30, 16)  # after the early close: Monday
    assert close(et(2026, 11, 28, 12)) == et(2026, 11, 30, 16)  # Saturday
    assert CAL.next_open(et(2026, 11, 26, 10)) == et(2026, 11, 27, 9, 30)
    assert CAL.next_open(et(2026, 11, 26, 10), outside_rth=True) == et(2026, 11, 27, 4)
    assert CAL.next_open(et(2026, 11, 27, 10)) == et(2026, 11, 27, 10)
    with pytest.raises(ValueError, match="outside calendar XNYS"):
        close(et(2099, 1, 2, 12))


def test_next_and_previous_session() -> None:
    assert CAL.next_session(date(2026, 11, 25)).day == date(2026, 11, 27)
    assert CAL.next_session(date(2026, 11, 25), inclusive=True).day == date(2026, 11, 25)
    assert CAL.previous_session(date(2026, 11, 27)).day == date(2026, 11, 25)
    assert CAL.previous_session(date(2026, 11, 26), inclusive=True).day == date(2026, 11, 25)
    assert CAL.next_session(date(2026, 12, 31)).day == date(2027, 1, 4)  # New Year's Day is a Friday
    with pytest.raises(ValueError, match="no XNYS session after"):
        CAL.next_session(date(2099, 1, 1))


def test_expiry_close() -> None:
    assert CAL.expiry_close("20261127") == et(2026, 11, 27, 13)  # half day
    assert CAL.expiry_close("2026-11-27", early_close=False) == et(2026, 11, 27, 16)
    assert CAL.expiry_close(date(2026, 4, 3)) == et(2026, 4, 2, 16)  # Good Friday: Thursday
    assert CAL.expiry_close("20160116") == et(2016, 1, 15, 16)  # Saturday expiry of old listings
    assert CAL.expiry_close("20261218") == datetime(2026, 12, 18, 21, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="outside calendar XNYS"):
        CAL.expiry_close("19800118")
    with pytest.raises(ValueError, match="YYYYMMDD"):
        CAL.expiry_close("2026-1-5")


def test_time_conventions() -> None:
    a = datetime(2026, 1, 2, 15, tzinfo=UTC)
    assert SECONDS_PER_YEAR == 365 * 86400
    assert years_between(a, a + timedelta(days=365)) == 1.0
    assert years_between(a + timedelta(days=73), a) == -0.2
    assert years_between(a, (a + timedelta(hours=6)).astimezone(NEW_YORK)) == pytest.approx(6 / 8760, rel=1e-15)
    with pytest.raises(ValueError, match="timezone-aware"):
        years_between(datetime(2026, 1, 2), a)
    assert exchange_date(datetime(2026, 11, 27, 3, 0, tzinfo=UTC)) == date(2026, 11, 26)  # 22:00 ET
    assert exchange_date(datetime(2026, 11, 27, 3, 0, tzinfo=UTC).timestamp()) == date(2026, 11, 26)
    assert exchange_midnight(date(2026, 7, 1)).astimezone(UTC) == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    assert exchange_midnight(date(2026, 12, 1)).astimezone(UTC) == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    assert parse_expiry("20261218") == parse_expiry("2026-12-18") == date(2026, 12, 18)
    with pytest.raises(TypeError, match="not a datetime"):
        parse_expiry(datetime(2026, 12, 18, tzinfo=UTC))  # type: ignore[arg-type]


def test_bad_input_raises_one_clear_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.phase(datetime(2026, 11, 27, 15))
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.is_open(datetime(2026, 11, 27, 15))
    with pytest.raises(ValueError, match="outside calendar XNYS"):
        CAL.is_session(date(1980, 1, 2))
    with pytest.raises(TypeError, match="exchange date"):
        CAL.is_session(datetime(2026, 11, 27, tzinfo=UTC))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown exchange calendar 'NOPE'"):
        ExchangeCalendar("NOPE").is_open(datetime(2026, 11, 27, 15, tzinfo=UTC))
    assert get_calendar("XNYS") is CAL


# --- against exchange_calendars ----------------------------------------------------------------


def test_sessions_opens_closes_and_holidays_match_exchange_calendars(xnys: xc.ExchangeCalendar) -> None:
    first, last = date(1995, 1, 3), date(2036, 12, 31)
    ours = CAL.sessions(first, last)
    theirs = xnys.sessions_in_range(first.isoformat(), last.isoformat())
    assert [s.day for s in ours] == [ts.date() for ts in theirs]
    assert [s.open for s in ours] == [ts.to_pydatetime() for ts in xnys.opens[theirs]]
    assert [s.close for s in ours] == [ts.to_pydatetime() for ts in xnys.closes[theirs]]
    early = set(pd.DatetimeIndex(xnys.early_closes).date)
    assert {s.day for s in ours if s.early_close} == {d for d in early if first <= d <= last}
    weekdays = pd.bdate_range(first, last).date
    listed = {ts.date() for ts in theirs}
    assert CAL.holidays(first, last) == [d for d in weekdays if d not in listed]


def test_busday_calendar_counts_sessions(xnys: xc.ExchangeCalendar) -> None:
    bdc = CAL.busday_calendar()
    for a, b in [(date(2026, 1, 1), date(2027, 1, 1)), (date(2015, 12, 20), date(2016, 1, 10))]:
        n = len(xnys.sessions_in_range(a.isoformat(), (b - timedelta(days=1)).isoformat()))
        assert int(np.busday_count(a, b, busdaycal=bdc)) == n
    assert not np.is_busday(np.datetime64("2026-11-26"), busdaycal=bdc)


def _model(xnys: xc.ExchangeCalendar, t: datetime) -> tuple[bool, bool]:
    """(regular, extended) straight from exchange_calendars plus IB's rule: pre-market
    from 04:00 New York time of a session's date, post-market 4 h past its close."""
    with warnings.catch_warnings():  # pandas deprecations inside exchange_calendars
        warnings.simplefilter("ignore")
        regular = bool(xnys.is_open_on_minute(pd.Timestamp(t)))
    day = t.astimezone(NY).date()  # the post-market ends by 20:00 New York time: same date
    if not xnys.is_session(day.isoformat()):
        return regular, False
    start = datetime.combine(day, time(4, 0), NY)
    end = xnys.session_close(day.isoformat()).to_pydatetime() + timedelta(hours=4)
    return regular, start <= t < end


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=40 * 366 * 24 * 60))
def test_every_answer_agrees_with_exchange_calendars(xnys: xc.ExchangeCalendar, minutes: int) -> None:
    t = datetime(1996, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    regular, extended = _model(xnys, t)
    p = CAL.phase(t)
    assert p.regular is regular and CAL.is_open(t) is regular
    assert CAL.is_open(t, outside_rth=True) is extended and (p.regular or p.extended) is extended
    assert bool(CAL.regular_mask(np.array([t.timestamp()]))[0]) is regular


def test_regular_mask_matches_phase_on_a_grid_across_a_half_day_week() -> None:
    t = np.arange(et(2026, 11, 23).timestamp(), et(2026, 11, 30).timestamp(), 60.0)
    mask = CAL.regular_mask(t)
    expected = [CAL.phase(datetime.fromtimestamp(x, UTC)).regular for x in t]
    assert mask.tolist() == expected
    assert int(mask.sum()) == 3 * 390 + 210  # Mon-Wed full, Thanksgiving closed, Friday to 13:00


# --- start-up cost -------------------------------------------------------------------------------


def test_importing_the_domain_loads_neither_pandas_nor_exchange_calendars_nor_other_layers(tmp_path) -> None:
    code = (
        "import sys, desk.domain, desk.domain.calendar as c\n"
        "heavy = [m for m in ('exchange_calendars', 'pandas', 'numpy') if m in sys.modules]\n"
        "from datetime import datetime, UTC\n"
        "c.exchange_date(datetime(2026, 11, 27, tzinfo=UTC)); c.years_between(datetime.now(UTC), datetime.now(UTC))\n"
        "light = [m for m in ('exchange_calendars', 'pandas') if m in sys.modules]\n"
        "c.nyse_calendar().is_open(datetime(2026, 11, 27, 15, tzinfo=UTC))\n"
        "layers = sorted({m.split('.')[1] for m in sys.modules if m.startswith('desk.')})\n"
        "print(heavy, light, 'exchange_calendars' in sys.modules, layers)"
    )
    # an empty calendar cache: the first session lookup loads exchange_calendars
    # (tests/domain/test_calendar_cache.py: with a warm cache it never does)
    env = {**os.environ, "DESK_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env)
    # design.md: desk.domain imports no other desk layer (risk, pricing, sim ...)
    assert out.stdout.split() == ["[]", "[]", "True", "['domain']"], out.stdout + out.stderr
