#!/usr/bin/env python3
"""A Greeter server in Python grpcio, written without the lab's help: it
knows nothing of IPVS and does not report its identity to the lab.

It logs one line per new client connection (the first RPC from a new
peer ip:port) and, when stopped (SIGTERM or SIGINT), a summary that is
its own view of who it served:

    served 1234 rpcs from 1 peers over 8 connections
    peer 172.22.36.1: 1234 rpcs, 8 connections

It also answers grpc.health.v1.Health/Check with SERVING (for
`ready = "grpc-health"` and GRPC_CHECK), by hand, without
grpcio-health-checking.
"""

import argparse
import collections
import os
import signal
import sys
import threading
from concurrent import futures

import grpc

import greeter_proto

hello_pb2, hello_pb2_grpc = greeter_proto.load()


class Tally:
    """RPCs per peer IP and the connections (ip:port) they came on."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rpcs = collections.Counter()
        self.conns = collections.defaultdict(set)

    def count(self, peer):
        # grpc's peer: "ipv4:172.22.36.1:40000" or "ipv6:[::1]:40000".
        kind, _, rest = peer.partition(":")
        ip, _, port = rest.rpartition(":")
        with self.lock:
            self.rpcs[ip] += 1
            new = port not in self.conns[ip]
            self.conns[ip].add(port)
        if new:
            print(f"connection from {ip}:{port}", flush=True)

    def summary(self):
        with self.lock:
            total = sum(self.rpcs.values())
            conns = sum(len(c) for c in self.conns.values())
            lines = [f"served {total} rpcs from {len(self.rpcs)} peers over {conns} connections"]
            for ip in sorted(self.rpcs):
                lines.append(f"peer {ip}: {self.rpcs[ip]} rpcs, {len(self.conns[ip])} connections")
        return "\n".join(lines)


class Greeter(hello_pb2_grpc.GreeterServicer):
    def __init__(self, name, version, tally):
        self.name = name
        self.version = version
        self.tally = tally

    def SayHello(self, request, context):
        self.tally.count(context.peer())
        return hello_pb2.HelloResponse(
            message=f"Hello {request.name} from {self.name} ({self.version})"
        )


def health_handler():
    """grpc.health.v1.Health/Check answering SERVING (field 1 = 1)."""

    def check(request, context):
        return b"\x08\x01"

    method = grpc.unary_unary_rpc_method_handler(
        check,
        request_deserializer=lambda b: b,
        response_serializer=lambda b: b,
    )
    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": method})


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="0.0.0.0", help="listen address (DR: every address, the VIP is on lo)")
    p.add_argument("--name", default=os.environ.get("LAB_SERVER_NAME", "greeter"))
    p.add_argument("--version", default="v1", help="a label put in every reply")
    p.add_argument("--max-connection-age-ms", type=int, default=0)
    args = p.parse_args()

    options = []
    if args.max_connection_age_ms > 0:
        options += [
            ("grpc.max_connection_age_ms", args.max_connection_age_ms),
            ("grpc.max_connection_age_grace_ms", 1000),
        ]
    tally = Tally()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    hello_pb2_grpc.add_GreeterServicer_to_server(Greeter(args.name, args.version, tally), server)
    server.add_generic_rpc_handlers((health_handler(),))
    server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    print(f"greeter {args.name} {args.version} listening on {args.host}:{args.port}", flush=True)

    done = threading.Event()

    def stop(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done.wait()
    server.stop(grace=1).wait()
    print(tally.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
