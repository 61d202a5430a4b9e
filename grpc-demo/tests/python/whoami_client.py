"""Calls grpc-demo-server with Python grpcio and prints what it learned as JSON.

Usage: whoami_client.py STUBS_DIR TARGET CALLS
STUBS_DIR holds demo_pb2.py / demo_pb2_grpc.py generated at test time.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import demo_pb2  # noqa: E402
import demo_pb2_grpc  # noqa: E402


def main():
    target, calls = sys.argv[2], int(sys.argv[3])
    with grpc.insecure_channel(target) as channel:
        stub = demo_pb2_grpc.DemoStub(channel)
        replies = []
        for _ in range(calls):
            r = stub.WhoAmI(demo_pb2.WhoAmIRequest(payload=b"x" * 16, response_size=32), timeout=5)
            replies.append({
                "server_name": r.server_name,
                "server_addr": r.server_addr,
                "peer_addr": r.peer_addr,
                "conn_id": r.conn_id,
                "conn_seq": r.conn_seq,
                "payload_len": len(r.payload),
            })
        stats = stub.Stats(demo_pb2.StatsRequest(), timeout=5)
        print(json.dumps({
            "replies": replies,
            "stats": {"server_name": stats.server_name, "rpcs": stats.rpcs,
                      "connections": stats.connections},
        }))


if __name__ == "__main__":
    main()
