#!/usr/bin/env python3
"""Adds nested and sharing providers to a deployment seeded by ../shared/bench/seed.py.

    bench-candidates-extras.py BASE_URL --prefix P --nested N --sharing K

* N nested trees: a compute-node root with DISK_GB 2000 (trait HW_CPU_X86_SSE42, in seed
  aggregate agg-(i % 10) of prefix P) and two NUMA children with VCPU 32 (ratio 16) and
  MEMORY_MB 131072 each (trait HW_NUMA_ROOT).
* K sharing providers: DISK_GB 100000, trait MISC_SHARES_VIA_AGGREGATE, in the seed's shared
  "all-cells" aggregate of prefix P (every 5th compute node of that seed is in it).

The aggregate uuids are seed.py's: uuid5(uuid5(NAMESPACE_URL, P), "agg-...").
Standard library only; uses the kit's placement_client (PLACEMENT_KIT, default
../shared/bench next to the repository).
"""
import argparse
import concurrent.futures as cf
import os
import sys
import time
import uuid

KIT = os.environ.get("PLACEMENT_KIT") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench")
sys.path.insert(0, KIT)
from placement_client import Placement  # noqa: E402


def inv(total, ratio=1.0):
    return {"total": total, "allocation_ratio": ratio, "reserved": 0,
            "min_unit": 1, "max_unit": total, "step_size": 1}


def provider(pl, name, rp, inventories, traits, aggs, parent=None):
    body = {"name": name, "uuid": rp}
    if parent:
        body["parent_provider_uuid"] = parent
    js = pl.must("POST", "/resource_providers", body, ok=(200, 201))
    gen = js["generation"]
    if inventories:
        js = pl.must("PUT", "/resource_providers/%s/inventories" % rp,
                     {"resource_provider_generation": gen, "inventories": inventories})
        gen = js["resource_provider_generation"]
    if traits:
        js = pl.must("PUT", "/resource_providers/%s/traits" % rp,
                     {"resource_provider_generation": gen, "traits": traits})
        gen = js["resource_provider_generation"]
    if aggs:
        pl.must("PUT", "/resource_providers/%s/aggregates" % rp,
                {"resource_provider_generation": gen, "aggregates": aggs})


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_url")
    ap.add_argument("--prefix", required=True, help="seed.py --prefix of the seed to join")
    ap.add_argument("--nested", type=int, default=0)
    ap.add_argument("--sharing", type=int, default=0)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()
    pl = Placement(a.base_url)
    ns = uuid.uuid5(uuid.NAMESPACE_URL, a.prefix)
    aggs = [str(uuid.uuid5(ns, "agg-%d" % k)) for k in range(10)]
    agg_all = str(uuid.uuid5(ns, "agg-all"))
    t0 = time.monotonic()

    def tree(i):
        root = str(uuid.uuid5(ns, "tree-%d" % i))
        provider(pl, "%s-tree-%04d" % (a.prefix, i), root, {"DISK_GB": inv(2000)},
                 ["HW_CPU_X86_SSE42"], [aggs[i % 10]])
        for k in range(2):
            numa = str(uuid.uuid5(ns, "tree-%d-numa-%d" % (i, k)))
            provider(pl, "%s-tree-%04d-numa%d" % (a.prefix, i, k), numa,
                     {"VCPU": inv(32, 16.0), "MEMORY_MB": inv(131072)},
                     ["HW_NUMA_ROOT"], [], parent=root)

    def sharing(i):
        rp = str(uuid.uuid5(ns, "sharing-%d" % i))
        provider(pl, "%s-shared-disk-%02d" % (a.prefix, i), rp, {"DISK_GB": inv(100000)},
                 ["MISC_SHARES_VIA_AGGREGATE"], [agg_all])

    with cf.ThreadPoolExecutor(a.threads) as ex:
        list(ex.map(tree, range(a.nested)))
        list(ex.map(sharing, range(a.sharing)))
    print("added %d nested trees (3 providers each) and %d sharing providers in %.1fs"
          % (a.nested, a.sharing, time.monotonic() - t0))


if __name__ == "__main__":
    main()
