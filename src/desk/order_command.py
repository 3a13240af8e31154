"""``desk order``: preview, place, list and cancel orders from a shell, through the very
same order service, gate and checks as the desk.

It connects like the collector (``DESK_IB_PORT``, or in sim mode an embedded simulator
of its own), with its own API client id (``--client-id``, default ``DESK_IB_CLIENT_ID`` +
100, so it can run beside a desk on the same gateway), reconciles with the gateway and
the audit log, then:

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
import dataclasses
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parser is built at every `desk` start: keep its imports light
    from desk.domain import Instrument
    from desk.risk import OrderIntent

__all__ = ["OrderArgsError", "OrderSpec", "add_order_parser", "parse_terms", "run_order_command"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3
_EXPIRY = re.compile(r"^\d{8}$")
_TYPES = ("LMT", "MKT", "STP", "STP LMT")
_TIFS = ("DAY", "GTC", "IOC")


class OrderArgsError(ValueError):
    """Bad order terms on the command line; ``str()`` is one line."""


@dataclasses.dataclass(frozen=True)
class ContractSpec:
    """A contract named on the command line: a stock (``expiry`` empty) or an option."""

    symbol: str
    expiry: str = ""
    strike: float = 0.0
    right: str = ""

    @property
    def is_option(self) -> bool:
        return bool(self.expiry)


@dataclasses.dataclass(frozen=True)
class LegSpec:
    """One ``--leg``: action, ratio, and the contract (``STK``: the underlying)."""

    action: str
    ratio: int
    contract: ContractSpec


@dataclasses.dataclass(frozen=True)
class OrderSpec:
    """Parsed order terms (see the module doc)."""

    action: str
    quantity: int
    contract: ContractSpec
    order_type: str
    limit_price: float | None
    stop_price: float | None
    tif: str
    legs: tuple[LegSpec, ...] = ()
    outside_rth: bool = False


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise OrderArgsError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise OrderArgsError(f"{what} must be finite, got {text!r}")
    return value


def _contract(tokens: list[str], symbol: str, what: str) -> tuple[ContractSpec, list[str]]:
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
        return ContractSpec(symbol, expiry, strike, right), tokens[3:]
    return ContractSpec(symbol), tokens


def parse_leg(text: str, symbol: str) -> LegSpec:
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
        return LegSpec(action, int(tokens[1]), ContractSpec(symbol))
    contract, rest = _contract(tokens[2:], symbol, f"--leg {text!r}")
    if not contract.is_option or rest:
        raise OrderArgsError(f"--leg {text!r}: write ACTION RATIO STK or ACTION RATIO EXPIRY STRIKE RIGHT")
    return LegSpec(action, int(tokens[1]), contract)


def parse_terms(tokens: Sequence[str], legs: Sequence[str] = (), *, outside_rth: bool = False) -> OrderSpec:
    """Parse ``ACTION QUANTITY SYMBOL [EXPIRY STRIKE RIGHT] TYPE [PRICES] [TIF]`` and the
    ``--leg`` texts. Raises :class:`OrderArgsError` naming what is wrong."""
    toks = list(tokens)
    if len(toks) < 4:
        raise OrderArgsError("write ACTION QUANTITY SYMBOL [EXPIRY STRIKE RIGHT] TYPE [PRICES] [TIF], "
                             "e.g. BUY 2 SPY 20261218 600 C LMT 2.10")
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
    return OrderSpec(action, int(toks[1]), contract, kind, limit, stop, tif, parsed_legs, outside_rth)


def add_order_parser(sub: Any) -> None:
    """Register ``desk order`` on the CLI's subparsers."""
    order = sub.add_parser("order", help="preview, place, list or cancel orders through the desk's checks")
    osub = order.add_subparsers(dest="order_command", metavar="{preview,place,list,cancel}", required=True)
    for name, text in (("preview", "every pre-trade check, notional, commission and IB's what-if"),
                       ("place", "send the order through every gate and check")):
        p = osub.add_parser(name, help=text)
        p.add_argument("terms", nargs="+", metavar="TERM",
                       help="ACTION QUANTITY SYMBOL [EXPIRY STRIKE RIGHT] TYPE [PRICES] [TIF]")
        p.add_argument("--leg", action="append", default=[], metavar="LEG",
                       help='a combo leg: "BUY 100 STK" or "SELL 1 20261218 600 C" (repeat, 2 to 4)')
        p.add_argument("--outside-rth", action="store_true", help="let a stock limit order work outside regular hours")
        p.add_argument("--confirm", metavar="SYMBOL", help="live mode: the symbol typed to confirm the order")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument("--wait", type=float, default=5.0, metavar="S",
                       help="seconds to wait for quotes and the gateway's answer (default 5)")
        p.add_argument("--client-id", type=int, default=None, metavar="N", help="API client id (default DESK_IB_CLIENT_ID + 100)")
    ls = osub.add_parser("list", help="the gateway's orders and the audit log's states")
    ls.add_argument("--json", action="store_true", help="print one JSON array")
    ls.add_argument("--client-id", type=int, default=None, metavar="N", help="API client id (default DESK_IB_CLIENT_ID + 100)")
    cancel = osub.add_parser("cancel", help="cancel one working order by its orderRef")
    cancel.add_argument("order_ref", metavar="ORDERREF")
    cancel.add_argument("--wait", type=float, default=5.0, metavar="S", help="seconds to wait for the gateway (default 5)")
    cancel.add_argument("--client-id", type=int, default=None, metavar="N", help="API client id (default DESK_IB_CLIENT_ID + 100)")


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


async def _run(args: argparse.Namespace, settings: Any, spec: OrderSpec | None) -> int:
    from desk.risk import RiskInputError
    from desk.runtime import Runtime, RuntimeStartError

    runtime = Runtime(settings)
    try:
        try:
            await runtime.start()
        except RuntimeStartError as exc:
            _err(str(exc))
            return EXIT_FAILED
        if not await _ready(runtime, getattr(args, "wait", 5.0) + settings.ib_connect_timeout * 2):
            _err(f"could not connect and reconcile with the gateway at {runtime.endpoint} "
                 f"({runtime.broker.state.value}; {runtime.orders.audit_status().line})")
            return EXIT_FAILED
        if args.order_command == "list":
            return _list(runtime, args.json)
        if args.order_command == "cancel":
            return await _cancel(runtime, args.order_ref, args.wait)
        if spec is None:
            return EXIT_BAD_INPUT
        try:
            intent = await _intent(runtime, spec, args.wait)
        except OrderArgsError as exc:
            _err(str(exc))
            return EXIT_BAD_INPUT
        except RiskInputError as exc:
            _err(str(exc))
            return EXIT_BAD_INPUT
        except Exception as exc:  # the gateway's one-line reasons (unknown contract...)
            _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return EXIT_BAD_INPUT
        await _quotes(runtime, intent, args.wait)
        if args.order_command == "preview":
            return await _preview(runtime, intent, args.json, args.confirm)
        return await _place(runtime, intent, args.confirm, args.json, args.wait)
    finally:
        await runtime.stop()


async def _ready(runtime: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runtime.orders.ready and runtime.broker.state.value == "connected":
            return True
        await asyncio.sleep(0.05)
    return False


async def _intent(runtime: Any, spec: OrderSpec, wait: float) -> OrderIntent:
    from desk.domain import Instrument
    from desk.risk import ComboLeg, OrderIntent

    broker = runtime.broker

    async def qualify(c: ContractSpec) -> Instrument:
        return await broker.watch_contract(c.symbol, expiry=c.expiry, strike=c.strike, right=c.right,
                                           timeout=max(2.0, wait))

    if spec.legs:
        legs = []
        for leg in spec.legs:
            ins = await qualify(leg.contract)
            legs.append(ComboLeg(ins, leg.action, leg.ratio))
        await qualify(ContractSpec(spec.contract.symbol))  # the underlying: payoff centre, margin
        instrument = Instrument(spec.contract.symbol, "BAG", multiplier=100, min_tick=0.01)
        return OrderIntent(instrument, spec.action, spec.quantity, spec.order_type, limit_price=spec.limit_price,
                           stop_price=spec.stop_price, tif=spec.tif, outside_rth=spec.outside_rth, legs=tuple(legs))
    instrument = await qualify(spec.contract)
    if spec.contract.is_option:
        await qualify(ContractSpec(spec.contract.symbol))
    return OrderIntent(instrument, spec.action, spec.quantity, spec.order_type, limit_price=spec.limit_price,
                       stop_price=spec.stop_price, tif=spec.tif, outside_rth=spec.outside_rth)


async def _quotes(runtime: Any, intent: OrderIntent, wait: float) -> None:
    """Wait (up to ``wait`` s) for a two-sided quote of every instrument the order trades,
    and for the account's figures."""
    instruments = [leg.instrument for leg in intent.legs] or [intent.instrument]
    deadline = time.monotonic() + wait

    def have() -> bool:
        for ins in instruments:
            q = runtime.quote_for(ins)
            if q is None or not (q.bid > 0 and q.ask > 0):
                return False
        return math.isfinite(runtime.account.figures().available_funds)

    while time.monotonic() < deadline and not have():
        await asyncio.sleep(0.05)


def _whatif_json(m: Any) -> dict[str, Any] | None:
    if m is None:
        return None
    return {k: _num(v) for k, v in dataclasses.asdict(m).items()}


async def _preview(runtime: Any, intent: OrderIntent, as_json: bool, confirmation: str | None) -> int:
    orders = runtime.orders
    margin = await orders.what_if(intent)
    report = orders.preview(intent, margin)
    decision = orders.router.gate_check(intent, orders.context(intent, margin), confirmation)
    refused = report.blocked or not decision.allowed
    if as_json:
        summary = report.summary()
        _out(json.dumps({
            "order": intent.describe, "checks": summary["checks"], "notional": summary["notional"],
            "commission": summary["commission"], "whatif": _whatif_json(margin),
            "gate": {"allowed": decision.allowed, "reason": decision.reason},
            "price": summary["price"], "bid": summary["bid"], "ask": summary["ask"],
            "funds_before": summary["funds_before"], "cost": summary["cost"], "cost_basis": summary["cost_basis"],
            "funds_after": summary["funds_after"], "blocked": refused,
        }))
        return EXIT_REFUSED if refused else EXIT_OK
    _out(f"order     {intent.describe}")
    _out(f"market    bid {report.bid:,.2f}  ask {report.ask:,.2f}  (price {report.price:,.4g})")
    for leg in report.legs if intent.is_combo else ():
        _out(f"  leg     {leg.ratio}x {leg.action} {leg.instrument.key}  bid {leg.bid:,.2f}  ask {leg.ask:,.2f}")
    _out(f"gate      {'PASS' if decision.allowed else 'FAIL'} {decision.reason}")
    for c in report.checks:
        value = "" if math.isnan(c.value) else f"{c.value:,.6g}"
        limit = "" if math.isnan(c.limit) else f"{c.limit:,.6g}"
        _out(f"{'PASS' if c.passed else 'FAIL'}  {c.name:<17} {value:>14} {limit:>14}  {c.message}")
    _out(f"notional  ${report.notional:,.2f}" + (" (gross over the legs)" if intent.is_combo else ""))
    _out(f"commission ${report.commission:,.2f}")
    if margin is not None:
        _out(f"what-if   init margin {margin.init_margin_before:,.2f} {margin.init_margin_change:+,.2f} -> "
             f"{margin.init_margin_after:,.2f}; equity with loan change {margin.equity_with_loan_change:+,.2f}")
    else:
        _out("what-if   no margin preview from IB")
    _out(f"funds     {report.funds_before:,.2f} -> {report.funds_after:,.2f} (cost {report.cost:,.2f}, {report.cost_basis})")
    _out("REFUSED" if refused else "all checks pass")
    return EXIT_REFUSED if refused else EXIT_OK


async def _place(runtime: Any, intent: OrderIntent, confirmation: str | None, as_json: bool, wait: float) -> int:
    orders = runtime.orders
    margin = await orders.what_if(intent)
    result = await orders.place(intent, confirmation, margin)
    status = ""
    error = ""
    if result.sent:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            row = orders.rows.get(result.client_order_id)
            if row is not None and row.status not in ("PendingSubmit", "ApiPending", ""):
                status, error = row.status, row.error
                if status != "PreSubmitted":
                    break
            await asyncio.sleep(0.05)
        await orders.trail.drain()
    refused = not result.sent or status == "Rejected"
    if as_json:
        _out(json.dumps({"status": result.status, "order_ref": result.client_order_id, "gateway_status": status,
                         "error": error, "reasons": list(result.reasons), "order": intent.describe}))
    elif result.sent:
        _out(f"{result.client_order_id}  {intent.describe}  {status or 'sent, no answer from the gateway yet'}"
             + (f"  {error}" if error else ""))
    else:
        _out(f"{result.status}: " + "; ".join(result.reasons))
    return EXIT_REFUSED if refused else EXIT_OK


def _row_json(row: Any) -> dict[str, Any]:
    return {
        "order_ref": row.order_ref, "order_id": row.order_id, "perm_id": row.perm_id, "order": row.describe,
        "status": row.status, "filled": row.filled, "remaining": row.remaining, "avg_price": _num(row.avg_price),
        "error": row.error, "legs": [f"{leg.ratio}x {leg.action} {leg.instrument.key}" for leg in row.legs],
    }


def _list(runtime: Any, as_json: bool) -> int:
    rows = sorted(runtime.orders.rows.values(), key=lambda r: (r.order_id or 10**12, r.order_ref))
    if as_json:
        _out(json.dumps([_row_json(r) for r in rows]))
        return EXIT_OK
    if not rows:
        _out("no orders at the gateway today")
    for r in rows:
        avg = f"{r.avg_price:,.4g}" if math.isfinite(r.avg_price) else "-"
        _out(f"{r.order_ref:<30} {r.status:<13} {r.filled:>6g}/{r.quantity:<6g} avg {avg:<9} {r.describe}"
             + (f"  {r.error}" if r.error else ""))
    return EXIT_OK


async def _cancel(runtime: Any, order_ref: str, wait: float) -> int:
    from desk.domain.orders import OrderNotSent

    orders = runtime.orders
    try:
        await orders.cancel(order_ref)
    except OrderNotSent as exc:
        _err(str(exc))
        return EXIT_REFUSED
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        row = orders.rows.get(order_ref)
        if row is not None and not row.working:
            break
        await asyncio.sleep(0.05)
    await orders.trail.drain()
    row = orders.rows.get(order_ref)
    _out(f"{order_ref}  {row.status if row is not None else 'unknown'}")
    return EXIT_OK if row is not None and not row.working else EXIT_REFUSED
