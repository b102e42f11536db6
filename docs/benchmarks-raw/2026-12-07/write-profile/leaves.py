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
r=re.compile(sys.argv[2]); n=int(sys.argv[3]) if len(sys.argv)>3 else 25
mid=re.compile(sys.argv[4]) if len(sys.argv)>4 else None
c=collections.Counter(); tot=0
for s in stacks:
    if not any(r.search(f) for f in s): continue
    tot+=1
    key=s[0]
    if mid:
        m=[f for f in s if mid.search(f)]
        key=(m[0] if m else '-')+'  <<  '+s[0]
    c[re.sub(r'<[^<>]{40,}>','<…>',key)[:200]]+=1
print("total", tot, "of", len(stacks))
for k,v in c.most_common(n): print(f"{100*v/len(stacks):6.2f}% {k}")
