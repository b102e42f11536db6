import sys, re, collections
# read perf script output into stacks (leaf first)
stacks=[]; cur=[]
for line in open(sys.argv[1], errors='replace'):
    line=line.rstrip('\n')
    if not line.strip():
        if cur: stacks.append(cur); cur=[]
        continue
    if line.startswith('\t') or line.startswith(' '):
        parts=line.strip().split(' ',1)
        cur.append(parts[1] if len(parts)>1 else parts[0])
    else:
        cur=[]; 
if cur: stacks.append(cur)
print("samples", len(stacks))
pats=[p for p in sys.argv[2:]]
# hierarchical: count samples containing each pattern (inclusive)
for p in pats:
    r=re.compile(p)
    n=sum(1 for s in stacks if any(r.search(f) for f in s))
    print(f"{100*n/len(stacks):6.2f}%  {p}")
