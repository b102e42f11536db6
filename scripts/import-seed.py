#!/usr/bin/env python3
"""Seed a Placement endpoint with a cloud's worth of data, through its REST API, for the
import test (scripts/import-test): what `placementd import` must carry over.

    scripts/import-seed.py BASE_URL [--providers N] [--seed S] [--threads T]
                           [--token TOKEN] [--cacert FILE]

What it makes, for about N providers in all:
  * custom resource classes (CUSTOM_SEED_VF, CUSTOM_SEED_FPGA, and one nothing uses) and
    custom traits (CUSTOM_SEED_GOLD, CUSTOM_SEED_SILVER, CUSTOM_SEED_RACK_0..3, one unused);
  * sharing providers (N/50, at least 2): DISK_GB, MISC_SHARES_VIA_AGGREGATE, each in an
    aggregate of its own that compute roots join;
  * nested trees of 4 providers: a compute root (traits, one or two aggregates) with two
    NUMA children (VCPU, MEMORY_MB; HW_NUMA_ROOT) and a PF child (CUSTOM_SEED_VF,
    HW_NIC_SRIOV); what is left of N goes to lone roots with VCPU and CUSTOM_SEED_FPGA;
  * consumers, two per tree: VCPU and MEMORY_MB on a NUMA child, DISK_GB on the tree's
    sharing provider, some a VF too (multi-provider allocations); 7 projects, 11 users,
    consumer types INSTANCE and MIGRATION (1.38), some written at 1.36 (no consumer type);
  * then changes that move generations: allocations replaced (consumer generation 2 and
    more), moved to a migration consumer with POST /allocations, deleted; inventories and
    traits updated; one lone root created and deleted.

Deterministic with --seed (default 1): every UUID and name derives from it, and each
provider's and consumer's operations run in a fixed order, so two empty services seeded
with the same seed end with the same records and the same generations (threads only
interleave operations on different providers; writes that touch a shared provider only
bump its generation, whatever their order). A 409 concurrent-update (Placement's own retry
limit under contention) is retried. Python 3 standard library only. Prints one summary line.
"""
import argparse
import concurrent.futures as cf
import http.client
import json
import random
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

MICROVERSION = "1.39"
CLASSES = ["CUSTOM_SEED_VF", "CUSTOM_SEED_FPGA", "CUSTOM_SEED_UNUSED"]
TRAITS = ["CUSTOM_SEED_GOLD", "CUSTOM_SEED_SILVER", "CUSTOM_SEED_UNUSED"] + [
    "CUSTOM_SEED_RACK_%d" % k for k in range(4)]
PROJECTS = 7
USERS = 11
# Attempts of a write that Placement refused with a concurrent-update conflict.
CONFLICT_ATTEMPTS = 20


class Client:
    """One keep-alive connection per thread; reconnects after a socket error."""

    def __init__(self, base_url, token, cacert):
        u = urllib.parse.urlsplit(base_url.rstrip("/"))
        if u.scheme not in ("http", "https"):
            sys.exit("import-seed: %s is not an http(s):// URL" % base_url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=cacert) if self.https else None
        self.token = token
        self.local = threading.local()
        self.lock = threading.Lock()
        self.requests = 0

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            if self.https:
                c = http.client.HTTPSConnection(self.host, self.port, timeout=120, context=self.ctx)
            else:
                c = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, microversion=MICROVERSION):
        headers = {"x-auth-token": self.token, "accept": "application/json",
                   "openstack-api-version": "placement %s" % microversion}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        last = None
        for attempt in range(5):
            with self.lock:
                self.requests += 1
            try:
                c = self._conn()
                c.request(method, self.prefix + path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self._drop()
                if r.status in (502, 503, 504):
                    last = "%s %s" % (r.status, raw[:200])
                    time.sleep(0.2 * (attempt + 1))
                    continue
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, OSError) as e:
                last = e
                self._drop()
                time.sleep(0.2 * (attempt + 1))
        raise RuntimeError("%s %s failed after 5 attempts: %r" % (method, path, last))

    def _drop(self):
        c = getattr(self.local, "conn", None)
        if c is not None:
            c.close()
        self.local.conn = None

    def must(self, method, path, body=None, ok=(200, 201, 204), microversion=MICROVERSION):
        """The request, retried on a concurrent-update conflict; its body, or an exit."""
        for attempt in range(CONFLICT_ATTEMPTS):
            status, js = self.request(method, path, body, microversion)
            if status in ok:
                return js
            codes = [e.get("code") for e in (js or {}).get("errors", [])] if isinstance(js, dict) else []
            if status == 409 and "placement.concurrent_update" in codes:
                time.sleep(0.01 * (attempt + 1))
                continue
            break
        raise RuntimeError("%s %s -> %s %s" % (method, path, status, json.dumps(js)[:500]))


class Seeder:
    def __init__(self, client, n, seed):
        self.c = client
        self.seed = seed
        self.ns = uuid.uuid5(uuid.NAMESPACE_URL, "placementd-import-seed-%d" % seed)
        self.sharing = max(2, n // 50)
        self.trees = max(1, (n - self.sharing) // 4)
        self.lone = max(0, n - self.sharing - 4 * self.trees)
        self.consumers = []  # (uuid, tree) in creation order

    def uid(self, *parts):
        return str(uuid.uuid5(self.ns, "/".join(str(p) for p in parts)))

    def name(self, *parts):
        return "seed%d-%s" % (self.seed, "-".join(str(p) for p in parts))

    def rng(self, *parts):
        return random.Random("%d/%s" % (self.seed, "/".join(str(p) for p in parts)))

    def project(self, k):
        return self.uid("project", k % PROJECTS).replace("-", "")

    def user(self, k):
        return self.uid("user", k % USERS).replace("-", "")

    # ------------------------------------------------------------------ providers
    def provider(self, rp, name, parent=None):
        body = {"uuid": rp, "name": name}
        if parent:
            body["parent_provider_uuid"] = parent
        return self.c.must("POST", "/resource_providers", body)["generation"]

    def inventories(self, rp, gen, inv):
        return self.c.must("PUT", "/resource_providers/%s/inventories" % rp,
                           {"resource_provider_generation": gen, "inventories": inv}
                           )["resource_provider_generation"]

    def traits(self, rp, gen, traits):
        return self.c.must("PUT", "/resource_providers/%s/traits" % rp,
                           {"resource_provider_generation": gen, "traits": traits}
                           )["resource_provider_generation"]

    def aggregates(self, rp, gen, aggs):
        return self.c.must("PUT", "/resource_providers/%s/aggregates" % rp,
                           {"resource_provider_generation": gen, "aggregates": aggs}
                           )["resource_provider_generation"]

    def make_sharing(self, k):
        rp = self.uid("sharing", k)
        gen = self.provider(rp, self.name("shared-disk", "%03d" % k))
        gen = self.inventories(rp, gen, {"DISK_GB": {
            "total": 1000000, "reserved": 100, "min_unit": 1, "max_unit": 100000,
            "step_size": 1, "allocation_ratio": 1.0}})
        gen = self.traits(rp, gen, ["MISC_SHARES_VIA_AGGREGATE", "STORAGE_DISK_SSD"])
        self.aggregates(rp, gen, [self.uid("aggregate", k)])

    def make_tree(self, i):
        r = self.rng("tree", i)
        root = self.uid("root", i)
        gen = self.provider(root, self.name("cn", "%05d" % i))
        traits = ["HW_CPU_X86_AVX2", "CUSTOM_SEED_RACK_%d" % (i % 4)]
        if r.random() < 0.3:
            traits.append("CUSTOM_SEED_GOLD")
        if i % 17 == 0:
            traits.append("COMPUTE_STATUS_DISABLED")
        gen = self.traits(root, gen, traits)
        aggs = [self.uid("aggregate", i % self.sharing)]
        if i % 5 == 0:
            aggs.append(self.uid("aggregate", "az", i % 3))
        self.aggregates(root, gen, aggs)
        for numa in (0, 1):
            child = self.uid("numa", i, numa)
            g = self.provider(child, self.name("cn", "%05d" % i, "numa%d" % numa), root)
            g = self.inventories(child, g, {
                "VCPU": {"total": 32, "reserved": numa, "min_unit": 1, "max_unit": 32,
                         "step_size": 1, "allocation_ratio": 4.0},
                "MEMORY_MB": {"total": 131072, "reserved": 512, "min_unit": 256,
                              "max_unit": 131072, "step_size": 256, "allocation_ratio": 1.5}})
            self.traits(child, g, ["HW_NUMA_ROOT"])
        pf = self.uid("pf", i)
        g = self.provider(pf, self.name("cn", "%05d" % i, "pf0"), root)
        g = self.inventories(pf, g, {"CUSTOM_SEED_VF": {
            "total": 8, "reserved": 0, "min_unit": 1, "max_unit": 8, "step_size": 1,
            "allocation_ratio": 1.0}})
        self.traits(pf, g, ["HW_NIC_SRIOV"])

    def make_lone(self, j):
        rp = self.uid("lone", j)
        gen = self.provider(rp, self.name("lone", "%04d" % j))
        gen = self.inventories(rp, gen, {
            "VCPU": {"total": 16, "reserved": 0, "min_unit": 1, "max_unit": 16,
                     "step_size": 1, "allocation_ratio": 16.0},
            "CUSTOM_SEED_FPGA": {"total": 2, "reserved": 0, "min_unit": 1, "max_unit": 1,
                                 "step_size": 1, "allocation_ratio": 1.0}})
        self.traits(rp, gen, ["CUSTOM_SEED_SILVER"])

    # ------------------------------------------------------------------ consumers
    def resources(self, i, k, r):
        """Consumer k of tree i: its allocations (a dict provider -> resources)."""
        numa = self.uid("numa", i, k % 2)
        alloc = {numa: {"resources": {"VCPU": r.choice([1, 2, 4]),
                                      "MEMORY_MB": 256 * r.choice([2, 4, 8])}},
                 self.uid("sharing", i % self.sharing): {"resources": {"DISK_GB": r.choice([10, 20, 40])}}}
        if r.random() < 0.4:
            alloc[self.uid("pf", i)] = {"resources": {"CUSTOM_SEED_VF": 1}}
        return alloc

    def make_consumers(self, i):
        for k in (0, 1):
            r = self.rng("consumer", i, k)
            c = self.uid("consumer", i, k)
            body = {"allocations": self.resources(i, k, r),
                    "project_id": self.project(i * 2 + k), "user_id": self.user(i + k),
                    "consumer_generation": None}
            if (i + k) % 23 == 0:
                # an old nova: no consumer type (shown as "unknown" at 1.38)
                self.c.must("PUT", "/allocations/%s" % c, body, ok=(204,), microversion="1.36")
            else:
                body["consumer_type"] = "INSTANCE"
                self.c.must("PUT", "/allocations/%s" % c, body, ok=(204,))

    def change_consumers(self, i):
        """Resize, migrate and delete some consumers of tree i (fixed per tree)."""
        c0, c1 = self.uid("consumer", i, 0), self.uid("consumer", i, 1)
        r = self.rng("change", i)
        if i % 3 == 0:  # resize: replaced twice, consumer generation 3
            for step in (1, 2):
                body = {"allocations": self.resources(i, 0, r),
                        "project_id": self.project(i * 2), "user_id": self.user(i),
                        "consumer_generation": step, "consumer_type": "INSTANCE"}
                self.c.must("PUT", "/allocations/%s" % c0, body, ok=(204,))
        if i % 4 == 1:  # a move: the instance's allocation handed to a migration consumer
            mig = self.uid("migration", i)
            current = self.c.must("GET", "/allocations/%s" % c1)
            gen = current.get("consumer_generation")
            held = {rp: {"resources": a["resources"]} for rp, a in current["allocations"].items()}
            self.c.must("POST", "/allocations", {
                mig: {"allocations": held, "project_id": self.project(i * 2 + 1),
                      "user_id": self.user(i + 1), "consumer_generation": None,
                      "consumer_type": "MIGRATION"},
                c1: {"allocations": self.resources(i, 1, r),
                     "project_id": self.project(i * 2 + 1), "user_id": self.user(i + 1),
                     "consumer_generation": gen, "consumer_type": "INSTANCE"},
            }, ok=(204,))
        if i % 7 == 2:  # a deleted instance
            self.c.must("DELETE", "/allocations/%s" % c1, ok=(204,))

    def change_provider(self, i):
        """Inventory and trait updates on tree i's first NUMA child and root."""
        if i % 6 != 0:
            return
        child = self.uid("numa", i, 0)
        inv = self.c.must("GET", "/resource_providers/%s/inventories" % child)
        gen = inv["resource_provider_generation"]
        vcpu = dict(inv["inventories"]["VCPU"])
        vcpu["reserved"] = 2
        self.c.must("PUT", "/resource_providers/%s/inventories/VCPU" % child,
                    {"resource_provider_generation": gen, **{k: v for k, v in vcpu.items()}})
        root = self.uid("root", i)
        cur = self.c.must("GET", "/resource_providers/%s/traits" % root)
        traits = sorted(set(cur["traits"]) | {"CUSTOM_SEED_SILVER"})
        self.traits(root, cur["resource_provider_generation"], traits)


def pool_run(threads, fn, items, label):
    """fn over items on a thread pool; one progress line when done (stderr)."""
    t0 = time.monotonic()
    items = list(items)
    with cf.ThreadPoolExecutor(threads) as ex:
        for _ in ex.map(fn, items):
            pass
    print("import-seed: %d %s in %.1fs" % (len(items), label, time.monotonic() - t0),
          file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_url")
    ap.add_argument("--providers", "-n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--token", default="admin")
    ap.add_argument("--cacert", default=None, help="CA file for an https:// BASE_URL")
    a = ap.parse_args()
    if a.providers < 10:
        sys.exit("import-seed: --providers must be at least 10")

    c = Client(a.base_url, a.token, a.cacert)
    st, root = c.request("GET", "/")
    if st != 200:
        sys.exit("import-seed: GET / on %s answered %s %s" % (a.base_url, st, root))
    s = Seeder(c, a.providers, a.seed)
    t0 = time.monotonic()
    for rc in CLASSES:
        c.must("PUT", "/resource_classes/%s" % rc, ok=(201, 204))
    for t in TRAITS:
        c.must("PUT", "/traits/%s" % t, ok=(201, 204))
    pool_run(a.threads, s.make_sharing, range(s.sharing), "sharing providers")
    pool_run(a.threads, s.make_tree, range(s.trees), "trees")
    pool_run(a.threads, s.make_lone, range(s.lone), "lone providers")
    # a provider that existed once
    gone = s.uid("deleted-provider")
    s.provider(gone, s.name("decommissioned"))
    c.must("DELETE", "/resource_providers/%s" % gone, ok=(204,))
    t_providers = time.monotonic() - t0
    pool_run(a.threads, s.make_consumers, range(s.trees), "trees' consumers")
    pool_run(a.threads, s.change_consumers, range(s.trees), "trees' consumer changes")
    pool_run(a.threads, s.change_provider, range(s.trees), "trees' provider changes")
    total = time.monotonic() - t0
    n = s.sharing + 4 * s.trees + s.lone
    print("import-seed: %d providers (%d trees of 4, %d sharing, %d lone) in %.1fs, "
          "%d consumers and changes; %d requests in %.1fs (%.0f/s)"
          % (n, s.trees, s.sharing, s.lone, t_providers, 2 * s.trees, c.requests, total,
             c.requests / total if total else 0))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        sys.exit("import-seed: %s" % e)
