#!/usr/bin/python3
"""Call cycles among the files of src/broker, from the object files of a build.

Usage: scripts/call_cycles.py BUILD_DIR [-v]

Reads the symbols each object file of tern_broker defines and uses (nm), draws
an edge from file A to file B when A calls (or takes the address of) a function
or object B defines, and prints every strongly connected component of more than
one file: the files that reach each other through calls. -v also prints every
file's edges. Static inline functions in headers are not calls and do not count.
"""
import collections
import glob
import os
import subprocess
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    objs = glob.glob(os.path.join(sys.argv[1], "src/broker/CMakeFiles/tern_broker.dir/*.o"))
    # Builds before the per-module CMake targets kept them elsewhere.
    objs = objs or glob.glob(
        os.path.join(sys.argv[1], "CMakeFiles/tern_broker.dir/src/broker/*.o"))
    if not objs:
        sys.exit("no object files of tern_broker under " + sys.argv[1])
    defs, uses = {}, collections.defaultdict(set)
    for o in objs:
        name = os.path.basename(o).split(".")[0]
        out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "TDRB":
                defs[f[2]] = name
            elif len(f) == 2 and f[0] == "U":
                uses[name].add(f[1])
    graph = {n: set() for n in set(defs.values()) | set(uses)}
    for f, us in uses.items():
        graph[f] |= {defs[u] for u in us if u in defs and defs[u] != f}
    # Tarjan's algorithm, iterative.
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(sorted(comp))
    cycles = [c for c in comps if len(c) > 1]
    for c in sorted(cycles, key=len, reverse=True):
        print("%d files: %s" % (len(c), " ".join(c)))
    if not cycles:
        print("no call cycles")
    if "-v" in sys.argv:
        for f in sorted(graph):
            print("%s -> %s" % (f, " ".join(sorted(graph[f]))))


main()
