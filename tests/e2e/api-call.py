#!/usr/bin/python3
"""One request to msb serve, its answer checked against docs/api/openapi.yaml.

    api-call.py [--token T] [--tcp HOST:PORT | --unix SOCKET] METHOD PATH [BODY|@FILE]

Prints the status on the first line and the body after it. Exits 0 when the
answer matches the document (the route is in it, the status is one it lists
or its default, the body matches that response's schema; an NDJSON stream
line by line), 3 when it does not (saying why on stderr), 2 on a usage or
connection error. Debian's python3 (python3-yaml, python3-jsonschema).
"""
import http.client
import json
import os
import re
import socket
import sys

import jsonschema
import yaml

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api", "openapi.yaml")


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=600):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        cur = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            cur = cur[part]
        node = cur
    return node


def find_op(doc, method, path):
    for tmpl, item in doc["paths"].items():
        rx = "^" + re.sub(r"\{[^/]+\}", "[^/]+", tmpl) + "$"
        if re.match(rx, path) and method.lower() in item:
            return tmpl, item[method.lower()]
    return None, None


def check(doc, method, path, status, ctype, body):
    tmpl, op = find_op(doc, method, path.split("?")[0])
    if op is None:
        return f"{method} {path}: not in {DOC}"
    responses = op["responses"]
    resp = responses.get(str(status)) or responses.get("default")
    if resp is None:
        return f"{method} {tmpl}: status {status} is not documented"
    resp = resolve(doc, resp)
    content = resp.get("content")
    if not content:
        return None if not body else f"{method} {tmpl} {status}: a body where the document has none"
    mt = ctype.split(";")[0].strip()
    media = content.get(mt) or next((v for k, v in content.items() if k.split(";")[0] == mt), None)
    if media is None:
        return f"{method} {tmpl} {status}: content type {mt!r} is not one of {list(content)}"
    schema = media.get("schema", {})
    resolver = jsonschema.RefResolver.from_schema(doc)
    validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
    if mt == "application/json":
        docs = [json.loads(body)]
    elif mt == "application/x-ndjson":
        docs = [json.loads(line) for line in body.splitlines() if line.strip()]
    else:
        return None
    for d in docs:
        errs = sorted(validator.iter_errors(d), key=lambda e: e.path)
        if errs:
            return f"{method} {tmpl} {status}: {errs[0].message} in {json.dumps(d)[:300]}"
    return None


def main():
    args = sys.argv[1:]
    token = tcp = None
    unix = os.environ.get("MSB_API_SOCKET")
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--token":
            token = args.pop(0)
        elif opt == "--tcp":
            tcp = args.pop(0)
        elif opt == "--unix":
            unix = args.pop(0)
        else:
            sys.exit(f"api-call.py: unknown option {opt}")
    if len(args) < 2:
        sys.exit(__doc__)
    method, path = args[0], args[1]
    body = args[2] if len(args) > 2 else None
    data = None
    headers = {}
    if body is not None:
        if body.startswith("@"):
            with open(body[1:], "rb") as f:
                data = f.read()
            tar = body.endswith(".tar")
            headers["Content-Type"] = "application/x-tar" if tar else "application/octet-stream"
        else:
            data = body.encode()
            headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        if tcp:
            host, port = tcp.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=600)
        else:
            conn = UnixConnection(unix)
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
    except OSError as e:
        print(f"api-call.py: {e}", file=sys.stderr)
        sys.exit(2)
    ctype = r.getheader("Content-Type") or ""
    out = os.environ.get("API_BODY_FILE")
    if out:
        with open(out, "wb") as f:
            f.write(raw)
    binary = ctype.startswith("application/x-tar") or ctype.startswith("application/octet-stream")
    text = raw.decode("utf-8", "replace") if not binary else ""
    print(r.status)
    print(text, end="")
    with open(DOC) as f:
        doc = yaml.safe_load(f)
    why = check(doc, method, path, r.status, ctype, text if text else "")
    if why:
        print(f"api-call.py: does not match the document: {why}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
