import sys, time, uuid, json, http.client, urllib.parse, random
base, secs = sys.argv[1], float(sys.argv[2])
u = urllib.parse.urlparse(base)
h = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39", "content-type": "application/json"}
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
c.request("GET", "/resource_providers?resources=VCPU:1", headers=h); rps = [r["uuid"] for r in json.loads(c.getresponse().read())["resource_providers"]][:200]
end = time.time() + secs
while time.time() < end:
    rp = random.choice(rps)
    body = json.dumps({"allocations": {rp: {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u", "consumer_generation": None, "consumer_type": "INSTANCE"})
    t0 = time.time()
    c.request("PUT", "/allocations/%s" % uuid.uuid4(), body=body, headers=h); r = c.getresponse(); r.read()
    dt = time.time() - t0
    print("%.3f %.1f %d" % (t0, dt * 1000, r.status), flush=True)
    time.sleep(0.01)
