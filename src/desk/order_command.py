"""``desk order``: preview, place, list and cancel orders from a shell, through the very
same order service, gate and checks as the desk.

When an engine is running (``desk`` or ``desk --headless``, on ``DESK_ENGINE_SOCKET``) it
asks that engine over the engine API (:mod:`desk.engine`): same checks, same order book,
no second gateway connection. Otherwise it runs the engine's objects itself and connects
like the collector (``DESK_IB_PORT``, or in sim mode an embedded simulator of its own),
with its own API client id (``--client-id``, default ``DESK_IB_CLIENT_ID`` + 100, so it
can run beside a desk on the same gateway), reconciles with the gateway and the audit
log. Either way the operations are :mod:`desk.engine.operations`. Then:

* ``desk order preview BUY 2 SPY 20261218 600 C LMT 2.10 [DAY]`` — every check (PASS /
  FAIL, value, limit), the notional, the commission and IB's what-if; ``--json`` prints one
  object ``{"checks": [{"name", "passed", "value", "limit", "text"}...], "notional",
  "commission", "whatif", "gate", ...}``;
* combos: ``desk order preview BUY 1 SPY LMT 599.50 --leg "BUY 100 STK" --leg "SELL 1
  20261218 600 C" --leg "BUY 1 20261218 600 P"`` (the net price per share of a combo of
  multiplier 100: here a conversion, S - C + P);
* ``desk order place ...`` (same arguments; paper and live keep every gate, ``--confirm
  SYMBOL`` is the live typed confirmation), ``desk order list [--json]``, ``desk order
  cancel ORDERREF``.

Order terms: ``ACTION QUANTITY SYMBOL [EXPIRY STRIKE RIGHT] TYPE [PRICES] [TIF]`` with
TYPE ``LMT PRICE``, ``MKT``, ``STP STOP`` or ``STP LMT STOP LIMIT``; prices in dollars per
share (net per combo unit); TIF ``DAY`` (default), ``GTC`` or ``IOC``.

Exit codes: 0 every check passed / the order was accepted (or listed, cancelled); 3 a gate
or a check refused it (or the gateway rejected it); 2 bad input, one line saying what is
wrong; 1 the gateway or the database could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from desk.engine.api import ContractTerms, LegTerms, OrderTerms
from desk.domain.orders import price_str

if TYPE_CHECKING:  # the parser is built at every `desk` start: keep its imports light
    from desk.engine import api
    from desk.engine.client import EngineView

__all__ = ["OrderArgsError", "parse_terms", "run_order_command"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3
_EXPIRY = re.compile(r"^\d{8}$")
_TYPES = ("LMT", "MKT", "STP", "STP LMT")
_TIFS = ("DAY", "GTC", "IOC")


class OrderArgsError(ValueError):
    """Bad order terms on the command line; ``str()`` is one line."""


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise OrderArgsError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise OrderArgsError(f"{what} must be finite, got {text!r}")
    return value


def _contract(tokens: list[str], symbol: str, what: str) -> tuple[ContractTerms, list[str]]:
    """``[EXPIRY STRIKE RIGHT]`` after a symbol: an option when the next token is a date."""
    if tokens and _EXPIRY.match(tokens[0]):
        if len(tokens) < 3:
            raise OrderArgsError(f"{what}: an option needs EXPIRY STRIKE RIGHT, e.g. 20261218 600 C")
        expiry, strike, right = tokens[0], _number(tokens[1], f"{what} strike"), tokens[2].upper()
        if right in ("CALL", "PUT"):
            right = right[0]
        if right not in ("C", "P"):
            raise OrderArgsError(f"{what}: option right must be C or P, got {tokens[2]!r}")
        if strike <= 0:
            raise OrderArgsError(f"{what}: strike must be > 0, got {tokens[1]!r}")
        return ContractTerms(symbol, expiry, strike, right), tokens[3:]
    return ContractTerms(symbol), tokens


def parse_leg(text: str, symbol: str) -> LegTerms:
    """``"BUY 100 STK"`` or ``"SELL 1 20261218 600 C"`` (a leg of ``symbol``)."""
    tokens = text.split()
    if len(tokens) < 3:
        raise OrderArgsError(f"--leg {text!r}: write ACTION RATIO STK or ACTION RATIO EXPIRY STRIKE RIGHT")
    action = tokens[0].upper()
    if action not in ("BUY", "SELL"):
        raise OrderArgsError(f"--leg {text!r}: action must be BUY or SELL")
    if not tokens[1].isdigit() or int(tokens[1]) <= 0:
        raise OrderArgsError(f"--leg {text!r}: ratio must be a whole number > 0")
    if tokens[2].upper() == "STK":
        if len(tokens) > 3:
            raise OrderArgsError(f"--leg {text!r}: unexpected {' '.join(tokens[3:])!r}")
        return LegTerms(action, int(tokens[1]), ContractTerms(symbol))
    contract, rest = _contract(tokens[2:], symbol, f"--leg {text!r}")
    if not contract.is_option or rest:
        raise OrderArgsError(f"--leg {text!r}: write ACTION RATIO STK or ACTION RATIO EXPIRY STRIKE RIGHT")
    return LegTerms(action, int(tokens[1]), contract)


def parse_terms(tokens: Sequence[str], legs: Sequence[str] = (), *, outside_rth: bool = False) -> OrderTerms:
    """Parse ``ACTION QUANTITY SYMBOL [EXPIRY STRIKE RIGHT] TYPE [PRICES] [TIF]`` and the
    ``--leg`` texts. Raises :class:`OrderArgsError` naming what is wrong."""
    toks = list(tokens)
    if len(toks) < 4:
        raise OrderArgsError(
            "write ACTION QUANTITY SYMBOL [EXPIRY STRIKE RIGHT] TYPE [PRICES] [TIF], e.g. BUY 2 SPY 20261218 600 C LMT 2.10"
        )
    action = toks[0].upper()
    if action not in ("BUY", "SELL"):
        raise OrderArgsError(f"action must be BUY or SELL, got {toks[0]!r}")
    if not toks[1].isdigit() or int(toks[1]) <= 0:
        raise OrderArgsError(f"quantity must be a whole number > 0, got {toks[1]!r}")
    symbol = toks[2].upper()
    if not re.match(r"^[A-Z][A-Z0-9.\-]{0,11}$", symbol):
        raise OrderArgsError(f"symbol {toks[2]!r} is not a ticker symbol")
    contract, rest = _contract(toks[3:], symbol, "the contract")
    if not rest:
        raise OrderArgsError("order type missing: LMT PRICE, MKT, STP STOP or STP LMT STOP LIMIT")
    kind = rest.pop(0).upper()
    if kind == "STP" and rest and rest[0].upper() == "LMT":
        rest.pop(0)
        kind = "STP LMT"
    if kind not in _TYPES:
        raise OrderArgsError(f"order type must be LMT, MKT, STP or STP LMT, got {kind!r}")
    limit = stop = None
    need = {"LMT": ["limit price"], "MKT": [], "STP": ["stop price"], "STP LMT": ["stop price", "limit price"]}[kind]
    values = []
    for what in need:
        if not rest:
            raise OrderArgsError(f"{kind} order needs a {what}")
        values.append(_number(rest.pop(0), what))
    if kind == "LMT":
        limit = values[0]
    elif kind == "STP":
        stop = values[0]
    elif kind == "STP LMT":
        stop, limit = values
    tif = "DAY"
    if rest:
        tif = rest.pop(0).upper()
        if tif not in _TIFS:
            raise OrderArgsError(f"TIF must be DAY, GTC or IOC, got {tif!r}")
    if rest:
        raise OrderArgsError(f"unexpected {' '.join(rest)!r} after the order terms")
    parsed_legs = tuple(parse_leg(text, symbol) for text in legs)
    if parsed_legs and contract.is_option:
        raise OrderArgsError("a combo's SYMBOL is its underlying: put the option terms in the --leg options")
    if len(parsed_legs) == 1:
        raise OrderArgsError("a combo needs at least two --leg options")
    return OrderTerms(action, int(toks[1]), contract, kind, limit, stop, tif, parsed_legs, outside_rth)


# --------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(f"desk order: {text}", file=sys.stderr, flush=True)


def _num(x: float) -> float | None:
    return x if isinstance(x, int | float) and math.isfinite(x) else None


def run_order_command(args: argparse.Namespace, settings: Any) -> int:
    """Run ``desk order ...`` (see the module doc); returns the exit code."""
    spec = None
    if args.order_command in ("preview", "place"):
        try:
            spec = parse_terms(args.terms, args.leg, outside_rth=args.outside_rth)
        except OrderArgsError as exc:
            _err(str(exc))
            return EXIT_BAD_INPUT
    client_id = args.client_id if args.client_id is not None else settings.ib_client_id + 100
    symbols = [spec.contract.symbol] if spec is not None else []
    overrides = {"ib_client_id": client_id, "watchlist": symbols, "record": False, "sim_mispricing_rate": 0.0}
    settings = settings.model_copy(update=overrides)
    return asyncio.run(_run(args, settings, spec))


async def _run(args: argparse.Namespace, settings: Any, spec: OrderTerms | None) -> int:
    from desk.engine.client import EngineRequestError, attach

    try:
        engine = await attach(settings.effective_engine_socket, "desk order")
    except (OSError, EngineRequestError) as exc:  # an engine there that refuses us (another API version)
        _err(f"the engine on {settings.effective_engine_socket} refused: {exc}")
        return EXIT_FAILED
    if engine is not None:
        try:
            return await _do(args, engine, spec)
        finally:
            await engine.close()
    return await _run_own(args, settings, spec)


async def _run_own(args: argparse.Namespace, settings: Any, spec: OrderTerms | None) -> int:
    """No engine running: start the engine's objects here (own gateway connection)."""
    from desk.engine.local import LocalEngine
    from desk.engine.runtime import Runtime, RuntimeStartError

    runtime = Runtime(settings.model_copy(update={"engine_api": False}))
    try:
        try:
            await runtime.start()
        except RuntimeStartError as exc:
            _err(str(exc))
            return EXIT_FAILED
        # every operation first waits for the connection and the reconciliation
        return await _do(args, LocalEngine(runtime), spec)
    finally:
        await runtime.stop()


_EXIT_OF = {"bad_input": EXIT_BAD_INPUT, "refused": EXIT_REFUSED, "failed": EXIT_FAILED}


async def _do(args: argparse.Namespace, engine: EngineView, spec: OrderTerms | None) -> int:
    """Run the command on ``engine`` (running, or this process's own) and print the answer."""
    from desk.engine.client import EngineGone, EngineRequestError

    try:
        if args.order_command == "list":
            return _list(await engine.list_orders(), args.json)
        if args.order_command == "cancel":
            report = await engine.cancel(args.order_ref, wait=args.wait)
            _out(f"{report.order_ref}  {report.status}")
            return EXIT_OK if report.done else EXIT_REFUSED
        if spec is None:
            return EXIT_BAD_INPUT
        if args.order_command == "preview":
            return _preview(await engine.preview(spec, confirmation=args.confirm, wait=args.wait), args.json)
        return _place(await engine.place(spec, confirmation=args.confirm, wait=args.wait), args.json)
    except EngineRequestError as exc:
        _err(str(exc))
        return _EXIT_OF.get(exc.code, EXIT_FAILED)
    except EngineGone as exc:
        _err(str(exc))
        return EXIT_FAILED


def _whatif_json(m: api.WhatIf | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {f: _num(getattr(m, f)) for f in m.__struct_fields__}


def _preview(r: api.PreviewReport, as_json: bool) -> int:
    if as_json:
        _out(
            json.dumps(
                {
                    "order": r.order,
                    "checks": [
                        {"name": c.name, "passed": c.passed, "value": _num(c.value), "limit": _num(c.limit), "text": c.text}
                        for c in r.checks
                    ],
                    "notional": _num(r.notional),
                    "commission": _num(r.commission),
                    "whatif": _whatif_json(r.whatif),
                    "gate": {"allowed": r.gate_allowed, "reason": r.gate_reason},
                    "price": _num(r.price),
                    "bid": _num(r.bid),
                    "ask": _num(r.ask),
                    "funds_before": _num(r.funds_before),
                    "cost": _num(r.cost),
                    "cost_basis": r.cost_basis,
                    "funds_after": _num(r.funds_after),
                    "blocked": r.blocked,
                }
            )
        )
        return EXIT_REFUSED if r.blocked else EXIT_OK
    _out(f"order     {r.order}")
    _out(f"market    bid {r.bid:,.2f}  ask {r.ask:,.2f}  (price {price_str(r.price)})")
    for leg in r.legs:
        _out(f"  leg     {leg.ratio}x {leg.action} {leg.instrument}  bid {leg.bid:,.2f}  ask {leg.ask:,.2f}")
    _out(f"gate      {'PASS' if r.gate_allowed else 'FAIL'} {r.gate_reason}")
    for c in r.checks:
        value = "" if math.isnan(c.value) else f"{c.value:,.6g}"
        limit = "" if math.isnan(c.limit) else f"{c.limit:,.6g}"
        _out(f"{'PASS' if c.passed else 'FAIL'}  {c.name:<17} {value:>14} {limit:>14}  {c.text}")
    _out(f"notional  ${r.notional:,.2f}" + (" (gross over the legs)" if r.is_combo else ""))
    _out(f"commission ${r.commission:,.2f}")
    m = r.whatif
    if m is not None:
        _out(
            f"what-if   init margin {m.init_margin_before:,.2f} {m.init_margin_change:+,.2f} -> "
            f"{m.init_margin_after:,.2f}; equity with loan change {m.equity_with_loan_change:+,.2f}"
        )
    else:
        _out("what-if   no margin preview from IB")
    _out(f"funds     {r.funds_before:,.2f} -> {r.funds_after:,.2f} (cost {r.cost:,.2f}, {r.cost_basis})")
    _out("REFUSED" if r.blocked else "all checks pass")
    return EXIT_REFUSED if r.blocked else EXIT_OK


def _place(r: api.PlaceReport, as_json: bool) -> int:
    refused = not r.sent or r.gateway_status == "Rejected"
    if as_json:
        _out(
            json.dumps(
                {
                    "status": r.status,
                    "order_ref": r.order_ref,
                    "gateway_status": r.gateway_status,
                    "error": r.error,
                    "reasons": r.reasons,
                    "order": r.order,
                }
            )
        )
    elif r.sent:
        _out(
            f"{r.order_ref}  {r.order}  {r.gateway_status or 'sent, no answer from the gateway yet'}"
            + (f"  {r.error}" if r.error else "")
        )
    else:
        _out(f"{r.status}: " + "; ".join(r.reasons))
    return EXIT_REFUSED if refused else EXIT_OK


def _row_json(row: api.OrderRow) -> dict[str, Any]:
    return {
        "order_ref": row.order_ref,
        "order_id": row.order_id,
        "perm_id": row.perm_id,
        "order": row.order,
        "status": row.status,
        "filled": row.filled,
        "remaining": row.remaining,
        "avg_price": _num(row.avg_price),
        "error": row.error,
        "legs": row.legs,
    }


def _list(orders: api.OrderList, as_json: bool) -> int:
    if as_json:
        _out(json.dumps([_row_json(r) for r in orders.rows]))
        return EXIT_OK
    if not orders.rows:
        _out("no orders at the gateway today")
    for r in orders.rows:
        avg = price_str(r.avg_price) if math.isfinite(r.avg_price) else "-"
        _out(
            f"{r.order_ref:<30} {r.status:<13} {r.filled:>6g}/{r.quantity:<6g} avg {avg:<9} {r.order}"
            + (f"  {r.error}" if r.error else "")
        )
    return EXIT_OK
