import collections,sys,re
sys.path.insert(0,'/work/main/docs/benchmarks-raw/2026-12-07/write-profile')
import stacks
cats=[('sm_worker','Worker<C,SM,LR>::apply'),('read_range','LogStore::read_range'),('log_append','write_synced|LogStore.*append'),
('peer_server','transport::server'),('peer_client','transport::client|HttpLink|reqwest|hyper_util::client|placement_net::channel::Channel|client_reads|client_writes'),('chan_server','serve_channel|channel::dispatch'),
('api_http','placement_net::serve'),('api_handlers','placement_api::context::handle'),('schema','placement_api::schema'),('json','serde_json'),
('raftcore','RaftCore'),('replication','openraft::replication'),('forward','placement_raft::forward'),('alloc','^mi_|malloc|^free'),('tracing','tracing'),('kernel_net','tcp_|sock_|__sys_sendto|__sys_recvfrom|ep_poll|epoll')]
for d,rps in [(sys.argv[1],float(sys.argv[2])),(sys.argv[3],float(sys.argv[4]))]:
    tot=0; row=collections.Counter()
    for i in range(3):
        s=stacks.read_samples(f'{d}/s{i}.txt')
        tot+=len(s)
        for comm,fr in s:
            for name,pat in cats:
                if any(re.search(pat,f) for f in fr): row[(i,name)]+=1
            row[(i,'ALL')]+=1
    w=rps*8/1000.0
    print(f'## {d} rps {rps}: samples per 1000 writes (499 Hz => 1 sample ~2ms)')
    print('%-13s'%'cat'+''.join('%9s'%f'n{i}' for i in range(3))+'%9s'%'sum')
    for name,_ in [('ALL',0)]+cats:
        v=[row[(i,name)]/w for i in range(3)]
        print('%-13s'%name+''.join('%9.1f'%x for x in v)+'%9.1f'%sum(v))
