"""OpportunityBook (identity across scans, first/last seen, best edge) and ChainScanner
(when it rescans what), plus the layering rule: desk.arbitrage imports no UI and no IB."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from arb_chainlib import NOW, make_chain

from desk.arbitrage import (
    EUROPEAN,
    Carry,
    ChainScanner,
    Costs,
    OpportunityBook,
    OpportunityKind,
    carry_from_settings,
    changed_cells,
    costs_from_settings,
    scan_chain,
)
from desk.settings import load_settings

CARRY = Carry(rate=0.05, borrow_rate=0.01)
STRIKES = np.arange(60.0, 141.0, 5.0)


def base():
    return make_chain(strikes=STRIKES, carry=CARRY)


def with_rich_call(snap, e: int, strike: float, delta: float):
    i = int(np.searchsorted(STRIKES, strike))
    cb, ca = snap.call_bid.copy(), snap.call_ask.copy()
    cb[e, i] += delta
    ca[e, i] += delta
    return replace(snap, call_bid=cb, call_ask=ca)


def conversions(opps):
    return [o for o in opps if o.kind is OpportunityKind.CONVERSION]


def test_book_keeps_first_seen_moves_last_seen_and_tracks_the_best_edge() -> None:
    book = OpportunityBook()
    t0 = NOW
    s0 = with_rich_call(base(), 1, 100.0, 0.50)
    u = book.update("XYZ", conversions(scan_chain(s0, CARRY)), t0)
    assert len(u.new) == 1 and not u.kept and not u.gone
    first = u.new[0]
    assert first.first_seen == first.last_seen == t0
    assert first.best_edge_total == first.edge_total
    # a smaller edge a second later: same opportunity, first_seen kept, best edge kept
    t1 = t0 + timedelta(seconds=1)
    s1 = replace(with_rich_call(base(), 1, 100.0, 0.30), now=t1)
    u = book.update("XYZ", conversions(scan_chain(s1, CARRY)), t1)
    assert not u.new and not u.gone and len(u.kept) == 1
    again = u.kept[0]
    assert again.key == first.key
    assert again.first_seen == t0 and again.last_seen == t1
    assert again.edge_total < first.edge_total
    assert again.best_edge_total == first.edge_total
    # gone when the quote is fixed; new again when it comes back
    t2 = t1 + timedelta(seconds=1)
    u = book.update("XYZ", conversions(scan_chain(replace(base(), now=t2), CARRY)), t2)
    assert [o.key for o in u.gone] == [first.key] and not u.new and len(book) == 0
    t3 = t2 + timedelta(seconds=1)
    u = book.update("XYZ", conversions(scan_chain(replace(s0, now=t3), CARRY)), t3)
    assert len(u.new) == 1 and u.new[0].first_seen == t3


def test_book_separates_symbols_and_refuses_mixups() -> None:
    book = OpportunityBook()
    a = conversions(scan_chain(with_rich_call(base(), 1, 100.0, 0.5), CARRY))
    b = conversions(scan_chain(with_rich_call(make_chain(strikes=STRIKES, carry=CARRY, symbol="ABC"), 2, 95.0, 0.9), CARRY))
    book.update("XYZ", a, NOW)
    book.update("ABC", b, NOW)
    assert len(book) == 2
    assert [o.symbol for o in book.current("ABC")] == ["ABC"]
    assert book.current()[0].edge_total >= book.current()[1].edge_total
    book.update("ABC", [], NOW)
    assert [o.symbol for o in book.current()] == ["XYZ"]
    with pytest.raises(ValueError, match="opportunity of 'XYZ' passed to the update of 'ABC'"):
        book.update("ABC", a, NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        book.update("XYZ", a, datetime(2024, 3, 4, 10, 0))
    book.clear()
    assert len(book) == 0


def test_scanner_rescans_only_changed_rows_and_columns() -> None:
    scanner = ChainScanner(CARRY, Costs(), style=EUROPEAN, full_every=60.0)
    s0 = base()
    assert scanner.scan(s0) == [] and scanner.last_mode == "full"
    s1 = with_rich_call(s0, 1, 100.0, 0.5)
    assert changed_cells(s0, s1).sum() == 1
    found = scanner.scan(s1)
    assert scanner.last_mode == "incremental" and (scanner.last_rows, scanner.last_cols) == (1, 1)
    assert conversions(found) and {o.expiry for o in found} == {s1.expiry_strings[1]}
    # unchanged quotes: nothing rescanned, the same opportunities
    assert scanner.scan(s1) == found and (scanner.last_rows, scanner.last_cols) == (0, 0)
    # the stock moved: full scan
    scanner.scan(replace(s1, under_bid=s1.under_bid + 0.01))
    assert scanner.last_mode == "full"
    # time passed beyond full_every: full scan
    scanner.scan(replace(s1, under_bid=s1.under_bid + 0.01, now=NOW + timedelta(seconds=61)))
    assert scanner.last_mode == "full"
    # another grid: full scan
    other = make_chain(strikes=STRIKES[:-1], carry=CARRY)
    scanner.scan(other)
    assert scanner.last_mode == "full"


def test_scanner_takes_the_callers_mask_and_checks_its_shape() -> None:
    scanner = ChainScanner(CARRY, Costs(), style=EUROPEAN, full_every=60.0)
    s0 = base()
    scanner.scan(s0)
    s1 = with_rich_call(s0, 1, 100.0, 0.5)
    # a mask that says nothing changed: the scanner trusts it and keeps the old (empty) result
    assert scanner.scan(s1, changed=np.zeros(s1.shape, dtype=bool)) == []
    mask = np.zeros(s1.shape, dtype=bool)
    mask[1, 8] = True
    assert conversions(scanner.scan(s1, changed=mask))
    with pytest.raises(ValueError, match=r"changed must have shape \(4, 17\)"):
        scanner.scan(s1, changed=np.zeros((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="full_every"):
        ChainScanner(full_every=-1)
    with pytest.raises(ValueError, match="unknown scanner"):
        ChainScanner(kinds=("boxes",))
    with pytest.raises(ValueError, match="different expiries or strikes"):
        changed_cells(s0, make_chain(strikes=STRIKES[:-1]))


def test_full_every_zero_always_scans_everything() -> None:
    scanner = ChainScanner(CARRY, Costs(), full_every=0.0)
    scanner.scan(base())
    scanner.scan(with_rich_call(base(), 1, 100.0, 0.5))
    assert scanner.last_mode == "full"


def test_carry_and_costs_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DESK_ARB_RATE", "DESK_ARB_BORROW_RATE", "DESK_ARB_FEE_PER_CONTRACT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DESK_ARB_RATE", "0.031")
    monkeypatch.setenv("DESK_ARB_FEE_PER_CONTRACT", "0.07")
    settings = load_settings()
    carry = carry_from_settings(settings, [(date(2024, 5, 10), 0.25)])
    assert carry.rate == 0.031 and carry.borrow_rate == 0.0025
    assert carry.dividends[0].amount == 0.25
    costs = costs_from_settings(settings)
    assert float(costs.option_order(10, 1.0)) == pytest.approx(10 * 0.65 + 10 * 0.07)
    assert settings.arb_full_scan_seconds == 1.0 and settings.arb_min_edge == 0.0


def test_arbitrage_imports_no_ui_no_ib_no_database() -> None:
    code = (
        "import sys, desk.arbitrage; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'ib_async', 'sqlalchemy', 'redis', 'psycopg')"
        " or m.startswith(('desk.ui', 'desk.broker', 'desk.store', 'desk.sim', 'desk.risk'))); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_now_is_utc_in_the_opportunities() -> None:
    snap = replace(with_rich_call(base(), 1, 100.0, 0.5), now=NOW.astimezone(UTC))
    assert all(o.first_seen.tzinfo is not None for o in scan_chain(snap, CARRY))
