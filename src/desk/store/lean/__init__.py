"""LEAN-format market data: import into the tick store, and read it back for replay.

LEAN (QuantConnect's engine) keeps market data as zipped CSV files without headers in a
fixed folder layout (the sample shipped in ``desk/data/lean``, see its ``NOTICE.md``, is
one). :func:`import_lean` loads such a folder, or a single zip, into the tick
store; :func:`read_bars`, :func:`read_chain` and :func:`stored_days` read it back (the
simulator's replay and history do).

Supported layout (any LEAN ``Data/`` folder; ``{sym}`` lower case, ``{date}`` YYYYMMDD):

====================================================================  ===================
file                                                                  goes to
====================================================================  ===================
``equity/usa/{minute,second}/{sym}/{date}_{quote,trade}.zip``          ``bars`` (1 min / 1 secs)
``equity/usa/tick/{sym}/{date}_trade.zip``                             ``trade_ticks``
``equity/usa/{daily,hour}/{sym}.zip``                                  ``bars`` (1 day / 1 hour)
``option/usa/minute/{sym}/{date}_{quote,trade}_american.zip``          ``bars`` (per contract)
``option/usa/minute/{sym}/{date}_openinterest_american.zip``           ``open_interest``
====================================================================  ===================

Anything else (tick quotes, universes CSVs, other asset classes) is listed as skipped.

Units and times, as LEAN stores them and as desk stores them:

* prices in LEAN equity and option files are integers of 1/10,000 dollar (deci-cents):
  stored divided by 10,000, i.e. **dollars per share** (option premiums per share too:
  multiply by the multiplier, 100, for dollars per contract);
* minute / second / tick times are milliseconds since midnight **America/New_York** of
  the file's date (wall clock); daily and hour files carry ``YYYYMMDD HH:MM`` in the same
  zone. Everything is stored as a UTC instant (DST handled with :mod:`zoneinfo`). A bar's
  ``time`` is the **start** of the bar, as in LEAN and in IB's historical bars;
* sizes and volumes in shares (stocks) or contracts (options).

The package, by module (every name below is also importable from ``desk.store.lean``):

* :mod:`desk.store.lean.identifiers` — price scale, OCC symbols, deterministic conIds
  (:func:`option_con_id`, :func:`stock_con_id`), LEAN option member names;
* :mod:`desk.store.lean.layout` — the sample data and ``$DESK_LEAN_DIR``
  (:func:`default_lean_dir`), scanning a folder for importable files (:func:`scan_lean`);
* :mod:`desk.store.lean.tables` — the ``bars``, ``open_interest`` and ``trade_ticks``
  tables (:class:`LeanTables`, :func:`ensure_lean_tables`);
* :mod:`desk.store.lean.parse` — validation and parsing of LEAN CSV lines
  (:class:`LeanFormatError`);
* :mod:`desk.store.lean.importer` — :func:`import_lean`, one transaction per import;
* :mod:`desk.store.lean.reader` — :func:`read_bars`, :func:`read_bar_table`,
  :func:`read_chain`, :func:`read_open_interest`, :func:`has_day`, :func:`stored_days`.
"""

# ``X as X``: names outside ``__all__`` that were public when desk.store.lean was one module
# (SAMPLE_LEAN_DIR, the constants, OptionKey, text_line), re-exported explicitly.
from desk.store.lean.identifiers import (
    OPTION_MULTIPLIER as OPTION_MULTIPLIER,
    PRICE_SCALE,
    OptionKey as OptionKey,
    occ_symbol,
    option_con_id,
    parse_option_member,
    stock_con_id,
)
from desk.store.lean.importer import ImportProgress, ImportResult, import_lean
from desk.store.lean.layout import (
    BAR_SIZE_OF_RESOLUTION as BAR_SIZE_OF_RESOLUTION,
    SAMPLE_LEAN_DIR as SAMPLE_LEAN_DIR,
    LeanFile,
    LeanScan,
    default_lean_dir,
    scan_lean,
)
from desk.store.lean.parse import LeanFormatError, text_line as text_line
from desk.store.lean.reader import (
    BAR_TABLE_COLUMNS as BAR_TABLE_COLUMNS,
    StoredBar,
    has_day,
    read_bar_table,
    read_bars,
    read_chain,
    read_open_interest,
    stored_days,
)
from desk.store.lean.tables import (
    BAR_COLUMNS as BAR_COLUMNS,
    BARS_TABLE,
    OI_COLUMNS as OI_COLUMNS,
    OPEN_INTEREST_TABLE,
    TICK_COLUMNS as TICK_COLUMNS,
    TRADE_TICKS_TABLE,
    LeanTables,
    ensure_lean_tables,
)

__all__ = [
    "BARS_TABLE",
    "ImportProgress",
    "ImportResult",
    "LeanFile",
    "LeanFormatError",
    "LeanScan",
    "LeanTables",
    "OPEN_INTEREST_TABLE",
    "PRICE_SCALE",
    "StoredBar",
    "TRADE_TICKS_TABLE",
    "default_lean_dir",
    "ensure_lean_tables",
    "import_lean",
    "occ_symbol",
    "option_con_id",
    "parse_option_member",
    "read_bars",
    "read_chain",
    "read_open_interest",
    "scan_lean",
    "stock_con_id",
    "has_day",
    "read_bar_table",
    "stored_days",
]
