import sys, os, time
pid, secs = sys.argv[1], float(sys.argv[2])
end = time.time() + secs
tdir = "/proc/%s/task" % pid
while time.time() < end:
    t = time.time()
    out = []
    for tid in os.listdir(tdir):
        try:
            st = open("%s/%s/stat" % (tdir, tid)).read()
            comm = st[st.index("(")+1:st.rindex(")")]; state = st[st.rindex(")")+2]
            w = open("%s/%s/wchan" % (tdir, tid)).read()
        except OSError:
            continue
        if state in "RD" or w not in ("0", "futex_wait_queue", "do_epoll_wait", "futex_do_wait", "hrtimer_nanosleep"):
            out.append("%s:%s:%s:%s" % (tid, comm, state, w))
    print("%.3f %s" % (t, " ".join(out)), flush=True)
    time.sleep(0.005)
