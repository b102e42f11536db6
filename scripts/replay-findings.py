#!/usr/bin/env python3
"""Replays findings 4, 7, 9 and 10 of the security review (issue 8) against one placementd
binary, to compare a binary from before the fixes with a current one. Every node it starts
is a fresh one-node cluster on free 127.0.0.1 ports with a temporary data dir.

  scripts/replay-findings.py BINARY [FLAG...]     FLAGs go to the node of finding 9
  CHILDREN=30 ONLY=finding9 scripts/replay-findings.py BINARY

finding 4   a 46-byte forwarded write whose trait name has a 2^60 length prefix
            (the wire of binaries before the fix: a bare bincode Request; a current
            binary refuses it as a malformed Forwarded with 400)
finding 7   20 clients that send half a request line: still open after 25 s?
finding 9   4 isolated granular groups over one root with CHILDREN (18) children, unbounded
            unless the node bounds it, with a writer beside it: size, time, slowest write,
            peak RSS
finding 10  a Location built from a hostile Host and X-Forwarded-Proto

The tests in tests/tests/hostile.rs are the regression suite; this script is for the
before/after comparison recorded in the issue's closing note.
"""
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

BIN = sys.argv[1]
EXTRA9 = sys.argv[2:]
import os
CHILDREN = int(os.environ.get("CHILDREN", "18"))
ONLY = os.environ.get("ONLY", "")


def free():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(extra=()):
    d = tempfile.mkdtemp()
    api, peer = free(), free()
    log = open(d + "/log", "w")
    p = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{api}", "--peer-listen",
                          f"127.0.0.1:{peer}", "--data-dir", d + "/data", *extra],
                         stdout=log, stderr=log)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{api}/", timeout=1).read()
            return p, api, peer
        except Exception:
            time.sleep(0.05)
    raise SystemExit("node did not start")


H = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39",
     "content-type": "application/json"}


def call(api, method, path, body=None, headers=None, timeout=60):
    req = urllib.request.Request(f"http://127.0.0.1:{api}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers=headers or H)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def finding4():
    p, api, peer = start()
    # A forwarded request (old wire: a bare bincode Request) for EnsureTrait whose name has
    # a 2^60 length prefix: uuid (len 16 + 16 bytes), at = 0, variant 12, the prefix.
    body = bytes([16]) + uuid.uuid4().bytes + bytes([0, 12]) + b"\xfd" + (1 << 60).to_bytes(8, "little")
    body += b"A" * (46 - len(body))
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{peer}/cluster/write", data=body,
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = r.status
    except urllib.error.HTTPError as e:
        answer = e.code
    except Exception as e:
        answer = type(e).__name__
    time.sleep(1)
    alive = p.poll() is None
    print(f"finding 4: 46-byte forwarded write with a 2^60 length prefix -> answer {answer}, "
          f"process alive: {alive}" + ("" if alive else f" (exit {p.returncode})"))
    p.kill()


def finding7():
    p, api, peer = start()
    socks = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", api))
        s.sendall(b"GET /resource_providers HTTP/1.1\r\nHost: x")
        socks.append(s)
    time.sleep(25)
    still_open = 0
    for s in socks:
        s.setblocking(False)
        try:
            data = s.recv(1024)
            # b"" is EOF: closed; data (a 408) then EOF also counts as closed.
            if data and b"408" not in data:
                still_open += 1
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
    print(f"finding 7: 20 clients with half a request line, after 25 s: {still_open} still open")
    p.kill()


def finding10():
    p, api, peer = start()
    headers = dict(H)
    headers["Host"] = "evil.example/phish?x="
    headers["X-Forwarded-Proto"] = "javascript"
    status, _, h = call(api, "POST", "/resource_providers", {"name": "loc-test"}, headers)
    print(f"finding 10: POST with Host 'evil.example/phish?x=' and X-Forwarded-Proto "
          f"'javascript' -> {status}, Location: {h.get('location')}")
    p.kill()


def finding9():
    p, api, peer = start(EXTRA9)
    status, body, _ = call(api, "POST", "/resource_providers", {"name": "root"})
    root = json.loads(body)["uuid"]
    for i in range(CHILDREN):
        child = str(uuid.uuid4())
        call(api, "POST", "/resource_providers",
             {"name": f"c{i}", "uuid": child, "parent_provider_uuid": root})
        call(api, "PUT", f"/resource_providers/{child}/inventories",
             {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}})
    target = str(uuid.uuid4())
    call(api, "POST", "/resource_providers", {"name": "w", "uuid": target})
    call(api, "PUT", f"/resource_providers/{target}/inventories",
         {"resource_provider_generation": 0, "inventories": {"MEMORY_MB": {"total": 1 << 30}}})
    q = ("/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1&resources3=VCPU:1"
         "&resources4=VCPU:1&group_policy=isolate")
    result = {}

    def read():
        t = time.time()
        status, body, _ = call(api, "GET", q, timeout=600)
        result["took"] = time.time() - t
        result["status"] = status
        result["n"] = body.count(b'{"allocations":')
        result["bytes"] = len(body)

    th = threading.Thread(target=read)
    th.start()
    time.sleep(0.05)
    slowest, during = 0.0, 0
    while th.is_alive():
        c = str(uuid.uuid4())
        t = time.time()
        call(api, "PUT", f"/allocations/{c}",
             {"allocations": {target: {"resources": {"MEMORY_MB": 1}}},
              "project_id": "p", "user_id": "u", "consumer_generation": None,
              "consumer_type": "INSTANCE"})
        slowest = max(slowest, time.time() - t)
        during += 1
    th.join()
    rss = open(f"/proc/{p.pid}/status").read().split("VmHWM:")[1].split("\n")[0].strip()
    print(f"finding 9: 4 isolated groups over {CHILDREN} children: {result['status']}, "
          f"{result['n']} candidates, {result['bytes'] / 1e6:.1f} MB in {result['took']:.2f} s; "
          f"{during} writes beside it, slowest {slowest * 1000:.0f} ms; peak RSS {rss}")
    p.kill()


for f in (finding4, finding10, finding9, finding7):
    if ONLY and f.__name__ != ONLY:
        continue
    try:
        f()
    except Exception as e:
        print(f"{f.__name__}: {type(e).__name__}: {e}")
