#!/usr/bin/env python3
"""Registry behaviours Debian's distribution 2.8 lacks, for tests: an HTTP
proxy on a free loopback port in front of a real registry (argv[1], e.g.
127.0.0.1:5000) that forwards every request unchanged, except as argv[2]
says:

- `refuse-subject`: a manifest PUT whose body names a `subject` is answered
  400 MANIFEST_INVALID, as registries without OCI 1.1 support answer;
- `refuse-index`: a manifest PUT of an image index is answered 400
  MANIFEST_INVALID, as registries without multi-platform support answer;
- `referrers-api`: the OCI 1.1 referrers API. A manifest PUT with a
  `subject` is stored upstream and answered with the `OCI-Subject` header;
  `GET /v2/<name>/referrers/<digest>` lists the manifests put with that
  subject (an image index, as the distribution spec says).

Hostile modes, for a base fetched through the proxy (each lies about a
manifest GET and forwards the rest):

- `oversize-manifest`: a manifest answered as a chunked stream of 5 MiB
  (no Content-Length);
- `huge-length-manifest`: a manifest announced with a Content-Length of
  999,999,999 bytes, of which a few are sent before the connection closes;
- `lying-tag-digest`: the manifest fetched by tag with one byte added, under
  the registry's own `Docker-Content-Digest`;
- `huge-index`: the tag answers an image index of 5,000 entries;
- `oversize-blob`: each layer blob (not the config) is followed by 16 MiB
  more than the manifest declares, sent chunked;
- `nested-index`: the tag answers an index whose linux/amd64 entry is
  another index (served by its digest), which points back at the first.

- `blob-redirect-loop`: every blob GET is answered 307 to itself with one
  more `?hop=N` (a redirect loop);
- `blob-redirect-http PORT`: every blob GET is answered 307 to the same
  path on `http://127.0.0.1:PORT` (served over TLS, see below, this is a
  redirect from https to http);
- `stall-blob`: the first layer blob GET (not a config) sends its headers
  and half its bytes, then nothing for 60 s; later GETs are forwarded.

Hostile modes for a push (a blob upload's `Location` rewritten):

- `upload-location-outside`: the `Location` of an upload's start names
  another repository of the same registry;
- `upload-location-foreign`: the `Location` names another host
  (`http://127.0.0.2:PORT/...`, PORT argv[3]).

With PROXY_TLS_CERT and PROXY_TLS_KEY (PEM files) in the environment the
proxy speaks HTTPS. Prints `PORT` on its first line, then serves until
killed."""

import hashlib
import http.client
import http.server
import json
import re
import sys
import os
import ssl
import threading
import time

UPSTREAM = sys.argv[1]
MODE = sys.argv[2] if len(sys.argv) > 2 else "refuse-subject"
REFERRERS = {}  # (name, subject digest) -> [descriptor]
LOCK = threading.Lock()
CONFIGS = set()  # config digests seen in forwarded manifests
STALLED = []  # the blob the stall-blob mode stalled, once
FOREIGN_PORT = sys.argv[3] if len(sys.argv) > 3 else "9"


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

    def reply(self, status, body, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def manifest_invalid(self, why):
        """A 400 MANIFEST_INVALID answer, as registries refuse what they lack."""
        envelope = {"errors": [{"code": "MANIFEST_INVALID", "message": "manifest invalid: " + why}]}
        self.reply(400, json.dumps(envelope).encode())

    def referrers(self):
        match = re.fullmatch(r"/v2/(.+)/referrers/(sha256:[0-9a-f]{64})(\?.*)?", self.path)
        if not match:
            return False
        with LOCK:
            manifests = list(REFERRERS.get((match.group(1), match.group(2)), []))
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
        self.reply(200, json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")
        return True

    def hostile_manifest(self):
        """Answers a manifest GET as the hostile MODE says; False when the
        request is forwarded unchanged."""
        match = re.fullmatch(r"/v2/(.+)/manifests/([^/?]+)", self.path)
        if self.command != "GET" or not match:
            return False
        reference = match.group(2)
        by_tag = not reference.startswith("sha256:")
        if MODE == "oversize-manifest":
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b" " * (1 << 20)
            try:
                for _ in range(5):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            return True
        if MODE == "huge-length-manifest":
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", "999999999")
            self.end_headers()
            try:
                self.wfile.write(b"{")
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
            return True
        if MODE == "lying-tag-digest" and by_tag:
            upstream = http.client.HTTPConnection(UPSTREAM, timeout=60)
            upstream.request("GET", self.path, headers={"Accept": self.headers.get("Accept", "")})
            answer = upstream.getresponse()
            data = answer.read() + b" "
            self.reply(answer.status, data, answer.getheader("Content-Type", "application/json"),
                       [("Docker-Content-Digest", answer.getheader("Docker-Content-Digest", ""))])
            upstream.close()
            return True
        index_type = "application/vnd.oci.image.index.v1+json"
        if MODE == "huge-index" and by_tag:
            entries = [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": "sha256:" + hashlib.sha256(b"%d" % n).hexdigest(), "size": 500,
                        "platform": {"os": "linux", "architecture": "riscv%d" % n}} for n in range(5000)]
            self.reply(200, json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}).encode(), index_type)
            return True
        if MODE in ("oversize-blob", "stall-blob"):
            # Forwarded, noting the config digest (its blob stays honest).
            upstream = http.client.HTTPConnection(UPSTREAM, timeout=60)
            upstream.request("GET", self.path, headers={"Accept": self.headers.get("Accept", "")})
            answer = upstream.getresponse()
            data = answer.read()
            try:
                CONFIGS.add(json.loads(data)["config"]["digest"])
            except (ValueError, KeyError, TypeError):
                pass
            self.reply(answer.status, data, answer.getheader("Content-Type", "application/json"),
                       [("Docker-Content-Digest", answer.getheader("Docker-Content-Digest", ""))])
            upstream.close()
            return True
        if MODE == "nested-index":
            def index(digest):
                entry = {"mediaType": index_type, "digest": digest, "size": 300,
                         "platform": {"os": "linux", "architecture": "amd64"}}
                return json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": [entry]}).encode()
            # The inner index points at a made-up digest; the outer at the inner.
            inner = index("sha256:" + "1" * 64)
            inner_digest = "sha256:" + hashlib.sha256(inner).hexdigest()
            body = inner if reference == inner_digest else index(inner_digest)
            self.reply(200, body, index_type)
            return True
        return False

    def oversize_blob(self):
        match = re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", self.path)
        if MODE != "oversize-blob" or self.command != "GET" or not match or match.group(2) in CONFIGS:
            return False
        upstream = http.client.HTTPConnection(UPSTREAM, timeout=60)
        upstream.request("GET", self.path)
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in [data] + [b"\0" * (1 << 20)] * 16:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return True

    def hostile_blob(self):
        """Answers a blob GET as the redirect-loop and stall modes say."""
        match = re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})(\?hop=(\d+))?", self.path)
        if self.command != "GET" or not match:
            return False
        if MODE == "blob-redirect-http":
            location = "http://127.0.0.1:%s%s" % (FOREIGN_PORT, self.path)
            self.reply(307, b"", "text/plain", [("Location", location)])
            return True
        if MODE == "blob-redirect-loop":
            hop = int(match.group(4) or 0) + 1
            location = "/v2/%s/blobs/%s?hop=%d" % (match.group(1), match.group(2), hop)
            self.reply(307, b"", "text/plain", [("Location", location)])
            return True
        if MODE == "stall-blob" and match.group(2) not in CONFIGS:
            with LOCK:
                if STALLED:
                    return False
                STALLED.append(match.group(2))
            upstream = http.client.HTTPConnection(UPSTREAM, timeout=60)
            upstream.request("GET", self.path)
            data = upstream.getresponse().read()
            upstream.close()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                time.sleep(60)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
            return True
        return False

    def rewrite_location(self, value):
        """An upload's Location as the upload-location modes rewrite it."""
        match = re.match(r"(https?://[^/]+)?/v2/(.+?)/blobs/uploads/(.*)", value)
        if not match:
            return value
        if MODE == "upload-location-outside":
            return "/v2/elsewhere/blobs/uploads/" + match.group(3)
        if MODE == "upload-location-foreign":
            return "http://127.0.0.2:%s/v2/%s/blobs/uploads/%s" % (FOREIGN_PORT, match.group(2), match.group(3))
        return value

    def forward(self):
        body = self.read_body()
        if self.hostile_manifest() or self.oversize_blob() or self.hostile_blob():
            return
        if MODE == "referrers-api" and self.command in ("GET", "HEAD") and self.referrers():
            return
        subject = None
        if MODE == "referrers-api" and self.command == "PUT" and "/manifests/" in self.path and b'"subject"' in body:
            manifest = json.loads(body)
            subject = manifest["subject"]["digest"]
            name = self.path.split("/v2/", 1)[1].split("/manifests/", 1)[0]
            entry = {
                "mediaType": manifest.get("mediaType", "application/vnd.oci.image.manifest.v1+json"),
                "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                "size": len(body),
            }
            if "artifactType" in manifest:
                entry["artifactType"] = manifest["artifactType"]
            with LOCK:
                listed = REFERRERS.setdefault((name, subject), [])
                if entry not in listed:
                    listed.append(entry)
        refused_index = (
            MODE == "refuse-index"
            and self.command == "PUT"
            and "/manifests/" in self.path
            and "image.index" in self.headers.get("Content-Type", "")
        )
        if refused_index:
            self.manifest_invalid("image indexes are not supported")
            return
        if MODE == "refuse-subject" and self.command == "PUT" and "/manifests/" in self.path and b'"subject"' in body:
            self.manifest_invalid("subject not supported")
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
            if key.lower() == "location" and self.command == "POST":
                value = self.rewrite_location(value)
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        if subject and answer.status == 201:
            self.send_header("OCI-Subject", subject)
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
if os.environ.get("PROXY_TLS_CERT"):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.environ["PROXY_TLS_CERT"], os.environ["PROXY_TLS_KEY"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
