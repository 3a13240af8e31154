"""time_to_expiry & co on the XNYS calendar: holidays, half days, DST, trading time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from desk.pricing import expiry_instant, time_to_expiry, times_to_expiry, trading_time_to_expiry

NY = ZoneInfo("America/New_York")


def test_expiry_instant_is_the_close_in_new_york_across_dst() -> None:
    # winter: 16:00 EST = 21:00 UTC; summer: 16:00 EDT = 20:00 UTC
    assert expiry_instant("20160115") == datetime(2016, 1, 15, 21, 0, tzinfo=UTC)
    assert expiry_instant(date(2016, 7, 15)) == datetime(2016, 7, 15, 20, 0, tzinfo=UTC)
    assert expiry_instant("2016-07-15") == expiry_instant("20160715")


def test_holiday_and_saturday_expiries_move_to_the_previous_session() -> None:
    # Good Friday 2016-03-25: NYSE closed, options expire Thursday 2016-03-24 at 16:00 EDT
    assert expiry_instant("20160325") == datetime(2016, 3, 24, 16, 0, tzinfo=NY)
    # older OCC listings carry the Saturday after the third Friday
    assert expiry_instant("20160116") == datetime(2016, 1, 15, 16, 0, tzinfo=NY)


def test_half_day_expiry_uses_the_early_close_unless_told_otherwise() -> None:
    # 2015-12-24: NYSE closed at 13:00 ET (the GOOG weekly of the LEAN data set expired then)
    assert expiry_instant("20151224") == datetime(2015, 12, 24, 13, 0, tzinfo=NY)
    assert expiry_instant("20151224", early_close=False) == datetime(2015, 12, 24, 16, 0, tzinfo=NY)
    now = datetime(2015, 12, 24, 11, 0, tzinfo=NY)
    assert time_to_expiry("20151224", now) == pytest.approx(2 / (365 * 24), rel=1e-12)
    assert time_to_expiry("20151224", now, early_close=False) == pytest.approx(5 / (365 * 24), rel=1e-12)


def test_time_to_expiry_is_act_365_and_zero_after_expiry() -> None:
    now = datetime(2016, 1, 8, 21, 0, tzinfo=UTC)  # a Friday at the close
    assert time_to_expiry("20160115", now) == pytest.approx(7 / 365, rel=1e-15)
    assert time_to_expiry("20160115", datetime(2016, 1, 15, 21, 0, tzinfo=UTC)) == 0.0
    assert time_to_expiry("20160115", datetime(2016, 2, 1, tzinfo=UTC)) == 0.0
    # any time zone is accepted for now; the instant is what counts
    assert time_to_expiry("20160115", now.astimezone(NY)) == time_to_expiry("20160115", now)
    out = times_to_expiry(["20160115", "20160122", "20151231"], now)
    np.testing.assert_allclose(out, [7 / 365, 14 / 365, 0.0], rtol=1e-15)


def test_trading_time_counts_only_open_market_hours() -> None:
    # Friday close to the next Friday close: 5 full sessions of 6.5 h (MLK day is 2016-01-18)
    now = datetime(2016, 1, 8, 16, 0, tzinfo=NY)
    assert trading_time_to_expiry("20160115", now) == pytest.approx(5 / 252, rel=1e-12)
    # the week with the holiday has 4 sessions
    assert trading_time_to_expiry("20160122", now + timedelta(days=7)) == pytest.approx(4 / 252, rel=1e-12)
    # on the half day at 11:00: 2 of the 3.5 hours of the session are left
    half = datetime(2015, 12, 24, 11, 0, tzinfo=NY)
    assert trading_time_to_expiry("20151224", half) == pytest.approx(2 / 6.5 / 252, rel=1e-12)
    assert trading_time_to_expiry("20151224", half + timedelta(hours=3)) == 0.0


@pytest.mark.parametrize(
    ("expiry", "error", "message"),
    [
        ("2016115", ValueError, "YYYYMMDD"),
        ("20161315", ValueError, "not a valid date"),
        (datetime(2016, 1, 15, tzinfo=UTC), TypeError, "not a datetime"),
        (20160115, TypeError, "string or a date"),
        ("19800118", ValueError, "outside calendar"),
    ],
)
def test_bad_expiries_raise_naming_the_problem(expiry: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        time_to_expiry(expiry, datetime(2016, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]


def test_naive_now_and_unknown_calendar_raise() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        time_to_expiry("20160115", datetime(2016, 1, 1))
    with pytest.raises(ValueError, match="unknown exchange calendar"):
        time_to_expiry("20160115", datetime(2016, 1, 1, tzinfo=UTC), calendar="NOPE")
