#!/usr/bin/env python3
"""A Greeter client in Python grpcio: COUNT SayHello calls spread round-robin
over CHANNELS channels, each its own HTTP/2 connection. Prints the count
per gRPC status and per replying server (read from the reply text), and
exits 1 when any call failed.

    client.py --target 192.168.122.1:8080 --count 200 --channels 4
"""

import argparse
import collections
import re
import sys

import grpc

import greeter_proto

hello_pb2, hello_pb2_grpc = greeter_proto.load()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, help="VIP:PORT")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--name", default="ipvs-lab")
    p.add_argument("--timeout", type=float, default=3.0, help="per-call deadline, seconds")
    args = p.parse_args()

    # A local subchannel pool: without it grpcio shares one connection
    # between channels to the same target, and --channels would mean nothing.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.insecure_channel(args.target, options=options) for _ in range(args.channels)]
    stubs = [hello_pb2_grpc.GreeterStub(c) for c in channels]
    statuses = collections.Counter()
    servers = collections.Counter()
    for i in range(args.count):
        stub = stubs[i % len(stubs)]
        try:
            reply = stub.SayHello(hello_pb2.HelloRequest(name=args.name), timeout=args.timeout)
            statuses["OK"] += 1
            m = re.search(r" from (\S+)", reply.message)
            servers[m.group(1) if m else "?"] += 1
        except grpc.RpcError as e:
            statuses[e.code().name] += 1
    for c in channels:
        c.close()
    for code, n in sorted(statuses.items()):
        print(f"status {code}: {n}")
    for server, n in sorted(servers.items()):
        print(f"server {server}: {n}")
    return 0 if statuses["OK"] == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
