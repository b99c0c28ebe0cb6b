#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One table from the tables of several `make bench` boots.

Usage: bench_boots.py TABLE...

Each TABLE is a boot's build/bench/table.txt. From each it takes the first
throughput table (all transports, module defaults) and the first round
trip table, and prints, per write size, every boot's gntsock/libxenvchan
and gntsock/TCP ratio (both transports measured in that boot) and their
median, with the median and range of each transport's MB/s; then the same
for the 1-byte round trip. Ratios are taken within a boot and only then
summarised: the host's load moves every transport of a boot together.
"""
import re
import statistics
import sys

ROW = re.compile(r'^\s*(\d+ (?:B|KiB|MiB))\s+([\d.]+|n/a)\s+([\d.]+|n/a)'
                 r'\s+([\d.]+|n/a)\s+([\d.]+|n/a)\s+\|')
RTT = re.compile(r'^\s*(gntsock|TCP|vchan)\s+([\d.]+)\s+([\d.]+)')


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def parse(path):
    """{size: (gnt, tcp, vchan, memcpy)}, {transport: median rtt}, order."""
    rows, rtt, order = {}, {}, []
    state = 0
    with open(path, errors='replace') as f:
        for line in f:
            if state == 0 and re.match(r'^\s*write\s+gntsock\s+TCP\s+vchan',
                                       line):
                state = 1
                continue
            if state == 1:
                m = ROW.match(line)
                if m:
                    rows[m.group(1)] = tuple(num(m.group(i))
                                             for i in range(2, 6))
                    order.append(m.group(1))
                    continue
                state = 2
            if state == 2 and '1-byte ping-pong round trip' in line:
                state = 3
                continue
            if state == 3:
                m = RTT.match(line)
                if m:
                    rtt[m.group(1)] = num(m.group(2))
                elif rtt:
                    break
    return rows, rtt, order


def ratio(a, b):
    return a / b if a and b else None


def fmt_list(vals, pat):
    return ' '.join(pat % v if v is not None else '-' for v in vals)


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def main(paths):
    boots = [parse(p) for p in paths]
    boots = [b for b in boots if b[0]]
    if not boots:
        print('bench-boots: no throughput table in', ' '.join(paths))
        return 1
    n = len(boots)
    print('\n== %d boots: ratios within each boot, then their median ==' % n)
    print('%8s  %-22s %7s  %-22s %7s  %s' % (
        'write', 'gnt/vchan per boot', 'median', 'gnt/TCP per boot',
        'median', 'MB/s median [min-max]: gntsock; vchan; TCP'))
    for size in boots[0][2]:
        cols = [b[0].get(size, (None,) * 4) for b in boots]
        rv = [ratio(c[0], c[2]) for c in cols]
        rt = [ratio(c[0], c[1]) for c in cols]

        def rng(i):
            v = [c[i] for c in cols if c[i] is not None]
            if not v:
                return '-'
            return '%.1f [%.1f-%.1f]' % (statistics.median(v), min(v),
                                         max(v))
        mv, mt = med(rv), med(rt)
        print('%8s  %-22s %6s  %-22s %6s  %s; %s; %s' % (
            size, fmt_list(rv, '%.2f'),
            '%.2fx' % mv if mv is not None else '-',
            fmt_list(rt, '%.2f'), '%.2fx' % mt if mt is not None else '-',
            rng(0), rng(2), rng(1)))
    g = [b[1].get('gntsock') for b in boots]
    v = [b[1].get('vchan') for b in boots]
    t = [b[1].get('TCP') for b in boots]
    rv = [ratio(a, b) for a, b in zip(g, v)]
    print('\n1-byte round trip, median us per boot: gntsock %s; vchan %s; '
          'TCP %s' % (fmt_list(g, '%.0f'), fmt_list(v, '%.0f'),
                      fmt_list(t, '%.0f')))
    mv = med(rv)
    print('gntsock/vchan per boot %s, median %s' % (
        fmt_list(rv, '%.2f'), '%.2fx' % mv if mv is not None else '-'))
    return 0


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
