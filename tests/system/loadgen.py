"""A small asyncio HTTP/1.1 load generator for system tests: many keep-alive connections, an exact
number of requests, and every response's status and headers kept for the test to check.

Python's `requests` does about a thousand calls a second here; this does several times that on
one core, which keeps the 40,000-request acceptance tests within CI's budget.
"""
import asyncio
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    target: int = 0
    number: int = -1


async def _read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        body = b"".join(chunks)
    return Response(status=status, headers=headers, body=body)


async def _connection(host, port, index, requests_for, results):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            job = requests_for()
            if job is None:
                return
            number, request = job
            writer.write(request)
            await writer.drain()
            response = await _read_response(reader)
            response.target = index
            response.number = number
            results.append(response)
            if response.headers.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


def run(targets, total, connections=64, path="/", headers=None, requests=None):
    """Sends `total` requests over `connections` keep-alive connections spread round-robin over
    `targets` (a list of (host, port)). Each request is GET `path` with `headers`, unless
    `requests` (a function of the request number returning (path, headers)) says otherwise.
    Returns the responses, in completion order."""
    headers = headers or {}
    counter = {"next": 0}

    def requests_for():
        number = counter["next"]
        if number >= total:
            return None
        counter["next"] = number + 1
        req_path, req_headers = (path, headers) if requests is None else requests(number)
        lines = [f"GET {req_path} HTTP/1.1", "Host: tollgate-test"] + [f"{k}: {v}" for k, v in req_headers.items()]
        return number, ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def main():
        results = []
        tasks = []
        for c in range(connections):
            host, port = targets[c % len(targets)]
            tasks.append(asyncio.create_task(_connection(host, port, c % len(targets), requests_for, results)))
        await asyncio.gather(*tasks)
        return results

    return asyncio.run(main())
