"""The API's slow-request warning (`hanoipay.timing`): what it names, and what it leaves out."""

import asyncio
import logging
import re

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from city.app import create_app
from hanoipay.timing import SlowRequestLog


async def slow(request: Request) -> Response:
    await asyncio.sleep(0.06)
    return PlainTextResponse("late", status_code=202)


async def quick(request: Request) -> Response:
    return PlainTextResponse("ok")


async def feed(request: Request) -> Response:
    async def events():
        for i in range(3):
            await asyncio.sleep(0.02)
            yield f"data: {i}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


ROUTES = Starlette(routes=[Route("/slow", slow), Route("/quick", quick), Route("/feed", feed)])


def get(app, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hanoipay.test") as client:
            return await client.get(path)

    return asyncio.run(go())


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hanoipay.slow_requests"]


def test_a_request_over_the_threshold_is_named_with_its_status_and_time_and_a_quick_one_is_not(caplog):
    app = SlowRequestLog(ROUTES, threshold_ms=40)
    with caplog.at_level(logging.WARNING, logger="hanoipay.slow_requests"):
        assert get(app, "/quick?token=secret").status_code == 200
        assert get(app, "/slow?lat=21.02&token=secret").status_code == 202
    [message] = warnings(caplog)
    found = re.fullmatch(r"slow request: GET /slow answered 202 in (\d+) ms \(pid \d+\)", message)
    assert found is not None, message
    assert int(found[1]) >= 60
    assert "secret" not in message  # never the query string
    assert "21.02" not in message


def test_a_streamed_feed_is_not_timed_however_long_it_stays_open(caplog):
    app = SlowRequestLog(ROUTES, threshold_ms=0)  # 0: every other request is logged
    with caplog.at_level(logging.WARNING, logger="hanoipay.slow_requests"):
        assert get(app, "/feed").text.count("data:") == 3
        assert get(app, "/quick").status_code == 200
    assert [m.split(" answered")[0] for m in warnings(caplog)] == ["slow request: GET /quick"]


def test_the_api_times_each_request_from_its_outermost_layer():
    app = create_app()
    assert app.user_middleware[0].cls is SlowRequestLog
