"""A Greeter server on grpcio's generic handlers: no generated code and no
protoc, so loadgen's generic mode is tested against a stack it shares
nothing with (not tonic, not h2, not prost).

Usage: greeter_server.py COUNTS_FILE
Listens on 127.0.0.1:0, prints "listening on 127.0.0.1:PORT", serves
helloworld.Greeter/SayHello until stdin closes, then writes its own counts
as JSON to COUNTS_FILE: {"ok": N, "failed": N, "metadata": {key: [values]}}.
A request whose name is "fail" is answered with INVALID_ARGUMENT, so that
the test can see that errors are counted as errors.
"""
import json
import sys
import threading
from concurrent import futures

import grpc


def varint(buf, i):
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def name_of(request):
    # HelloRequest { string name = 1; } by hand; other fields are skipped.
    i, name = 0, b""
    while i < len(request):
        key, i = varint(request, i)
        if key & 7 == 2:
            n, i = varint(request, i)
            if key >> 3 == 1:
                name = request[i:i + n]
            i += n
        elif key & 7 == 0:
            _, i = varint(request, i)
        else:
            raise ValueError("unexpected wire type")
    return name.decode()


def encode_reply(message):
    data = message.encode()
    out = bytearray([0x0A])
    n = len(data)
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.metadata = {}


def main():
    counts = Counts()

    def say_hello(request, context):
        name = name_of(request)
        with counts.lock:
            for key, value in context.invocation_metadata():
                if key.startswith("x-"):
                    values = counts.metadata.setdefault(key, [])
                    if value not in values:
                        values.append(value)
            if name == "fail":
                counts.failed += 1
            else:
                counts.ok += 1
        if name == "fail":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "asked to fail")
        return encode_reply("Hello " + name)

    handler = grpc.method_handlers_generic_handler(
        "helloworld.Greeter",
        {"SayHello": grpc.unary_unary_rpc_method_handler(say_hello)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    sys.stdin.read()
    server.stop(grace=1).wait()
    with counts.lock:
        result = {"ok": counts.ok, "failed": counts.failed, "metadata": counts.metadata}
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
