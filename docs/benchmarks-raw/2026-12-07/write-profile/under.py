import sys, re, collections
stacks=[]; cur=[]
for line in open(sys.argv[1], errors='replace'):
    line=line.rstrip('\n')
    if not line.strip():
        if cur: stacks.append(cur); cur=[]
        continue
    if line.startswith('\t') or line.startswith(' '):
        parts=line.strip().split(' ',1)
        cur.append(parts[1] if len(parts)>1 else parts[0])
    else: cur=[]
if cur: stacks.append(cur)
r=re.compile(sys.argv[2]); depth=int(sys.argv[3]) if len(sys.argv)>3 else 1
c=collections.Counter(); tot=0
for s in stacks:
    idx=[i for i,f in enumerate(s) if r.search(f)]
    if not idx: continue
    tot+=1
    i=max(idx)  # outermost match
    child=s[i-depth] if i-depth>=0 else '(self)'
    c[re.sub(r'<[^<>]{60,}>','<…>',child)[:150]]+=1
print("total", tot, "of", len(stacks))
for k,v in c.most_common(25): print(f"{100*v/len(stacks):6.2f}% {k}")
