"""Kattle's sample handler service: Cattle-flavoured logic for the instance lifecycle.

- `instance.start`, pre: refuses images named `forbidden/...` (a validating pre-listener).
- `instance.create`, handler: allocates an IP address, stable per object, into `status.ip`.
- `ipaddress.associate`, handler: records which instance the address belongs to.
- `*.create`, post: records every creation and posts an Event on the object.

Run it with `KATTLE_SIGNING_KEY_FILE=key python samples/handlers/app.py --port 8080`;
ProcessHandlers in samples/handlers.yaml point at it as the Service
kattle-system/kattle-sample-handlers and sign requests with the Secret
kattle-system/kattle-sample-handlers-signing.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from pathlib import Path

from kattle.sdk import EventRequest, HandlerApp, HandlerError, ProcessEvent, ProcessReply
from kattle.sdk.manifests import handler_manifests

# The key that signs requests (the value in the Secret samples/handlers.yaml names). Without
# it the service accepts unsigned requests, which is only right for local experiments.
_key_file = os.environ.get("KATTLE_SIGNING_KEY_FILE")
app = HandlerApp(signing_key=Path(_key_file).read_bytes().strip() if _key_file else None)


@app.on("instance.start", phase="pre")
async def validate(event: ProcessEvent) -> ProcessReply:
    image = str(event.resource.get("spec", {}).get("image", ""))
    if image.startswith("forbidden/"):
        raise HandlerError(f"image {image} is not allowed to start")
    return ProcessReply(message=f"image {image} is allowed")


@app.on("instance.create", phase="handler")
async def allocate_ip(event: ProcessEvent) -> ProcessReply:
    # Derived from the object's uid: the same answer on every retry (idempotent).
    digest = hashlib.sha256(event.resource["metadata"]["uid"].encode()).digest()
    ip = f"10.42.{digest[0]}.{max(digest[1], 2)}"
    return ProcessReply(data={"ip": ip}, status={"ip": ip}, message=f"allocated {ip}")


@app.on("volume.activate", phase="handler")
async def attach_volume(event: ProcessEvent) -> ProcessReply:
    name = event.resource["metadata"]["name"]
    size = int(event.resource.get("spec", {}).get("sizeGb", 1))
    if size > 1000:
        raise HandlerError(f"no room for volume {name} of {size} GiB (at most 1000)")
    device = f"/dev/disk/by-kattle/{name}"
    return ProcessReply(status={"device": device}, message=f"attached {size} GiB at {device}")


@app.on("ipaddress.associate", phase="handler")
async def associate(event: ProcessEvent) -> ProcessReply:
    instance = event.data.get("instance", "unknown")
    return ProcessReply(status={"associatedWith": instance})


@app.on("*.create", phase="post")
async def record(event: ProcessEvent) -> ProcessReply:
    name = event.resource["metadata"]["name"]
    return ProcessReply(
        message="recorded",
        events=[EventRequest(reason="Recorded", message=f"{event.process} of {name} recorded")],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--print-manifests",
        metavar="NAMESPACE/SERVICE[:PORT]",
        help="print the ProcessHandlers that route this app's registrations to the Service, "
        "and exit",
    )
    args = parser.parse_args()
    if args.print_manifests:
        print(
            handler_manifests(
                app,
                service=args.print_manifests,
                prefix="sample",
                signing_secret="kattle-system/kattle-sample-handlers-signing",
            ),
            end="",
        )
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app.run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
