#!/usr/bin/env python3
"""Usage: scripts/module-cycles.py src

Module import graph of a Rust crate's src/: nodes are files (module paths),
edges are `crate::a::b` / `super::` references; prints strongly connected
components of more than one module (the cycles)."""
import os, re, sys, itertools
root = sys.argv[1]
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs') and 'bin' not in os.path.relpath(d, root).split(os.sep):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)[:-3]
            parts = rel.split(os.sep)
            if parts[-1] in ('mod', 'lib'):
                parts = parts[:-1]
            files['::'.join(parts) or 'lib'] = open(p).read()
mods = set(files)
# names lib.rs re-exports (`pub use a::b::{X, Y}`): crate::X means module a::b
reexp = {}
lib = re.sub(r'//[^\n]*', '', files.get('lib', ''))
for mt in re.finditer(r'pub use ((?:[a-z_][a-z0-9_]*::)+)\{([^}]*)\}', lib):
    for name in re.findall(r'[A-Za-z_][A-Za-z0-9_]*', mt.group(2)):
        reexp[name] = mt.group(1)[:-2]
for mt in re.finditer(r'pub use ((?:[a-z_][a-z0-9_]*::)+)([A-Za-z_][A-Za-z0-9_]*);', lib):
    reexp[mt.group(2)] = mt.group(1)[:-2]
def resolve(path):
    # longest module prefix of a crate:: path
    segs = path.split('::')
    if segs[0] in reexp and segs[0] not in mods:
        segs = reexp[segs[0]].split('::') + segs[1:]
    for n in range(len(segs), 0, -1):
        cand = '::'.join(segs[:n])
        if cand in mods:
            return cand
    return None
edges = {m: set() for m in mods}
for m, text in files.items():
    text = re.sub(r'//[^\n]*', '', text)
    for mt in re.finditer(r'crate::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)', text):
        t = resolve(mt.group(1))
        if t and t != m and t != 'lib':
            edges[m].add(t)
    if m != 'lib':
        parent = '::'.join(m.split('::')[:-1]) or 'lib'
        for mt in re.finditer(r'\bsuper::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)', text):
            base = parent if parent != 'lib' else ''
            t = resolve((base + '::' if base else '') + mt.group(1)) or (parent if parent in mods else None)
            if t and t != m and t != 'lib':
                edges[m].add(t)
# Tarjan
index = {}; low = {}; stack = []; on = set(); sccs = []; c = itertools.count()
def strong(v):
    index[v] = low[v] = next(c); stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in index:
        strong(v)
cyc = [s for s in sccs if len(s) > 1]
print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} edges, {len(cyc)} cycle(s)")
for s in sorted(cyc, key=len, reverse=True):
    print("  cycle:", " <-> ".join(s))
