#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# xen-backend/abi-check.sh PUBLIC_DIR
#
# Does Linux's copy of the revocable-mapping ABI (net/gntsock/xen_revoke_abi.h)
# agree with the patched hypervisor's public/grant_table.h (PUBLIC_DIR is a
# patched tree's xen/include/public, or the copy build.sh keeps of it)?
# Compiles one program against each, prints every sub-op number, flag, struct
# size, field offset and field size, and compares the two lists. Exits 0 and
# prints "abi: N items agree" when they do; prints the difference and exits 1
# when they do not.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PUB=${1:?usage: abi-check.sh PUBLIC_DIR}
LCOPY=$HERE/../net/gntsock/xen_revoke_abi.h
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/abi.h" <<'EOF'
#include <stdio.h>
#include <stddef.h>
#define F(s, f) printf(#s "." #f " %zu %zu\n", offsetof(struct s, f), \
		       sizeof(((struct s *)0)->f))
#define S(s) printf(#s " %zu\n", sizeof(struct s))
#define C(c) printf(#c " %lld\n", (long long)(c))
int main(void)
{
	C(GNTTABOP_map_revocable);
	C(GNTTABOP_revoke);
	C(GNTTABOP_set_revocable_only);
	C(_GTF_revocable_only);
	C(GTF_revocable_only);
	C(_GNTTAB_REVOKE_END_ACCESS);
	C(GNTTAB_REVOKE_END_ACCESS);
	C(_GNTTAB_REVOCABLE_ONLY_SET);
	C(GNTTAB_REVOCABLE_ONLY_SET);
	S(gnttab_map_revocable);
	F(gnttab_map_revocable, host_addr);
	F(gnttab_map_revocable, replace_frame);
	F(gnttab_map_revocable, flags);
	F(gnttab_map_revocable, ref);
	F(gnttab_map_revocable, dom);
	F(gnttab_map_revocable, status);
	F(gnttab_map_revocable, handle);
	F(gnttab_map_revocable, options);
	F(gnttab_map_revocable, pad);
	S(gnttab_revoke);
	F(gnttab_revoke, ref);
	F(gnttab_revoke, status);
	F(gnttab_revoke, nr_revoked);
	F(gnttab_revoke, flags);
	F(gnttab_revoke, pad);
	S(gnttab_set_revocable_only);
	F(gnttab_set_revocable_only, ref);
	F(gnttab_set_revocable_only, flags);
	F(gnttab_set_revocable_only, status);
	F(gnttab_set_revocable_only, frame);
	F(gnttab_set_revocable_only, domid);
	F(gnttab_set_revocable_only, pad);
	F(gnttab_set_revocable_only, pad2);
	return 0;
}
EOF

# Xen's side: its public header as the toolstack includes it.
printf '#include <stdint.h>\n#include <public/grant_table.h>\n#include "abi.h"\n' >"$tmp/xen.c"
# Linux's side: the copy, with the few kernel types it uses.
{
	printf '#include <stdint.h>\n'
	printf 'typedef uint64_t u64;\ntypedef uint32_t u32;\ntypedef uint16_t u16;\n'
	printf 'typedef int16_t s16;\n#define BIT(n) (1UL << (n))\n'
	printf 'typedef uint32_t grant_ref_t;\ntypedef uint16_t domid_t;\n'
	printf 'typedef uint32_t grant_handle_t;\n#define DEFINE_GUEST_HANDLE_STRUCT(x)\n'
	grep -v '#include <xen/interface/grant_table.h>' "$LCOPY"
	printf '#include "abi.h"\n'
} >"$tmp/linux.c"

gcc -D__XEN_TOOLS__ -I"$PUB/.." -I"$tmp" -o "$tmp/xen" "$tmp/xen.c"
gcc -I"$tmp" -o "$tmp/linux" "$tmp/linux.c"
"$tmp/xen" >"$tmp/xen.txt"
"$tmp/linux" >"$tmp/linux.txt"
if ! diff -u "$tmp/xen.txt" "$tmp/linux.txt"; then
	echo "abi: net/gntsock/xen_revoke_abi.h differs from the patched public/grant_table.h"
	exit 1
fi
echo "abi: $(wc -l <"$tmp/xen.txt") items agree"
