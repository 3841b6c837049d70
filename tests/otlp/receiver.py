#!/usr/bin/env python3
"""A real OTLP/HTTP logs receiver for sealwatch's tests.

Decodes `POST /v1/logs` bodies (binary protobuf, optionally gzip'd) with the official definitions
from the `opentelemetry-proto` PyPI package (installed by `cargo xtask setup`) and appends one JSON
object per LogRecord to --out. Every request, answered or refused, is logged to --requests.

Stdout: `listening HOST:PORT` (the OTLP endpoint, first line), then `control HOST:PORT` (a
plain-HTTP listener that serves only /control, also when the OTLP endpoint speaks TLS). Nothing
else is printed on stdout; diagnostics go to stderr.

Runtime control, on either listener: `POST /control` with a JSON object
    {"status": 503, "count": 3}               the next 3 export requests get 503, not recorded
    {"status": 429, "count": 1}               429 answers carry `Retry-After: 1` ...
    {"status": 429, "count": 1, "retry_after": 5}   ... or the given value
    {"status": 200, "delay_ms": 3000, "count": 2}   answer the next 2 requests normally, late
    {"status": 200, "rejected": 1, "count": 1}      a 200 whose body reports a partial success:
                                              1 record rejected (all are still written to --out)
    {"status": 200}                           reset: answer every request normally
(`count` absent means "until reset"). The answer is the new state as JSON. The control state is
not kept across a restart of the process.

Error answers to protobuf requests carry a protobuf `google.rpc.Status` body whose message says
why (as the OTLP/HTTP specification asks); other errors are text/plain.
"""

import argparse
import base64
import gzip
import http.server
import json
import socket
import ssl
import sys
import threading
import time
import zlib

try:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
except ImportError as err:  # pragma: no cover - the harness turns this into its message
    sys.stderr.write(
        f"receiver.py: cannot import the OTLP definitions ({err}): the `opentelemetry-proto` "
        "Python package is missing; install it with `cargo xtask setup`\n"
    )
    sys.exit(3)

PROTOBUF = "application/x-protobuf"
# Largest request body accepted (decompressed size is capped the same way).
MAX_BODY = 64 * 1024 * 1024
# An idle keep-alive connection is closed after this many seconds.
IDLE_TIMEOUT = 30

# HTTP status -> google.rpc.Code, for the Status body of error answers.
GRPC_CODES = {
    400: 3,   # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,   # PERMISSION_DENIED
    404: 5,   # NOT_FOUND
    413: 8,   # RESOURCE_EXHAUSTED
    415: 3,   # INVALID_ARGUMENT
    429: 8,   # RESOURCE_EXHAUSTED
    500: 13,  # INTERNAL
    501: 12,  # UNIMPLEMENTED
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE
    504: 14,  # UNAVAILABLE
}


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def rpc_status(http_status, message):
    """A serialized google.rpc.Status {code = 1, message = 2} (encoded by hand: the package
    does not ship google/rpc/status.proto)."""
    code = GRPC_CODES.get(http_status, 2)  # 2 = UNKNOWN
    text = message.encode("utf-8")
    return b"\x08" + varint(code) + b"\x12" + varint(len(text)) + text


def any_value(value):
    """An AnyValue as a JSON value (None when unset)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values)
    if kind == "bytes_value":
        return {"bytes_base64": base64.b64encode(value.bytes_value).decode("ascii")}
    return {"unknown_kind": kind}


def key_values(pairs):
    return {kv.key: any_value(kv.value) for kv in pairs}


def flatten(request):
    """One JSON object per LogRecord of an ExportLogsServiceRequest."""
    out = []
    for resource_logs in request.resource_logs:
        resource = key_values(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope = {
                "name": scope_logs.scope.name,
                "version": scope_logs.scope.version,
                "attributes": key_values(scope_logs.scope.attributes),
            }
            for rec in scope_logs.log_records:
                item = {
                    "time_unix_nano": rec.time_unix_nano,
                    "observed_time_unix_nano": rec.observed_time_unix_nano,
                    "severity_number": rec.severity_number,
                    "severity_text": rec.severity_text,
                    "body": any_value(rec.body) if rec.HasField("body") else None,
                    "attributes": key_values(rec.attributes),
                    "resource": resource,
                    "scope": scope,
                    "resource_schema_url": resource_logs.schema_url,
                    "scope_schema_url": scope_logs.schema_url,
                    "flags": rec.flags,
                    "trace_id": rec.trace_id.hex(),
                    "span_id": rec.span_id.hex(),
                    "dropped_attributes_count": rec.dropped_attributes_count,
                }
                if hasattr(rec, "event_name"):
                    item["event_name"] = rec.event_name
                out.append(item)
    return out


class Control:
    """What the next export requests are answered with."""

    def __init__(self):
        self.lock = threading.Lock()
        self.status = 200
        self.count = None  # None: until reset
        self.retry_after = None
        self.delay_ms = 0
        self.rejected = 0

    def set(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("the control body must be a JSON object")
        status = spec.get("status", 200)
        count = spec.get("count")
        retry_after = spec.get("retry_after")
        delay_ms = spec.get("delay_ms", 0)
        rejected = spec.get("rejected", 0)
        unknown = set(spec) - {"status", "count", "retry_after", "delay_ms", "rejected"}
        if unknown:
            raise ValueError(f"unknown control keys {sorted(unknown)}")
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, not {status!r}")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise ValueError(f"count must be a non-negative integer, not {count!r}")
        if retry_after is not None and not isinstance(retry_after, (int, str)):
            raise ValueError(f"retry_after must be an integer or a string, not {retry_after!r}")
        if not isinstance(delay_ms, int) or delay_ms < 0:
            raise ValueError(f"delay_ms must be a non-negative integer, not {delay_ms!r}")
        if not isinstance(rejected, int) or rejected < 0:
            raise ValueError(f"rejected must be a non-negative integer, not {rejected!r}")
        if retry_after is None and status == 429:
            retry_after = 1
        with self.lock:
            self.status, self.count = status, count
            self.retry_after, self.delay_ms = retry_after, delay_ms
            self.rejected = rejected
            return self.state_locked()

    def state_locked(self):
        return {
            "status": self.status,
            "count": self.count,
            "retry_after": self.retry_after,
            "delay_ms": self.delay_ms,
            "rejected": self.rejected,
        }

    def take(self):
        """(status, retry_after, delay_ms, rejected) for one export request, consuming one of
        `count`."""
        with self.lock:
            answer = (self.status, self.retry_after, self.delay_ms, self.rejected)
            if self.count is not None:
                self.count -= 1
                if self.count <= 0:
                    self.status, self.count, self.retry_after = 200, None, None
                    self.delay_ms, self.rejected = 0, 0
            return answer


class Sinks:
    """The --out and --requests files, appended to under one lock (one line per write)."""

    def __init__(self, out, requests):
        self.lock = threading.Lock()
        self.out = open(out, "a", encoding="utf-8") if out else None
        self.requests = open(requests, "a", encoding="utf-8") if requests else None

    def records(self, items):
        if self.out is None:
            return
        with self.lock:
            for item in items:
                self.out.write(json.dumps(item, separators=(",", ":")) + "\n")
            self.out.flush()

    def request(self, item):
        if self.requests is None:
            return
        with self.lock:
            self.requests.write(json.dumps(item, separators=(",", ":")) + "\n")
            self.requests.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as OTLP exporters expect
    server_version = "sealwatch-test-otlp-receiver/1"
    timeout = IDLE_TIMEOUT

    # -- plumbing ------------------------------------------------------------------------------

    def log_message(self, fmt, *args):
        sys.stderr.write(f"[{self.server.name}] {self.address_string()} {fmt % args}\n")

    def answer(self, status, body=b"", content_type="text/plain; charset=utf-8", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        """The raw request body (Content-Length or chunked). Raises ValueError when bad."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError(f"body larger than {MAX_BODY} bytes")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        length = int(length)
        if length < 0 or length > MAX_BODY:
            raise ValueError(f"bad Content-Length {length}")
        body = self.rfile.read(length)
        if len(body) != length:
            raise ValueError(f"body ended after {len(body)} of {length} bytes")
        return body

    def error_answer(self, status, message, protobuf, headers=None):
        if protobuf:
            self.answer(status, rpc_status(status, message), PROTOBUF, headers)
        else:
            self.answer(status, (message + "\n").encode("utf-8"), headers=headers)

    # -- routes --------------------------------------------------------------------------------

    def do_GET(self):
        self.refuse_method()

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def refuse_method(self):
        try:
            self.read_body()
        except ValueError:
            self.close_connection = True
        self.answer(404, f"no {self.command} {self.path} here: POST /v1/logs only\n".encode())

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        if path == "/control":
            self.control()
        elif path == "/v1/logs" and not self.server.control_only:
            self.export()
        else:
            try:
                self.read_body()
            except ValueError:
                self.close_connection = True
            self.answer(404, f"no POST {path} here: POST /v1/logs only\n".encode())

    def control(self):
        try:
            spec = json.loads(self.read_body() or b"{}")
            state = self.server.control.set(spec)
        except (ValueError, TypeError) as err:
            self.close_connection = True
            self.answer(400, f"bad control request: {err}\n".encode())
            return
        sys.stderr.write(f"[{self.server.name}] control: {state}\n")
        self.answer(200, json.dumps(state).encode() + b"\n", "application/json")

    def export(self):
        started = time.time()
        content_type = self.headers.get("Content-Type", "")
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        protobuf = content_type.split(";")[0].strip().lower() == PROTOBUF
        log = {
            "time": started,
            "path": self.path,
            "status": None,
            "gzip": encoding == "gzip",
            "records": 0,
            "body_bytes": 0,
            "content_type": content_type or None,
            "content_encoding": self.headers.get("Content-Encoding"),
            "user_agent": self.headers.get("User-Agent"),
            "authorization": self.headers.get("Authorization"),
            "content_length": self.headers.get("Content-Length"),
            "tls": self.server.tls,
            "error": None,
            "rejected": 0,
        }

        def finish(status, message=None, headers=None, pb=protobuf, rejected=0):
            log["status"] = status
            log["error"] = message
            log["rejected"] = rejected
            log["duration_ms"] = round((time.time() - started) * 1000, 3)
            self.server.sinks.request(log)
            if status == 200:
                response = logs_service_pb2.ExportLogsServiceResponse()
                if rejected:
                    response.partial_success.rejected_log_records = rejected
                    response.partial_success.error_message = (
                        f"{rejected} records rejected as told by /control"
                    )
                self.answer(200, response.SerializeToString(), PROTOBUF, headers)
            else:
                self.error_answer(status, message or f"answered {status}", pb, headers)

        try:
            body = self.read_body()
        except ValueError as err:
            self.close_connection = True
            finish(400, f"cannot read the request body: {err}")
            return
        log["body_bytes"] = len(body)

        token = self.server.token
        if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
            got = self.headers.get("Authorization")
            finish(
                401,
                "missing or wrong bearer token: this receiver requires "
                "`Authorization: Bearer <token>` "
                f"({'no Authorization header was sent' if got is None else 'a different one was sent'})",
            )
            return
        if not protobuf:
            finish(
                415,
                f"unsupported Content-Type {content_type!r}: this receiver takes "
                f"{PROTOBUF} (binary protobuf OTLP) only",
                pb=False,
            )
            return
        if encoding not in ("", "identity", "gzip"):
            finish(415, f"unsupported Content-Encoding {encoding!r}: gzip or none")
            return

        status, retry_after, delay_ms, rejected = self.server.control.take()
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if status != 200:
            headers = {"Retry-After": retry_after} if retry_after is not None else None
            finish(status, f"answered {status} as told by /control (nothing recorded)", headers)
            return

        if encoding == "gzip":
            try:
                decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data = decompressor.decompress(body, MAX_BODY)
                if decompressor.unconsumed_tail:
                    raise ValueError(f"decompressed body larger than {MAX_BODY} bytes")
                if not decompressor.eof:
                    raise ValueError("truncated gzip stream")
            except (zlib.error, ValueError) as err:
                finish(400, f"cannot gunzip the body: {err}")
                return
        else:
            data = body
        request = logs_service_pb2.ExportLogsServiceRequest()
        try:
            request.ParseFromString(data)
        except (DecodeError, ValueError, RuntimeError) as err:
            finish(400, f"cannot decode ExportLogsServiceRequest: {err}")
            return
        try:
            items = flatten(request)
        except Exception as err:  # never crash on odd input
            finish(400, f"cannot convert the records: {err!r}")
            return
        self.server.sinks.records(items)
        log["records"] = len(items)
        finish(200, rejected=min(rejected, len(items)))

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout, ssl.SSLError, TimeoutError):
            self.close_connection = True
        except Exception as err:  # a handler bug must not kill the server
            sys.stderr.write(f"[{self.server.name}] handler error: {err!r}\n")
            self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # restart on the same port at once (no TIME_WAIT refusal)
    request_queue_size = 64

    def __init__(self, addr, name, control, sinks, token=None, tls=None, control_only=False):
        self.name = name
        self.control = control
        self.sinks = sinks
        self.token = token
        self.tls_context = tls
        self.tls = tls is not None
        self.control_only = control_only
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # Runs in the connection's own thread: a slow or broken TLS handshake stalls nobody else.
        if self.tls_context is not None:
            request.settimeout(IDLE_TIMEOUT)
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as err:
                sys.stderr.write(f"[{self.name}] TLS handshake with {client_address} failed: {err}\n")
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        sys.stderr.write(f"[{self.name}] error on a connection from {client_address}: "
                         f"{sys.exc_info()[1]!r}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: pick a free port")
    parser.add_argument("--control-port", type=int, default=0, help="0: pick a free port")
    parser.add_argument("--out", help="append one JSON object per LogRecord here")
    parser.add_argument("--requests", help="append one JSON object per export request here")
    parser.add_argument("--token", help="require `Authorization: Bearer TOKEN`")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="... and this private key (PEM)")
    args = parser.parse_args()
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")

    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        tls.load_cert_chain(args.tls_cert, args.tls_key)

    control = Control()
    sinks = Sinks(args.out, args.requests)
    otlp = Server((args.host, args.port), "otlp", control, sinks, args.token, tls)
    ctl = Server((args.host, args.control_port), "control", control, sinks, control_only=True)
    for server in (otlp, ctl):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening {args.host}:{otlp.server_address[1]}", flush=True)
    print(f"control {args.host}:{ctl.server_address[1]}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
