"""The wire protocol with a bare socket client: handshake edge cases, robustness."""

from __future__ import annotations

import asyncio
import struct

import pytest

from desk.sim import SimGateway
from desk.sim.codec import FrameDecoder, encode_fields


class RawClient:
    """A minimal TWS API client over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder(expect_prefix=False)
        self.inbox: list[list[str]] = []

    @classmethod
    async def open(cls, port: int) -> RawClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self, n: int, timeout: float = 2.0) -> list[list[str]]:
        """The next ``n`` messages."""

        async def fill() -> None:
            while len(self.inbox) < n:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError(f"closed after {self.inbox}")
                self.inbox += self.decoder.feed(data)

        await asyncio.wait_for(fill(), timeout)
        out, self.inbox = self.inbox[:n], self.inbox[n:]
        return out

    async def read_until(self, msg_id: str, timeout: float = 2.0) -> list[list[str]]:
        """Messages up to and including the first with id ``msg_id``."""
        got: list[list[str]] = []
        while True:
            (msg,) = await self.read(1, timeout)
            got.append(msg)
            if msg[0] == msg_id:
                return got

    async def closed_by_server(self, timeout: float = 2.0) -> bool:
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not data:
                    return True
        except (ConnectionError, asyncio.TimeoutError):
            return False

    def close(self) -> None:
        self.writer.close()


def hello(versions: bytes = b"v157..178") -> bytes:
    return b"API\0" + struct.pack(">I", len(versions)) + versions


START_API = encode_fields((71, 2, 11, ""))
CURRENT_TIME = encode_fields((49, 1))


async def test_everything_in_one_write(gateway: SimGateway) -> None:
    c = await RawClient.open(gateway.port)
    c.send(hello() + START_API + CURRENT_TIME)
    (server,) = await c.read(1)
    assert len(server) == 2 and server[0] == "178"
    assert server[1].endswith(" UTC") and len(server[1].split()[0]) == 8
    msgs = await c.read_until("49")
    ids = [m[0] for m in msgs]
    assert ids[:2] == ["15", "9"]
    assert msgs[0] == ["15", "1", "DU1234567"]
    # nextValidId: the clock seed of a client not seen before (ids grow across restarts)
    assert msgs[1] == ["9", "1", str(gateway.next_order_id(1))]
    assert [m[3] for m in msgs if m[0] == "4"] == ["2104", "2106", "2158"]
    assert all(len(m) == 6 for m in msgs if m[0] == "4")  # advancedOrderRejectJson present
    c.close()


async def test_byte_by_byte(gateway: SimGateway) -> None:
    c = await RawClient.open(gateway.port)
    for b in hello() + START_API + CURRENT_TIME:
        c.send(bytes([b]))
        await c.writer.drain()
    msgs = await c.read_until("49")
    assert msgs[0][0] == "178" and msgs[-1][0] == "49"
    c.close()


async def test_version_is_capped_at_178(gateway: SimGateway) -> None:
    c = await RawClient.open(gateway.port)
    c.send(hello(b"v100..200 +PACEAPI"))
    assert (await c.read(1))[0][0] == "178"
    c.close()


@pytest.mark.parametrize("versions", [b"v100..150", b"v190..200", b"garbage"])
async def test_unsupported_versions_are_closed(gateway: SimGateway, versions: bytes) -> None:
    c = await RawClient.open(gateway.port)
    c.send(hello(versions))
    assert await c.closed_by_server()


async def test_not_the_tws_protocol_is_closed(gateway: SimGateway) -> None:
    c = await RawClient.open(gateway.port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await c.closed_by_server()


async def test_requests_before_start_api_are_ignored(gateway: SimGateway) -> None:
    c = await RawClient.open(gateway.port)
    c.send(hello() + CURRENT_TIME + START_API + CURRENT_TIME)
    msgs = await c.read_until("49")
    assert [m[0] for m in msgs].count("49") == 1
    assert msgs[1][0] == "15"  # nothing answered before startApi


async def test_bad_and_unknown_messages_do_not_kill_the_session(gateway: SimGateway) -> None:
    c = await RawClient.open(gateway.port)
    c.send(hello() + START_API)
    await c.read_until("4")
    c.send(
        encode_fields(("1", "11"))  # truncated reqMktData
        + encode_fields(("abc",))  # not a message id
        + encode_fields(("250", "1", "2"))  # unknown id
        + encode_fields(("9", "8", "x"))  # reqId not a number
        + CURRENT_TIME
    )
    msgs = await c.read_until("49")
    assert msgs[-1][0] == "49"
    assert gateway.clients == 1
    c.close()


async def test_contract_details_wire_layout(gateway: SimGateway) -> None:
    c = await RawClient.open(gateway.port)
    c.send(hello() + START_API)
    await c.read_until("4")
    contract = (0, "SPY", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "")
    c.send(encode_fields((9, 8, 42, *contract, 0, "", "", "")))
    msgs = await c.read_until("52")
    details, end = msgs[-2], msgs[-1]
    assert details[:3] == ["10", "42", "SPY"]
    assert details[12] == "756733"
    assert end == ["52", "1", "42"]


async def test_market_data_wire_messages(gateway: SimGateway) -> None:
    c = await RawClient.open(gateway.port)
    c.send(hello() + START_API)
    await c.read_until("4")
    await c.read(2)  # the other two farm notices
    contract = (756733, "SPY", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "")
    c.send(encode_fields((1, 11, 5, *contract, 0, "", 0, 0, "")))
    msgs = await c.read(12)
    assert msgs[0] == ["81", "5", "0.01", "9c0001", "3"]
    assert msgs[1] == ["58", "1", "5", "1"]
    prices = [m for m in msgs if m[0] == "1"]
    assert all(len(m) == 7 and m[1] == "6" and m[2] == "5" for m in prices)
    assert {m[3] for m in prices} >= {"1", "2", "4", "6", "7", "9", "14"}
    sizes = [m for m in msgs if m[0] == "2"]
    assert sizes and all(m[4].isdigit() for m in sizes)  # shares, integer text
    # streaming updates follow, then cancel: the line goes quiet
    await c.read(5)
    c.send(encode_fields((2, 2, 5)))
    await asyncio.sleep(0.15)
    c.inbox.clear()
    c.decoder = FrameDecoder(expect_prefix=False)
    while True:  # drain what was in flight
        try:
            await asyncio.wait_for(c.reader.read(65536), 0.15)
        except asyncio.TimeoutError:
            break
    assert not gateway._subs
    c.close()


async def test_cancel_unknown_ticker_is_error_300(gateway: SimGateway) -> None:
    c = await RawClient.open(gateway.port)
    c.send(hello() + START_API)
    await c.read_until("4")
    await c.read(2)
    c.send(encode_fields((2, 2, 77)))
    (msg,) = await c.read(1)
    assert msg[:4] == ["4", "2", "77", "300"]
    c.close()
