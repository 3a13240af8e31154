"""desk.store.lean: importing LEAN-format data into SQLite and PostgreSQL.

Real data from the packaged sample (or DESK_LEAN_DIR, see tests/lean_data.py); known values
below were read from the files by hand:

* ``equity/usa/minute/goog/20151224_quote.zip`` line ``36000000,7466700,7473400,7463400,
  7466100,100,7475100,7477100,7468200,7476300,100``: GOOG 10:00 ET bar, bid 746.67 /
  747.34 / 746.34 / 746.61, ask 747.51 / 747.71 / 746.82 / 747.63;
* ``..._trade.zip`` ``36000000,7467500,7476600,7463400,7476400,3745``;
* option quote ``..._call_7500000_20160115.csv`` ``36000000,123000,124000,121000,122000,44,
  129000,130000,126000,129000,16``: GOOG 750 C 2016-01-15, bid close 12.20, ask 12.90;
* open interest of that call: ``23520000,889``;
* ``..._call_10000000_20151224.csv`` ``34200000,,,,,0,21500,21500,5000,5000,19``: no bid.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from lean_data import lean_dir, needs_full_lean
from sqlalchemy import func, select

from desk.domain.models import Instrument
from desk.store import StoreError, make_engine
from desk.store.lean import (
    LeanFormatError,
    LeanTables,
    default_lean_dir,
    import_lean,
    occ_symbol,
    option_con_id,
    parse_option_member,
    read_bars,
    read_chain,
    read_open_interest,
    scan_lean,
    stock_con_id,
    stored_days,
)

LEAN = lean_dir()
GOOG = Instrument("GOOG", con_id=208813720, primary_exchange="NASDAQ", local_symbol="GOOG")
XMAS = date(2015, 12, 24)
C750 = option_con_id("GOOG", "20160115", "C", 750.0)


def _bars(url_or_engine, **kw) -> dict[tuple, object]:
    return {(b.time, b.con_id, b.kind): b for b in read_bars(url_or_engine, **kw)}


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)))


# --- pure helpers --------------------------------------------------------------------------


def test_option_names_symbols_and_con_ids() -> None:
    day, kind, key = parse_option_member("20151224_goog_minute_quote_american_call_7500000_20160115.csv")
    assert (day, kind) == ("20151224", "quote")
    assert key == ("GOOG", "C", 750.0, "20160115")
    assert occ_symbol("GOOG", "20160115", "C", 750.0) == "GOOG  160115C00750000"
    assert occ_symbol("SPY", "20261218", "P", 600.5) == "SPY   261218P00600500"
    assert C750 == option_con_id("GOOG", "20160115", "C", 750.0)  # deterministic
    assert 1_000_000_000 <= C750 < 2_000_000_000
    assert C750 != option_con_id("GOOG", "20160115", "P", 750.0)
    assert 100_000_000 <= stock_con_id("XYZ") < 900_000_000
    with pytest.raises(ValueError, match="not a LEAN option file name"):
        parse_option_member("20151224_goog_minute_quote.csv")


@needs_full_lean  # the daily bars before the day are not in the packaged sample
def test_scan_finds_the_layout_and_filters() -> None:
    scan = scan_lean(LEAN)
    kinds = {(f.sec_type, f.resolution, f.kind, f.symbol) for f in scan.files}
    assert ("STK", "minute", "quote", "GOOG") in kinds and ("OPT", "minute", "openinterest", "GOOG") in kinds
    assert ("STK", "tick", "tick_trade", "SPY") in kinds and ("STK", "daily", "trade", "AAPL") in kinds
    assert any(s.endswith("universes/goog/20151224.csv") for s in scan.skipped)
    only = scan_lean(LEAN, symbols=["goog"], dates=[XMAS])
    assert {f.symbol for f in only.files} == {"GOOG"}
    assert all(f.day in (XMAS, None) for f in only.files)
    assert scan_lean(LEAN, symbols=["SPY"], dates=[date(2015, 12, 24)]).files[0].resolution == "daily"
    with pytest.raises(StoreError, match="does not exist"):
        scan_lean(LEAN / "nope")


def test_default_lean_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DESK_LEAN_DIR", str(tmp_path))
    assert default_lean_dir() == tmp_path
    monkeypatch.setenv("DESK_LEAN_DIR", str(tmp_path / "missing"))
    assert default_lean_dir() is None
    monkeypatch.delenv("DESK_LEAN_DIR")
    assert default_lean_dir() is not None and (default_lean_dir() / "equity").exists()


# --- the GOOG day into SQLite (imported once per module) -------------------------------------


@pytest.fixture(scope="module")
def goog_sqlite(tmp_path_factory) -> tuple[str, object]:
    url = f"sqlite:///{tmp_path_factory.mktemp('lean') / 'desk.sqlite3'}"
    seen = []
    result = import_lean(
        url,
        LEAN,
        symbols=["GOOG"],
        dates=[XMAS],
        stocks={"GOOG": GOOG},
        progress=lambda p: seen.append((p.files_done, p.bytes_done, p.fraction, p.phase)),
    )
    return url, (result, seen)


@needs_full_lean  # the daily bars before the day are not in the packaged sample
def test_import_counts_and_progress(goog_sqlite) -> None:
    url, (result, seen) = goog_sqlite
    # 2,192 option quote files x their lines x 2 sides, + trades, + the underlying, + daily
    assert result.files == 6 and result.members == 2 * 1 + 2192 + 241 + 2058 + 1
    assert result.open_interest == 2058
    assert result.instruments == 2192 + 1
    assert result.days == {"GOOG": [XMAS]}
    assert result.bars > 550_000 and result.rows == result.bars + result.open_interest
    engine = make_engine(url)
    try:
        assert _count(engine, LeanTables().bars) == result.bars
    finally:
        engine.dispose()
    assert len(seen) == result.members + 1
    fractions = [f for *_x, f, _phase in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1][3] == "commit" and "in " in result.summary()


@needs_full_lean  # the daily bars before the day are not in the packaged sample
def test_underlying_bars_times_and_prices(goog_sqlite) -> None:
    url, _ = goog_sqlite
    t = datetime(2015, 12, 24, 15, 0, tzinfo=UTC)  # 10:00 US/Eastern (EST, UTC-5)
    bars = _bars(url, symbol="GOOG", sec_type="STK", start=t, end=datetime(2015, 12, 24, 15, 1, tzinfo=UTC))
    bid, ask, trade = bars[(t, 208813720, "BID")], bars[(t, 208813720, "ASK")], bars[(t, 208813720, "TRADES")]
    assert (bid.open, bid.high, bid.low, bid.close, bid.volume) == (746.67, 747.34, 746.34, 746.61, 100)
    assert (ask.open, ask.high, ask.low, ask.close, ask.volume) == (747.51, 747.71, 746.82, 747.63, 100)
    assert (trade.open, trade.high, trade.low, trade.close, trade.volume) == (746.75, 747.66, 746.34, 747.64, 3745)
    days = read_bars(
        url, symbol="GOOG", bar_size="1 day", start=datetime(2015, 12, 23, tzinfo=UTC), end=datetime(2015, 12, 28, tzinfo=UTC)
    )
    assert [d.time for d in days] == [datetime(2015, 12, 23, 5, tzinfo=UTC), datetime(2015, 12, 24, 5, tzinfo=UTC)]
    assert days[1].close == pytest.approx(748.40)  # GOOG closed 748.40 on 2015-12-24


def test_option_bars_chain_and_open_interest(goog_sqlite) -> None:
    url, _ = goog_sqlite
    t = datetime(2015, 12, 24, 15, 0, tzinfo=UTC)
    bars = _bars(url, con_ids=[C750], start=t, end=datetime(2015, 12, 24, 15, 1, tzinfo=UTC))
    bid, ask = bars[(t, C750, "BID")], bars[(t, C750, "ASK")]
    assert (bid.open, bid.high, bid.low, bid.close, bid.volume) == (12.30, 12.40, 12.10, 12.20, 44)
    assert (ask.close, ask.volume) == (12.90, 16)
    chain = read_chain(url, "GOOG", XMAS)
    assert len(chain) == 2192
    c750 = next(i for i in chain if i.con_id == C750)
    assert (c750.expiry, c750.strike, c750.right, c750.multiplier) == ("20160115", 750.0, "C", 100)
    assert c750.local_symbol == "GOOG  160115C00750000" and c750.sec_type == "OPT"
    assert {i.expiry for i in chain} >= {"20151224", "20180119"} and len({i.expiry for i in chain}) == 12
    assert read_open_interest(url, "GOOG", XMAS)[C750] == 889
    # no bid during the minute (LEAN's empty group): NULL prices, size 0
    worthless = option_con_id("GOOG", "20151224", "C", 1000.0)
    first = read_bars(url, con_ids=[worthless], kinds=["BID", "ASK"])[:2]
    no_bid = next(b for b in first if b.kind == "BID")
    assert math.isnan(no_bid.close) and no_bid.volume == 0
    assert next(b for b in first if b.kind == "ASK").close == 0.50
    assert stored_days(url, "GOOG") == [XMAS] and stored_days(url, "GOOG", sec_type="OPT") == [XMAS]
    assert stored_days(url, "SPY") == []


def test_instruments_row_of_the_underlying_and_an_option(goog_sqlite) -> None:
    url, _ = goog_sqlite
    engine = make_engine(url)
    try:
        t = LeanTables().instruments
        with engine.connect() as conn:
            rows = {r.con_id: r for r in conn.execute(select(t).where(t.c.con_id.in_([208813720, C750])))}
    finally:
        engine.dispose()
    assert rows[208813720].symbol == "GOOG" and rows[208813720].primary_exchange == "NASDAQ"
    assert rows[C750].local_symbol == "GOOG  160115C00750000" and rows[C750].multiplier == 100


# --- small synthetic LEAN folders ------------------------------------------------------------


def _write_zip(path: Path, members: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


def _mini(root: Path, day: str = "20150707", quote_lines: str = "") -> Path:
    quote = quote_lines or (
        "34200000,1000000,1000100,999900,1000000,300,1000200,1000300,1000100,1000200,500\n"
        "34260000,1000000,1000000,1000000,1000000,300,1000200,1000200,1000200,1000200,400\n"
    )
    _write_zip(root / "equity/usa/minute/xyz" / f"{day}_quote.zip", {f"{day}_xyz_minute_quote.csv": quote})
    _write_zip(
        root / "equity/usa/minute/xyz" / f"{day}_trade.zip",
        {f"{day}_xyz_minute_trade.csv": "34200000,1000100,1000200,1000000,1000100,1500\n"},
    )
    _write_zip(
        root / "equity/usa/tick/xyz" / f"{day}_trade.zip",
        {f"{day}_xyz_Trade_Tick.csv": "34200001,1000100,100,Q,00000000,0\n34200001,1000200,50,P,20002000,1\n"},
    )
    _write_zip(
        root / "equity/usa/daily/xyz.zip",
        {"xyz.csv": f"20150701 00:00,990000,1010000,980000,1000000,123456\n{day} 00:00,1000000,1020000,990000,1010000,654321\n"},
    )
    return root


def test_summer_time_daily_bars_and_tick_prints(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = import_lean(url, _mini(tmp_path / "lean"))
    assert (result.bars, result.trade_ticks, result.instruments) == (4 + 1 + 2, 2, 1)
    t = datetime(2015, 7, 7, 13, 30, tzinfo=UTC)  # 09:30 EDT = UTC-4
    bars = _bars(url, symbol="XYZ")
    xyz = stock_con_id("XYZ")
    assert bars[(t, xyz, "BID")].close == 100.0 and bars[(t, xyz, "ASK")].close == 100.02
    assert bars[(t, xyz, "TRADES")].volume == 1500
    daily = read_bars(url, symbol="XYZ", bar_size="1 day")
    assert [d.time for d in daily] == [datetime(2015, 7, 1, 4, tzinfo=UTC), datetime(2015, 7, 7, 4, tzinfo=UTC)]
    engine = make_engine(url)
    try:
        t_ticks = LeanTables().trade_ticks
        with engine.connect() as conn:
            ticks = conn.execute(select(t_ticks).order_by(t_ticks.c.price)).all()
    finally:
        engine.dispose()
    assert [(r.price, r.size, r.exchange, r.suspicious) for r in ticks] == [(100.01, 100, "Q", False), (100.02, 50, "P", True)]
    assert ticks[0].time == datetime(2015, 7, 7, 13, 30, 0, 1000, tzinfo=UTC)


def test_dst_change_day_converts_each_time(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    quote = (
        "3600000,1000000,1000000,1000000,1000000,1,1000100,1000100,1000100,1000100,1\n"  # 01:00 EST
        "36000000,1000000,1000000,1000000,1000000,1,1000100,1000100,1000100,1000100,1\n"
    )  # 10:00 EDT
    root = tmp_path / "lean"
    _write_zip(root / "equity/usa/minute/xyz/20150308_quote.zip", {"20150308_xyz_minute_quote.csv": quote})
    import_lean(url, root)
    times = sorted({b.time for b in read_bars(url, symbol="XYZ")})
    assert times == [datetime(2015, 3, 8, 6, 0, tzinfo=UTC), datetime(2015, 3, 8, 14, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("34320000,1000000,1000000", "line 3: expected 11 columns, got 3"),
        (
            "34320000,1000000,1000000,1000000,1000000,1,,1000100,1000100,1000100,1",
            "line 3: columns 7-10: ask group is partly empty",
        ),
        (
            "34320000,abc,1000000,1000000,1000000,1,1000100,1000100,1000100,1000100,1",
            "line 3: column 2 (bid_open): expected a price in 1/10000 dollar, got 'abc'",
        ),
        (
            "34200000,1000000,1000000,1000000,1000000,1,1000100,1000100,1000100,1000100,1",
            "line 3: column 1 (time): 34200000 ms is not after the previous line's 34260000 ms",
        ),
        (
            "34320000,1000000,999000,1000000,1000000,1,1000100,1000100,1000100,1000100,1",
            "line 3: columns 2-5: bid_low 100 <= open 100, close 100 <= high 99.9 does not hold",
        ),
        (
            "99999999,1000000,1000000,1000000,1000000,1,1000100,1000100,1000100,1000100,1",
            "line 3: column 1 (time): 99999999 ms is outside the day",
        ),
        (
            "34320000,1000000,1000000,1000000,1000000,-5,1000100,1000100,1000100,1000100,1",
            "line 3: column 6 (bid_size): -5 is negative",
        ),
    ],
    ids=["columns", "half-empty", "not-a-number", "time-backwards", "high-below-low", "time-range", "size"],
)
def test_malformed_line_names_file_and_line_and_imports_nothing(tmp_path, line, problem) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    good = tmp_path / "good"
    import_lean(url, _mini(good, "20150706"))  # an earlier import that must survive untouched
    before = read_bars(url, symbol="XYZ")
    bad_quotes = (
        "34200000,1000000,1000100,999900,1000000,300,1000200,1000300,1000100,1000200,500\n"
        "34260000,1000000,1000000,1000000,1000000,300,1000200,1000200,1000200,1000200,400\n"
        f"{line}\n"
    )
    bad = _mini(tmp_path / "bad", "20150706", bad_quotes)
    with pytest.raises(LeanFormatError) as exc:
        import_lean(url, bad)
    where = "equity/usa/minute/xyz/20150706_quote.zip:20150706_xyz_minute_quote.csv"
    assert str(exc.value) == f"{where} {problem}" or str(exc.value).startswith(f"{where} {problem}")
    assert exc.value.line == 3
    assert read_bars(url, symbol="XYZ") == before  # rolled back: nothing half-imported


def test_bad_option_member_name_and_empty_selection(tmp_path) -> None:
    root = tmp_path / "lean"
    _write_zip(
        root / "option/usa/minute/xyz/20150707_quote_american.zip",
        {
            "20150707_xyz_minute_quote_american_call_1000000_20150717.csv": "34200000,1000,1000,1000,1000,1,2000,2000,2000,2000,1\n",
            "notes.csv": "34200000,1\n",
        },
    )
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    with pytest.raises(LeanFormatError, match=r"20150707_quote_american.zip:notes.csv: member name does not"):
        import_lean(url, root)
    assert read_bars(url, symbol="XYZ") == []
    with pytest.raises(StoreError, match="no LEAN files to import .* for symbols AAA"):
        import_lean(url, root, symbols=["AAA"])
    with pytest.raises(StoreError, match="schema can only be given for PostgreSQL"):
        import_lean(url, root, schema="x")


def test_reimport_replaces_rows(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    root = _mini(tmp_path / "lean")
    first = import_lean(url, root)
    again = import_lean(url, root)
    assert first.rows == again.rows
    engine = make_engine(url)
    try:
        tables = LeanTables()
        assert _count(engine, tables.bars) == first.bars
        assert _count(engine, tables.trade_ticks) == first.trade_ticks
    finally:
        engine.dispose()


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_import_of_the_goog_day_and_rollback(pg_url, pg_schema, tmp_path) -> None:
    result = import_lean(pg_url, LEAN, symbols=["GOOG"], dates=[XMAS], schema=pg_schema, stocks={"GOOG": GOOG})
    assert result.instruments == 2193 and result.open_interest == 2058
    t = datetime(2015, 12, 24, 15, 0, tzinfo=UTC)
    bars = _bars(pg_url, symbol="GOOG", start=t, end=datetime(2015, 12, 24, 15, 1, tzinfo=UTC), schema=pg_schema)
    assert bars[(t, 208813720, "BID")].close == 746.61 and bars[(t, 208813720, "ASK")].close == 747.63
    assert bars[(t, C750, "BID")].close == 12.20 and bars[(t, C750, "ASK")].close == 12.90
    assert len(read_chain(pg_url, "GOOG", XMAS, schema=pg_schema)) == 2192
    assert read_open_interest(pg_url, "GOOG", XMAS, schema=pg_schema)[C750] == 889
    # a malformed file in a later import leaves everything as it was
    bad = _mini(tmp_path / "bad", "20150706", "34200000,1,2,3\n")
    with pytest.raises(LeanFormatError, match="line 1: expected 11 columns, got 4"):
        import_lean(pg_url, bad, schema=pg_schema)
    assert read_bars(pg_url, symbol="XYZ", schema=pg_schema) == []
    engine = make_engine(pg_url)
    try:
        assert _count(engine, LeanTables(pg_schema).bars) == result.bars
    finally:
        engine.dispose()


# --- desk import lean (the command line) -------------------------------------------------------


def _desk(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESK_") or k == "DESK_ENGINE_SOCKET"}
    env["DESK_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    return subprocess.run(
        [sys.executable, "-m", "desk", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_cli_import_lean(tmp_path) -> None:
    root = _mini(tmp_path / "lean")
    ok = _desk("import", "lean", str(root), "--symbols", "xyz", "--date", "2015-07-07", tmp_path=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("desk: imported 7 bars, 0 open-interest rows, 2 trade ticks, 1 instruments")
    assert "committing 100.0%" in ok.stderr  # the progress line (one per phase when not a terminal)
    assert len(read_bars(f"sqlite:///{tmp_path / 'cli.sqlite3'}", symbol="XYZ")) == 5  # 2 x BID, ASK + TRADES
    bad = _mini(tmp_path / "bad", "20150706", "34200000,1,2\n")
    failed = _desk("import", "lean", str(bad), tmp_path=tmp_path)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.strip().splitlines()[-1] == (
        "desk: import failed, nothing imported: equity/usa/minute/xyz/20150706_quote.zip:"
        "20150706_xyz_minute_quote.csv line 1: expected 11 columns, got 3"
    )
    usage = _desk("import", "lean", str(root), "--date", "July 7", tmp_path=tmp_path)
    assert usage.returncode == 2 and "bad date 'July 7'" in usage.stderr
