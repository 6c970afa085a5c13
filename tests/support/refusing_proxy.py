#!/usr/bin/env python3
"""A registry that refuses OCI artifacts with a `subject`, for tests: an HTTP
proxy on a free loopback port in front of a real registry (argv[1], e.g.
127.0.0.1:5000) that forwards every request unchanged, except a manifest PUT
whose body names a `subject`, answered 400 MANIFEST_INVALID as registries
without OCI 1.1 support answer. Prints `PORT` on its first line, then serves
until killed."""

import http.client
import http.server
import sys

UPSTREAM = sys.argv[1]


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def forward(self):
        body = self.read_body()
        if self.command == "PUT" and "/manifests/" in self.path and b'"subject"' in body:
            reply = b'{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid: subject not supported"}]}'
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            return
        upstream = http.client.HTTPConnection(UPSTREAM, timeout=60)
        headers = {
            key: value
            for key, value in self.headers.items()
            if key.lower() not in ("transfer-encoding", "content-length")
        }
        headers["Content-Length"] = str(len(body))
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", answer.getheader("Content-Length", "0"))
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print(server.server_address[1], flush=True)
server.serve_forever()
