-- Seeding (scripts/bench-scale): PUT /allocations/{fresh consumer uuid} claiming VCPU:1,
-- MEMORY_MB:512, DISK_GB:1 on a random provider of $BENCH_DATA/providers.txt (the body of
-- the kit's lua/put_alloc.lua), until SEED_ALLOCS successful allocations in all: each wrk
-- thread stops after its share (SEED_ALLOCS / SEED_THREADS, the first threads take the
-- remainder) and creates the file SEED_DONE_DIR/thread-<n>: wrk itself runs until its -d
-- is over, so the caller sends it SIGINT once every thread's file is there (wrk still
-- reports). Needs PLACEMENT_KIT (the shared kit dir, for lua/common.lua). The result line
-- adds ok_allocs (2xx answers over all threads).
local kit = os.getenv("PLACEMENT_KIT") or error("PLACEMENT_KIT not set")
local B = dofile(kit .. "/lua/common.lua")
local providers, prefix, hdr, quota

local function finished()
  local dir = os.getenv("SEED_DONE_DIR")
  if dir then
    local f = io.open(dir .. "/thread-" .. (tid or 0), "w")
    if f then f:close() end
  end
  wrk.thread:stop()
end
local RES = '{"VCPU":1,"MEMORY_MB":512,"DISK_GB":1}'

setup = B.setup
function init(args)
  B.seed_random(tid)
  providers = B.read_lines("providers.txt")
  prefix = B.prefix()
  hdr = B.headers(true)
  local total = tonumber(os.getenv("SEED_ALLOCS") or "0")
  local threads = tonumber(os.getenv("SEED_THREADS") or "1")
  quota = math.floor(total / threads) + (((tid or 1) <= total % threads) and 1 or 0)
  extra.ok_allocs = 0
  if quota <= 0 then finished() end
end
function request()
  local rp = providers[math.random(#providers)]
  return wrk.format("PUT", prefix .. "/allocations/" .. B.uuid4(), hdr, B.alloc_body(rp, RES))
end
function response(status, headers, body)
  B.count(status)
  if status >= 200 and status < 300 then
    extra.ok_allocs = extra.ok_allocs + 1
    if extra.ok_allocs == quota then finished() end
  end
end
function done(summary, latency, requests)
  B.done(summary, latency, requests, function(e) return "ok_allocs=" .. (e.ok_allocs or 0) end)
end
