"""Simulated brokerage accounts: the values a gateway reports for an account.

First slice: cash only (no positions, no fills yet), a paper-like margin account.
Values are what IB reports through ``reqAccountUpdates`` (updateAccountValue, msg 6),
``reqAccountUpdatesMulti`` (msg 73) and ``reqAccountSummary`` (msg 63): tag, value as
text, currency. Money is in the account's base currency (USD) with two decimals.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SimAccount"]

#: Reg-T overnight buying power multiple of excess equity for a margin account.
_BUYING_POWER_MULTIPLE = 4.0

#: Account summary tags IB reports without a currency.
_NO_CURRENCY = frozenset(
    {"AccountType", "Cushion", "DayTradesRemaining", "DayTradesRemainingT+1",
     "DayTradesRemainingT+2", "DayTradesRemainingT+3", "DayTradesRemainingT+4",
     "HighestSeverity", "LookAheadNextChange", "Leverage"}
)


@dataclass(slots=True)
class SimAccount:
    """One simulated account (``account_id`` like IB paper accounts: ``DU1234567``).

    ``cash`` is the settled cash balance in USD.
    """

    account_id: str
    cash: float = 1_000_000.0
    account_type: str = "INDIVIDUAL"

    def values(self) -> list[tuple[str, str, str]]:
        """``(tag, value, currency)`` rows as IB's account updates carry them.

        With no positions: net liquidation = equity with loan = cash; margin
        requirements 0; buying power 4x excess liquidity (Reg-T margin account).
        """
        cash = self.cash
        money = f"{cash:.2f}"
        zero = "0.00"
        bp = f"{cash * _BUYING_POWER_MULTIPLE:.2f}"
        rows: list[tuple[str, str, str]] = [
            ("AccountCode", self.account_id, ""),
            ("AccountType", self.account_type, ""),
            ("AccountReady", "true", ""),
            ("Currency", "USD", "USD"),
            ("NetLiquidation", money, "USD"),
            ("TotalCashValue", money, "USD"),
            ("SettledCash", money, "USD"),
            ("AccruedCash", zero, "USD"),
            ("CashBalance", money, "USD"),
            ("CashBalance", money, "BASE"),
            ("BuyingPower", bp, "USD"),
            ("EquityWithLoanValue", money, "USD"),
            ("PreviousDayEquityWithLoanValue", money, "USD"),
            ("GrossPositionValue", zero, "USD"),
            ("StockMarketValue", zero, "USD"),
            ("OptionMarketValue", zero, "USD"),
            ("RegTEquity", money, "USD"),
            ("RegTMargin", zero, "USD"),
            ("SMA", money, "USD"),
            ("InitMarginReq", zero, "USD"),
            ("MaintMarginReq", zero, "USD"),
            ("AvailableFunds", money, "USD"),
            ("ExcessLiquidity", money, "USD"),
            ("Cushion", "1", ""),
            ("FullInitMarginReq", zero, "USD"),
            ("FullMaintMarginReq", zero, "USD"),
            ("FullAvailableFunds", money, "USD"),
            ("FullExcessLiquidity", money, "USD"),
            ("LookAheadNextChange", "0", ""),
            ("LookAheadInitMarginReq", zero, "USD"),
            ("LookAheadMaintMarginReq", zero, "USD"),
            ("LookAheadAvailableFunds", money, "USD"),
            ("LookAheadExcessLiquidity", money, "USD"),
            ("HighestSeverity", "0", ""),
            ("DayTradesRemaining", "-1", ""),
            ("Leverage", "0", ""),
            ("UnrealizedPnL", zero, "USD"),
            ("RealizedPnL", zero, "USD"),
        ]
        return rows

    def summary(self, tags: str) -> list[tuple[str, str, str]]:
        """Rows for ``reqAccountSummary``: the requested comma-separated ``tags`` that this
        account has (IB answers unknown tags with nothing). ``$LEDGER`` style groups
        return the cash rows. Currencies follow IB: none for counters and types."""
        wanted = {t.strip() for t in tags.split(",") if t.strip()}
        rows = []
        ledger = any(t.startswith("$LEDGER") for t in wanted)
        for tag, value, cur in self.values():
            if cur == "BASE":
                continue
            if tag in wanted or (ledger and tag in ("CashBalance", "TotalCashValue",
                                                    "NetLiquidation")):
                rows.append((tag, value, "" if tag in _NO_CURRENCY else cur))
        return rows
