"""Prints what a ComfyUI client receives on its websocket, one JSON line per event with the receive time
(`t`, seconds since the epoch). Run with ComfyUI's own Python (it has aiohttp):

    python ws_events.py URL CLIENT_ID SECONDS

The first line is {"type": "connected"}; it stops after SECONDS or after a prompt ends
(execution_success, execution_error, execution_interrupted).
"""

import asyncio
import json
import sys
import time

import aiohttp

ENDS = ("execution_success", "execution_error", "execution_interrupted")


async def watch(url: str, client_id: str, seconds: float) -> None:
    ws_url = url.replace("http", "ws", 1) + f"/ws?clientId={client_id}"
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, max_msg_size=0) as ws:
        print(json.dumps({"type": "connected", "t": time.time()}), flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                message = await ws.receive(timeout=max(0.1, end - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if message.type != aiohttp.WSMsgType.TEXT:  # binary: preview images
                if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
                continue
            event = json.loads(message.data)
            event["t"] = time.time()
            print(json.dumps(event), flush=True)
            if event.get("type") in ENDS:
                break


if __name__ == "__main__":
    asyncio.run(watch(sys.argv[1], sys.argv[2], float(sys.argv[3])))
