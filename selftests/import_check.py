#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Which file of the module calls (or reads) which: from the built objects.

Usage: import_check.py OBJ...

For every object file, the global symbols it defines and the ones it uses
(nm); file A imports file B when A uses a symbol B defines. Prints that
graph, one line per edge with the symbols, and exits 1 if the files import
each other in a circle (printing each circle), else 0. Built objects, not
source text: what the linker joins is what counts (inline functions in
headers are not imports; every use of another file's function or variable
is).
"""
import os
import subprocess
import sys


def symbols(obj):
    out = subprocess.run(['nm', obj], check=True, capture_output=True,
                         text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == 'U':
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in 'TDBRGSVW' + 'tdbr'.upper():
            defined.add(parts[2])
    return defined, used


def name(obj):
    base = os.path.basename(obj)[:-2] + '.c'
    return base[2:] if base.startswith('h_') else base


def circles(graph):
    """Tarjan's strongly connected components of more than one file."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(objs):
    defs, uses = {}, {}
    for obj in objs:
        d, u = symbols(obj)
        uses[name(obj)] = u
        for s in d:
            defs[s] = name(obj)
    graph = {}
    for f, used in sorted(uses.items()):
        for s in sorted(used):
            t = defs.get(s)
            if t and t != f:
                graph.setdefault(f, {}).setdefault(t, []).append(s)
    for f in sorted(graph):
        for t in sorted(graph[f]):
            print('%s -> %s: %s' % (f, t, ' '.join(graph[f][t])))
    bad = circles(graph)
    for comp in bad:
        print('circle: ' + ' <-> '.join(comp))
    return 1 if bad else 0


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
