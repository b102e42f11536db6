import sys, struct, collections
def varint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1; r |= (c & 0x7f) << s; s += 7
        if c < 0x80: return r, i
def records(path):
    data = open(path, 'rb').read(); BLK = 32768; pos = 0; frag = b''
    while pos + 7 <= len(data):
        blk_left = BLK - pos % BLK
        if blk_left < 7: pos += blk_left; continue
        crc, ln, typ = struct.unpack_from('<IHB', data, pos)
        hdr = 11 if typ in (5,6,7,8,11) else 7
        if typ == 0 and ln == 0: pos += blk_left; continue
        payload = data[pos+hdr:pos+hdr+ln]; pos += hdr + ln
        if typ in (9,10,11): continue
        t = typ if typ < 5 else typ - 4
        if t == 1: yield payload
        elif t == 2: frag = payload
        elif t == 3: frag += payload
        elif t == 4: frag += payload; yield frag; frag = b''
cfnames = {0:'default',1:'raft_log',2:'raft_meta',3:'sm_records',4:'sm_meta'}
stat = collections.Counter(); cnt = collections.Counter(); batches = 0
for path in sys.argv[1:]:
    for rec in records(path):
        batches += 1
        i = 12
        while i < len(rec):
            t = rec[i]; i += 1; cf = 0
            if t in (4,5,6,8,0xe):  # CF variants
                cf, i = varint(rec, i)
            base = {1:'put',0:'del',5:'put',4:'del',7:'sdel',8:'sdel',0xf:'rdel',0xe:'rdel',2:'merge',6:'merge'}.get(t)
            if base is None:
                if t in (9,0xa,0xb,0xc,0xd,0x10,0x11,0x12,0x13,0x14,0x15,0x16,0x17,0x18,0x19):
                    # skip unusual types: best effort
                    stat[('other',t)] += 0; break
                break
            kl, i = varint(rec, i); k = rec[i:i+kl]; i += kl; n = kl
            if base in ('put','merge','rdel'):
                vl, i = varint(rec, i); i += vl; n += vl
            key = (cfnames.get(cf,cf), base, k[:1].hex() if cf == 3 else '')
            stat[key] += n; cnt[key] += 1
print('batches', batches)
tot = sum(stat.values())
for k, v in sorted(stat.items(), key=lambda kv: -kv[1]):
    print(f'{k!s:45} {cnt[k]:>9} ops {v/1e6:8.1f} MB  {v/cnt[k]:7.0f} B/op  {100*v/tot:5.1f}%')
