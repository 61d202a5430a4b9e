"""A Python grpcio implementation of ipvslab.demo.v1.Demo, for interop tests.

Usage: demo_server.py STUBS_DIR NAME
Listens on 127.0.0.1:0, prints "listening on 127.0.0.1:PORT", and serves
until stdin closes (so it never outlives the test that spawned it).
grpcio does not expose connections, so a "connection" is a distinct peer
address string (ip:port), which is one TCP connection in practice.
"""
import sys
import threading
from concurrent import futures

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import demo_pb2  # noqa: E402
import demo_pb2_grpc  # noqa: E402


def parse_peer(peer):
    # "ipv4:127.0.0.1:5555" or "ipv6:[::1]:5555"
    addr = peer.split(":", 1)[1] if ":" in peer else peer
    ip = addr.rsplit(":", 1)[0].strip("[]")
    return addr, ip


class Demo(demo_pb2_grpc.DemoServicer):
    def __init__(self, name, addr):
        self.name, self.addr = name, addr
        self.lock = threading.Lock()
        self.conns = {}  # peer -> [id, seq]
        self.rpcs = 0
        self.peers = {}  # ip -> [rpcs, connections]

    def WhoAmI(self, request, context):
        peer, ip = parse_peer(context.peer())
        with self.lock:
            conn = self.conns.get(peer)
            stats = self.peers.setdefault(ip, [0, 0])
            if conn is None:
                conn = self.conns[peer] = [len(self.conns) + 1, 0]
                stats[1] += 1
            conn[1] += 1
            self.rpcs += 1
            stats[0] += 1
            conn_id, seq = conn
        return demo_pb2.WhoAmIReply(
            server_name=self.name, server_addr=self.addr, peer_addr=peer,
            conn_id=conn_id, conn_seq=seq, payload=b"x" * request.response_size)

    def Stats(self, request, context):
        with self.lock:
            return demo_pb2.StatsReply(
                server_name=self.name, rpcs=self.rpcs, connections=len(self.conns),
                peers=[demo_pb2.PeerStats(peer_ip=ip, rpcs=r, connections=c)
                       for ip, (r, c) in sorted(self.peers.items())])


def main():
    name = sys.argv[2]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    port = server.add_insecure_port("127.0.0.1:0")
    addr = "127.0.0.1:%d" % port
    demo_pb2_grpc.add_DemoServicer_to_server(Demo(name, addr), server)
    server.start()
    print("listening on " + addr, flush=True)
    sys.stdin.read()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
