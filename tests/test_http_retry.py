"""A retried 429 honours the server's Retry-After, over real HTTP: the retry recipe
(``patterns.retry.retrying``) waits at least what the server's header said, on asyncio and trio;
and a client error that carries nothing but the ``Retry-After`` header (httpx's, aiohttp's
``raise_for_status``) is read to the server's whole seconds."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

for _package in ("uvicorn", "httpx2", "httpx", "aiohttp"):
    pytest.importorskip(_package, reason=f"the http extra is not installed: {_package} is missing")

import httpx2  # noqa: E402 - only once the extra is known to be there

from patterns.adaptive import is_overload  # noqa: E402
from patterns.lab.http import Call, Served, calling, outcome, path_of  # noqa: E402
from patterns.lab.workload import Item  # noqa: E402
from patterns.retry import Budget, retry_after, retrying  # noqa: E402

from .test_http import idle, module_server, wait_for  # noqa: E402

pytestmark = pytest.mark.anyio

#: The server's hint, in seconds: what its 429s say in X-Retry-After (Retry-After: 1).
HINT = 0.05


@pytest.fixture(scope="module")
def one_at_a_time() -> Iterator[Served]:
    """One call at a time, the rest turned away with a hint of HINT seconds."""
    with module_server(1, behaviour="reject", retry_after=HINT) as served:
        yield served


@asynccontextmanager
async def held(served: Served) -> AsyncIterator[anyio.CancelScope]:
    """The server's one place taken by a call, until the scope yielded is cancelled or the block
    ends; then nothing left in the server."""
    release = anyio.CancelScope()

    async def hold(call: Call) -> None:
        with release:
            await call(Item(0, 30.0))

    async with calling(served.url) as call, anyio.create_task_group() as group:
        group.start_soon(hold, call)
        await wait_for(served, in_service=1)
        yield release
        release.cancel()
    with anyio.fail_after(5):
        await idle(served)  # the hang-up reaches the server


# A call turned away while another holds the capacity is retried until it is served, and each
# attempt after a 429 leaves no sooner than the 429's own header said (X-Retry-After, which the
# client reads; the server sends the hint it was started with, and Retry-After rounded up).
# The place is given back after the second 429: two waits measured, on any machine.
@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param(("asyncio", {}), id="asyncio"), pytest.param(("trio", {}), id="trio")],
)
async def test_a_retried_429_waits_the_servers_retry_after(one_at_a_time: Served) -> None:
    await one_at_a_time.reset()
    sent: list[float] = []  # when each attempt left
    answers: list[tuple[float, int, httpx2.Headers]] = []  # when each answer came, and what

    async def leaving(request: httpx2.Request) -> None:
        sent.append(anyio.current_time())

    async def answered(response: httpx2.Response) -> None:
        answers.append((anyio.current_time(), response.status_code, response.headers))
        if [status for _, status, _ in answers].count(429) == 2:
            holder.cancel()  # the place given back

    hooks: Any = {"request": [leaving], "response": [answered]}
    async with (
        httpx2.AsyncClient(base_url=one_at_a_time.url, trust_env=False, event_hooks=hooks) as http,
        held(one_at_a_time) as holder,
    ):

        async def call(item: Item) -> str:  # calling()'s own answer to each status
            response = await http.get(path_of(item))
            return outcome(item, response.status_code, response.content, response.headers.get)

        # Jitter kept small beside the hint (it only adds to the wait): the hint is what is tested.
        retried = retrying(call, base=HINT / 5, budget=Budget(), rng=random.Random(22))
        assert await retried(Item(1, 0.0)) == "item_1_processed"
    assert [status for _, status, _ in answers][-1] == 200
    turned = [(when, headers) for when, status, headers in answers if status == 429]
    assert len(turned) >= 2
    assert len(sent) == len(answers) == len(turned) + 1
    assert (await one_at_a_time.health())["retry_after"] == HINT
    for (when, headers), next_attempt in zip(turned, sent[1:], strict=True):
        assert headers["x-retry-after"] == repr(HINT)
        assert headers["retry-after"] == str(math.ceil(HINT))
        assert next_attempt - when >= float(headers["x-retry-after"])


# A client that knows nothing of the lab (raise_for_status on a real 429 of the server) leaves
# only the standard header on its error: retry_after() reads it, whole seconds, and the error
# is an overload to retry.
@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_a_bare_retry_after_header_is_read(one_at_a_time: Served) -> None:
    import aiohttp
    import httpx

    errors: dict[str, BaseException] = {}
    async with held(one_at_a_time):
        for lib in (httpx2, httpx):
            async with lib.AsyncClient(base_url=one_at_a_time.url, trust_env=False) as client:
                try:
                    (await client.get(path_of(Item(1, 0.0)))).raise_for_status()
                except lib.HTTPStatusError as error:
                    errors[lib.__name__] = error
        async with (
            aiohttp.ClientSession(one_at_a_time.url) as session,
            session.get(path_of(Item(2, 0.0))) as response,
        ):
            try:
                response.raise_for_status()
            except aiohttp.ClientResponseError as error:
                errors["aiohttp"] = error
    assert errors.keys() == {"httpx2", "httpx", "aiohttp"}
    for name, raised in errors.items():
        assert getattr(raised, "retry_after", None) is None, name  # the header alone
        assert is_overload(raised), name
        assert retry_after(raised) == math.ceil(HINT) == 1.0, name
