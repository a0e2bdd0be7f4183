"""Inspect configs: list spk/tag names, show a resolved config, get one value, document keys."""

from __future__ import annotations

import sys
from typing import get_args

import yaml

from vc_toolkit.bin import common
from vc_toolkit.config import (
    ConfigError,
    SpkConfig,
    TagConfig,
    VocConfig,
    load_spk,
    load_tag,
    load_voc,
    to_dict,
)
from vc_toolkit.config.core import iter_keys
from vc_toolkit.config.resolve import available, flatten
from vc_toolkit.config.spk import Corpus
from vc_toolkit.config.text import TextConfig
from vc_toolkit.train import pretrain

EPILOG = """\
examples:
  vc-config list                     spk and tag names in conf/
  vc-config show --tag demo_conv     the fully resolved tag (bases and preset applied)
  vc-config get --tag demo_conv spk  one value (dotted key)
  vc-config keys spk                 every spk key with type, default and help
  vc-config show --voc demo_hifigan  a resolved vocoder config; keys voc documents them
  vc-config chain --tag demo_small_ft  the pretrain ancestors of a tag, oldest first: "tag spk"
"""


def _load(args, layout):
    given = [(k, getattr(args, k)) for k in ("spk", "tag", "voc") if getattr(args, k)]
    if len(given) != 1:
        raise ConfigError("give exactly one of --spk, --tag and --voc")
    kind, name = given[0]
    return {"spk": load_spk, "tag": load_tag, "voc": load_voc}[kind](name, layout.root)


def _main(args, layout) -> int:
    if args.action == "list":
        for kind in ("spk", "tag", "voc", "model", "optuna"):
            print(f"{kind}: {' '.join(available(layout, kind)) or '(none)'}")
    elif args.action == "show":
        print(yaml.safe_dump(to_dict(_load(args, layout)), sort_keys=False), end="")
    elif args.action == "get":
        if not args.key:
            raise ConfigError("vc-config get needs a dotted key, e.g. 'train.batch_size'")
        flat = flatten(to_dict(_load(args, layout)))
        if args.key not in flat:
            raise ConfigError(f"no key '{args.key}' in the resolved config")
        value = flat[args.key]
        print("" if value is None else value)
    elif args.action == "chain":
        if not args.tag:
            raise ConfigError("vc-config chain needs --tag")
        for tag in pretrain.chain(args.tag, layout):
            print(tag, load_tag(tag, layout.root).spk)
    elif args.action == "keys":
        rows = key_rows(args.key or "")
        if args.format == "md":
            print(markdown_keys(rows))
        else:
            width = max(len(r[0]) for r in rows)
            for key, tp, default, text in rows:
                print(f"{key:<{width}}  {text}  [{tp}; default {default!r}]")
    return 0


def key_rows(kind: str) -> list[tuple[str, str, object, str]]:
    """Every documented key of the spk or tag schema (corpus options per recipe)."""
    if kind == "tag":
        return list(iter_keys(TagConfig))
    if kind == "voc":
        return list(iter_keys(VocConfig))
    if kind != "spk":
        raise ConfigError("vc-config keys needs 'spk', 'tag' or 'voc'")
    rows = []
    for key, tp, default, text in iter_keys(SpkConfig):
        if key == "text":  # null by default; its keys when set (text spks)
            rows.append((key, tp, default, text))
            rows += [(f"text.{k}", t, d, h) for k, t, d, h in iter_keys(TextConfig)]
            continue
        if key != "corpus":
            rows.append((key, tp, default, text))
            continue
        for cls in get_args(Corpus):
            recipe = cls.__dataclass_fields__["name"].default
            for sub, t, d, h in iter_keys(cls):
                if sub != "name":
                    rows.append((f"corpus.{sub} ({recipe})", t, d, h))
    return rows


def markdown_keys(rows) -> str:
    """A Markdown table of ``key_rows`` output."""
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, tp, default, text in rows:
        shown = "required" if default == "(required)" else f"`{default!r}`"
        lines.append(f"| `{key}` | {tp} | {shown} | {text} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = common.parser("vc-config", __doc__, EPILOG)
    p.add_argument("action", choices=["list", "show", "get", "keys", "chain"], help="what to do")
    p.add_argument("key", nargs="?", help="get: dotted key; keys: spk, tag or voc")
    p.add_argument("--spk", help="dataset version name")
    p.add_argument("--tag", help="experiment name")
    p.add_argument("--voc", help="vocoder experiment name")
    p.add_argument("--format", choices=["text", "md"], default="text", help="keys: output format")
    args = p.parse_intermixed_args(argv)
    return common.run(_main, args)


if __name__ == "__main__":
    sys.exit(main())
