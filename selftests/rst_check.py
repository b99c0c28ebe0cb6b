#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Parse reStructuredText files with docutils; print every warning or error
and exit 1 if there was any. The kernel's own directives (kernel-doc, ...)
are accepted without checking their arguments: Sphinx expands them."""
import io
import sys

import docutils.core
from docutils.parsers.rst import Directive, directives


class Accept(Directive):
    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = None

    def run(self):
        return []


for name in ("kernel-doc", "kernel-abi", "kernel-feat", "c:function", "c:type"):
    directives.register_directive(name, Accept)

bad = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        src = f.read()
    err = io.StringIO()
    docutils.core.publish_doctree(
        src, source_path=path,
        settings_overrides={"warning_stream": err, "report_level": 2,
                            "halt_level": 5})
    if err.getvalue():
        bad += 1
        sys.stdout.write(err.getvalue())
sys.exit(1 if bad else 0)
