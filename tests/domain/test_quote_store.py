"""The quote store's dirty set and its ``on_dirty`` hook (a view flushes at once after a
quiet spell: the first quote of a start paints without waiting for the flush timer)."""

from __future__ import annotations

from desk.domain import Instrument, QuoteStore

SPY = Instrument("SPY", con_id=756733, primary_exchange="ARCA")
QQQ = Instrument("QQQ", con_id=320227571, primary_exchange="NASDAQ")


def test_on_dirty_fires_once_per_quiet_spell() -> None:
    store = QuoteStore()
    calls: list[set[int]] = []
    store.on_dirty = lambda: calls.append(set(store._dirty))
    store.ensure(SPY)  # a new row is dirty: the first call, with that row already marked
    store.ensure(QQQ)
    store.update(SPY.con_id, bid=500.0, ask=500.02)
    assert calls == [{SPY.con_id}]
    assert store.drain_dirty() == {SPY.con_id, QQQ.con_id}
    store.update(QQQ.con_id, bid=400.0)  # dirty again after the drain: called again
    store.update(SPY.con_id, last=500.01)
    store.mark_dirty(QQQ.con_id)
    assert calls == [{SPY.con_id}, {QQQ.con_id}]
    assert store.drain_dirty() == {SPY.con_id, QQQ.con_id}
    store.update(999, bid=1.0)  # an unknown conId changes nothing and calls nothing
    store.mark_dirty(999)
    assert len(calls) == 2 and store.drain_dirty() == set()


def test_without_hook_the_store_only_marks() -> None:
    store = QuoteStore()
    store.ensure(SPY)
    store.update(SPY.con_id, bid=1.0)
    assert store.drain_dirty() == {SPY.con_id}
    assert store.get(SPY.con_id).bid == 1.0
