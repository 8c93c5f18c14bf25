"""moto's EC2 in server mode on loopback, behind a small proxy that makes it answer as AWS does.

libcloud's real EC2 driver talks to the proxy; the proxy forwards to moto and smooths over the
ways moto's answers differ from AWS's for libcloud (see docs/cloud-providers.md):

- moto's XML namespace lacks the trailing slash of AWS's, so libcloud would find nothing in it;
- moto's error documents carry extra elements that libcloud's error parser does not expect;
- moto's server checks SigV4 signatures of GET requests against a form body that was never
  sent, so its own authentication rejects every libcloud request: the proxy checks the
  signature itself (correctly) and answers `AuthFailure` as AWS would, with moto's left off.

None of this is in product code: the product only takes an endpoint from the account settings.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3  # type: ignore[import-untyped]
import requests
from moto.server import ThreadedMotoServer

AWS_NAMESPACE = b'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"'
_MOTO_NAMESPACE = re.compile(rb'xmlns="http://ec2\.amazonaws\.com/doc/[0-9-]+/?"')
_ERROR = re.compile(rb"<Code>(.*?)</Code>\s*<Message>(.*?)</Message>", re.S)
_AUTH = re.compile(
    r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/aws4_request,\s*SignedHeaders=([^,]+),\s*Signature=(\w+)"
)


def aws_error(code: str, message: str) -> bytes:
    """An EC2 error document as AWS writes it."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error></Errors><RequestID>flotilla-test</RequestID></Response>"
    ).encode()


class Ec2Emulator:
    """moto on loopback and the AWS-shaped proxy in front of it."""

    access_key = "AKIAFLOTILLATESTKEY1"
    secret_key = "flotilla-test-secret-key"
    region = "us-east-1"

    def __init__(self) -> None:
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._proxy: ThreadingHTTPServer | None = None
        self.moto_host = ""
        self.moto_port = 0
        self.endpoint = ""

    def start(self) -> Ec2Emulator:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        self._moto.start()
        self.moto_host, self.moto_port = self._moto.get_host_and_port()
        emulator = self

        class Handler(_ProxyHandler):
            target = emulator

        self._proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._proxy.daemon_threads = True
        threading.Thread(target=self._proxy.serve_forever, name="ec2-proxy", daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self._proxy.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.shutdown()
            self._proxy.server_close()
        self._moto.stop()

    @property
    def moto_url(self) -> str:
        return f"http://{self.moto_host}:{self.moto_port}"

    def reset(self) -> None:
        """Forget every resource (moto's own reset)."""
        requests.post(f"{self.moto_url}/moto-api/reset", timeout=30).raise_for_status()

    def ec2(self) -> Any:
        """A boto3 client straight to moto, to look at what the product did."""
        return boto3.client(
            "ec2",
            region_name=self.region,
            endpoint_url=self.moto_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def stock_ami(self) -> str:
        """One of moto's stock AMIs (listed with owner `amazon`), an Ubuntu one if there is any."""
        images = self.ec2().describe_images(Owners=["amazon"])["Images"]
        ubuntu = [i for i in images if "ubuntu" in (i.get("Name") or "").lower()]
        return str(sorted(ubuntu or images, key=lambda i: i["ImageId"])[0]["ImageId"])

    def auth_problem(self, method: str, path: str, headers: Any, body: bytes) -> str:
        """Why AWS would refuse this request ('' if it would not)."""
        match = _AUTH.search(headers.get("Authorization", ""))
        if match is None:
            return "the request is not signed with AWS signature version 4"
        key, region, service, signed, signature = match.groups()
        refused = "AWS was not able to validate the provided access credentials"
        if key != self.access_key:
            return refused
        expected = sigv4_signature(
            self.secret_key, method, path, headers, body, signed.split(";"), region, service
        )
        return "" if hmac.compare_digest(expected, signature) else refused


def sigv4_signature(
    secret: str,
    method: str,
    path: str,
    headers: Any,
    body: bytes,
    signed: list[str],
    region: str,
    service: str,
) -> str:
    """The AWS signature version 4 of a request, computed as AWS documents it."""
    lowered = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    url = urlsplit(path)
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(url.query, keep_blank_values=True))
    )
    canonical = "\n".join(
        [
            method,
            url.path or "/",
            query,
            "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    stamp = lowered.get("x-amz-date", "")
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in (stamp[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target: Ec2Emulator

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        problem = self.target.auth_problem(self.command, self.path, self.headers, body)
        if problem:
            self._answer(401, aws_error("AuthFailure", problem), "text/xml")
            return
        upstream = http.client.HTTPConnection(self.target.moto_host, self.target.moto_port, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers.items()))
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        data = _MOTO_NAMESPACE.sub(AWS_NAMESPACE, data)
        if response.status >= 400:
            found = _ERROR.search(data)
            if found:
                data = aws_error(found.group(1).decode(), found.group(2).decode())
        self._answer(response.status, data, response.getheader("Content-Type") or "text/xml")

    def _answer(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _relay

    def log_message(self, format: str, *args: Any) -> None:
        pass
