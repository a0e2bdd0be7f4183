#!/usr/bin/env python3
"""Regenerate the config-key tables in README.md from the schema.

Usage: utils/sync_readme_keys.py [--check]
  --check   exit 1 (and say so) when README.md is out of date instead of writing it
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from vc_toolkit.bin.config import key_rows, markdown_keys

README = Path(__file__).resolve().parents[1] / "README.md"


def render(text: str) -> str:
    for kind in ("spk", "tag", "voc"):
        table = markdown_keys(key_rows(kind))
        pattern = re.compile(rf"(<!-- keys:{kind} -->\n).*?(<!-- /keys:{kind} -->)", re.S)
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    return text


def main() -> int:
    old = README.read_text(encoding="utf-8")
    new = render(old)
    if "--check" in sys.argv[1:]:
        if new != old:
            print("README.md config-key tables are out of date: run utils/sync_readme_keys.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
