#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Which file of the module calls (or reads) which, from the built objects.

Usage: import_check.py OBJ...    (or one FILE.mod, kbuild's list of objects)

For every object file, the global symbols it defines and the ones it uses
(nm; weak ones too); file A imports file B when A uses a symbol B defines
(every definer counts, so the order of the objects does not matter).
Prints that graph, one line per edge with its symbols, and fails (exit 1)
when
  - a file belongs to no layer of LAYERS below (a new file must be placed),
  - a file imports a file of a higher layer (the layers call only down),
  - files import each other in a circle (within a layer).
Built objects, not source text: what the linker joins is what counts.
Inline functions of headers are not imports; calls through function
pointers (the link handlers of Documentation/gntsock.rst, "Source
layout") are not seen, by design: that is how a lower layer reaches an
upper one.
"""
import os
import subprocess
import sys

# Documentation/gntsock.rst, "Source layout": higher calls lower, never up.
LAYERS = {
    4: ('main.c', 'procfs.c', 'sysctl.c', 'hostile.c'),
    3: ('af_gntsock.c', 'sock.c', 'sock_table.c', 'sock_credit.c',
        'sock_deliver.c', 'sock_recv.c', 'sock_tx.c', 'sock_rx.c', 'rxbuf.c'),
    2: ('grant.c', 'grant_send.c', 'grant_pin.c', 'grant_reclaim.c',
        'grant_recv.c', 'grant_map.c', 'grant_unmap.c', 'grant_events.c',
        'grant_acct.c'),
    1: ('link.c', 'link_tx.c', 'link_rx.c', 'link_poll.c', 'link_xenbus.c',
        'link_loop.c'),
    0: ('ring.c', 'proto.c', 'xen_revoke.c', 'common.c'),
}
LAYER = {f: rank for rank, files in LAYERS.items() for f in files}


def symbols(obj):
    out = subprocess.run(['nm', obj], check=True, capture_output=True,
                         text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ('U', 'w', 'v'):
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in 'TDBRGSVWC':
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


def objects(args):
    if len(args) == 1 and args[0].endswith('.mod'):
        with open(args[0]) as f:
            return [line.strip() for line in f if line.strip()]
    return args


def main(objs):
    defs, uses = {}, {}
    for obj in objs:
        d, u = symbols(obj)
        uses[name(obj)] = u - d
        for s in d:
            defs.setdefault(s, set()).add(name(obj))
    graph = {}
    for f, used in sorted(uses.items()):
        for s in sorted(used):
            for t in sorted(defs.get(s, ())):
                if t != f:
                    graph.setdefault(f, {}).setdefault(t, []).append(s)
    bad = 0
    for f in sorted(graph):
        for t in sorted(graph[f]):
            print('%s -> %s: %s' % (f, t, ' '.join(graph[f][t])))
    for f in sorted(uses):
        if f not in LAYER:
            print('no layer: %s (add it to LAYERS in %s)' % (f, sys.argv[0]))
            bad = 1
    for f in sorted(graph):
        for t in sorted(graph[f]):
            if f in LAYER and t in LAYER and LAYER[t] > LAYER[f]:
                print('upward: %s -> %s: %s' % (f, t, ' '.join(graph[f][t])))
                bad = 1
    for comp in circles(graph):
        print('circle: ' + ' <-> '.join(comp))
        bad = 1
    return bad


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(objects(sys.argv[1:])))
