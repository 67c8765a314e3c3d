"""The vendor's live feed: the core's events for one merchant, as server-sent events.

The core's `payments.deliver_event` job publishes each event on `hanoipay:events:merchant:<id>` after its
transaction commits. Each API process holds one Redis pattern subscription for every merchant channel and
fans each message out to the queues of the streams open for that merchant, so a stream costs a queue and
a coroutine: no thread, no database connection and no Redis connection of its own. A stream that resumes
with `Last-Event-ID` first replays from the `event` table (a short database read, then closed) and then
goes live; events of the few seconds before that id are replayed too, because ids are only ordered by the
millisecond they were created in and a transaction may commit after a later one, so a client dedupes by id.
"""

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select

from hanoipay.db import SessionLocal
from hanoipay.jobs import get_redis
from merchants.settings import get_merchants_settings
from payments.models import Event

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "hanoipay:events:merchant:"
# The alphabet of `hanoipay.ids` (Crockford base32): ids begin with their creation millisecond.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MEMBER_REMOVED = "merchant_member.removed"
REPLAY_LIMIT = 1_000
QUEUE_SIZE = 1_000
_OVERFLOW = object()


def _async_redis() -> aioredis.Redis:
    """An asyncio client for the server the process's (synchronous) Redis client talks to."""
    kwargs = get_redis().connection_pool.connection_kwargs
    if "path" in kwargs:
        return aioredis.Redis(
            unix_socket_path=kwargs["path"], db=kwargs.get("db", 0), password=kwargs.get("password")
        )
    return aioredis.Redis(
        host=kwargs.get("host", "localhost"),
        port=kwargs.get("port", 6379),
        db=kwargs.get("db", 0),
        password=kwargs.get("password"),
    )


class Broadcaster:
    """One Redis subscription per process, fanned out to the open streams of each merchant."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[object]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def open_streams(self) -> int:
        """How many streams are listening now."""
        return sum(len(queues) for queues in self._queues.values())

    async def subscribe(self, merchant_id: str) -> "asyncio.Queue[object]":
        """A queue that receives every message published for the merchant from now on."""
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="merchant-feed-broadcaster")
        await asyncio.wait_for(self._ready.wait(), timeout=5)
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._queues[merchant_id].add(queue)
        return queue

    def unsubscribe(self, merchant_id: str, queue: "asyncio.Queue[object]") -> None:
        """Stop delivering to a stream's queue."""
        queues = self._queues.get(merchant_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._queues[merchant_id]

    async def _run(self) -> None:
        while True:
            client = _async_redis()
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                    self._ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "pmessage":
                            self._fan_out(message["channel"].decode()[len(CHANNEL_PREFIX) :], message["data"])
            except (aioredis.RedisError, OSError) as error:
                log.warning("live feed subscription lost (%s); resubscribing", error)
                await asyncio.sleep(0.5)
            finally:
                await client.aclose()

    def _fan_out(self, merchant_id: str, data: bytes) -> None:
        for queue in list(self._queues.get(merchant_id, ())):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                # A stream that cannot keep up is closed; its client reconnects and replays what it missed.
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(_OVERFLOW)


_broadcasters: dict[asyncio.AbstractEventLoop, Broadcaster] = {}


def broadcaster() -> Broadcaster:
    """This event loop's broadcaster (one per API process)."""
    loop = asyncio.get_running_loop()
    if loop not in _broadcasters:
        _broadcasters[loop] = Broadcaster()
    return _broadcasters[loop]


def _id_floor(event_id: str, seconds: int) -> str | None:
    """The smallest event id created `seconds` before `event_id` was (ids start with their millisecond)."""
    prefix, _, body = event_id.partition("_")
    if len(body) != 26 or any(ch not in _ALPHABET for ch in body):
        return None
    value = 0
    for ch in body:
        value = value * 32 + _ALPHABET.index(ch)
    millis = max(0, (value >> 80) - seconds * 1000)
    floor, chars = millis << 80, []
    for _ in range(26):
        chars.append(_ALPHABET[floor & 31])
        floor >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


@dataclass(frozen=True)
class FeedEvent:
    """One event as the feed sends it."""

    id: str
    type: str
    data: dict[str, Any]

    def encode(self) -> str:
        """The event in text/event-stream framing."""
        payload = json.dumps({"id": self.id, "type": self.type, "data": self.data}, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.type}\ndata: {payload}\n\n"


def replay_since(merchant_id: str, last_event_id: str) -> list[FeedEvent]:
    """The merchant's events from a few seconds before `last_event_id` on, oldest first (a short read)."""
    floor = _id_floor(last_event_id, get_merchants_settings().feed_replay_overlap_seconds)
    if floor is None:
        return []
    with SessionLocal() as session:
        rows = session.scalars(
            select(Event)
            .where(Event.merchant_id == merchant_id, Event.id > floor, Event.id != last_event_id)
            .order_by(Event.id)
            .limit(REPLAY_LIMIT)
        ).all()
        return [FeedEvent(e.id, e.type, e.data) for e in rows]


async def stream(
    merchant_id: str,
    user_id: str,
    replay: Callable[[], list[FeedEvent]],
    is_disconnected: Callable[[], Any],
) -> AsyncIterator[str]:
    """Server-sent events for one open feed: replayed events, then live ones, with keep-alive comments."""
    hub = broadcaster()
    queue = await hub.subscribe(merchant_id)
    heartbeat = get_merchants_settings().feed_heartbeat_seconds
    try:
        yield "retry: 2000\n\n"
        replayed = await asyncio.to_thread(replay)
        seen = {event.id for event in replayed}
        for event in replayed:
            yield event.encode()
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), timeout=heartbeat)
            except TimeoutError:
                if await is_disconnected():
                    return
                yield ": keep-alive\n\n"
                continue
            if message is _OVERFLOW:
                return
            assert isinstance(message, bytes)
            raw = json.loads(message)
            if raw.get("type") == MEMBER_REMOVED:
                if raw.get("data", {}).get("user_id") == user_id:
                    return
                continue
            if raw["id"] in seen:
                continue
            yield FeedEvent(raw["id"], raw["type"], raw.get("data") or {}).encode()
    finally:
        hub.unsubscribe(merchant_id, queue)


def announce_member_removed(merchant_id: str, user_id: str) -> None:
    """Close the removed member's open feeds now (published on the merchant's channel)."""
    message = json.dumps({"id": None, "type": MEMBER_REMOVED, "data": {"user_id": user_id}})
    get_redis().publish(CHANNEL_PREFIX + merchant_id, message)
