"""Spool file encoding (property-based) and the on-disk spool queue."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store_testlib import assert_same_rows, make_ticks
from desk.domain.models import TickRecord
from desk.store.spool import MAGIC, Spool, SpoolCorrupt, decode_batch, encode_batch

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
times = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]),
)
ticks = st.builds(
    TickRecord,
    time=times,
    con_id=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    symbol=st.text(max_size=40),
    kind=st.sampled_from(["Q", "T"]) | st.text(min_size=1, max_size=1),
    bid=floats,
    ask=floats,
    bid_size=floats,
    ask_size=floats,
    price=floats,
    size=floats,
)


def _same(a: TickRecord, b: TickRecord) -> bool:
    if a.time != b.time or b.time.tzinfo is not timezone.utc:
        return False
    for x, y in zip(a[1:], b[1:], strict=True):
        if isinstance(x, float):
            if not ((math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x) == math.copysign(1, y))):
                return False
        elif x != y:
            return False
    return True


@given(rows=st.lists(ticks, max_size=30), batch_id=st.uuids())
def test_encode_decode_round_trip(rows, batch_id):
    got_id, got = decode_batch(encode_batch(batch_id, rows))
    assert got_id == batch_id
    assert len(got) == len(rows)
    assert all(_same(a, b) for a, b in zip(rows, got, strict=True))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ticks, min_size=1, max_size=10), data=st.data())
def test_truncated_file_is_detected(rows, data):
    blob = encode_batch(uuid.uuid4(), rows)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    with pytest.raises(SpoolCorrupt):
        decode_batch(blob[:cut])


@given(rows=st.lists(ticks, min_size=1, max_size=10), data=st.data())
def test_flipped_byte_is_detected(rows, data):
    blob = bytearray(encode_batch(uuid.uuid4(), rows))
    pos = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    blob[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(SpoolCorrupt):
        decode_batch(bytes(blob))


def test_spool_keeps_order_across_reopen_and_deletes_replayed(tmp_path):
    spool = Spool(tmp_path / "spool")
    assert spool.open() == []
    batches = [(uuid.uuid4(), make_ticks(50, seed=i)) for i in range(3)]
    for batch_id, rows in batches:
        assert spool.append(batch_id, rows) == ""
    assert spool.rows_pending == 150

    again = Spool(tmp_path / "spool")
    assert again.open() == []
    assert again.rows_pending == 150
    for batch_id, rows in batches:
        entry = again.first()
        assert entry is not None and entry.batch_id == batch_id
        assert_same_rows(rows, again.load(entry))
        again.pop_first(entry)
    assert again.first() is None and again.rows_pending == 0
    assert list((tmp_path / "spool").glob("*.spool")) == []
    # numbering continues after the files that existed
    again.append(uuid.uuid4(), make_ticks(1))
    assert [p.name[:12] for p in (tmp_path / "spool").glob("*.spool")] == ["000000000004"]


def test_spool_adopts_complete_tmp_and_quarantines_damaged_files(tmp_path):
    d = tmp_path / "spool"
    d.mkdir()
    good_id = uuid.uuid4()
    (d / f"000000000001-{good_id.hex}.spool.tmp").write_bytes(encode_batch(good_id, make_ticks(5)))
    bad_id = uuid.uuid4()
    (d / f"000000000002-{bad_id.hex}.spool.tmp").write_bytes(encode_batch(bad_id, make_ticks(5))[:-3])
    (d / f"000000000003-{uuid.uuid4().hex}.spool").write_bytes(MAGIC[:4])

    spool = Spool(d)
    warnings = spool.open()
    assert len(warnings) == 3
    assert spool.rows_pending == 5 and spool.first().batch_id == good_id
    assert len(list((d / "corrupt").iterdir())) == 2


def test_damaged_file_found_at_load_is_quarantined(tmp_path):
    spool = Spool(tmp_path)
    spool.open()
    spool.append(uuid.uuid4(), make_ticks(3))
    entry = spool.first()
    entry.path.write_bytes(entry.path.read_bytes()[:-1])
    with pytest.raises(SpoolCorrupt):
        spool.load(entry)
    assert "moved to" in spool.quarantine_first(entry, "test")
    assert spool.rows_pending == 0


def test_memory_spool_without_directory():
    spool = Spool(None)
    assert spool.open() == []
    rows = make_ticks(4)
    assert spool.append(uuid.uuid4(), rows) == ""
    assert spool.load(spool.first()) is rows
