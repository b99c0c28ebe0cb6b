#!/bin/bash
# Print the kernel ABI the rig boots (dom0 and domUs), e.g. 6.1.0-56-amd64. Build gntsock.ko
# against /usr/src/linux-headers-$(selftests/rig/kver.sh) so that it loads in the guests.
set -eu
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
rig_kabi || rig_die "cannot resolve the kernel ABI (apt-cache depends linux-image-amd64); run deps.sh"
