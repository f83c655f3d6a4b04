"""Print the README's configuration table from gs_hooks._config.ENV_VARS (the single source)."""

from __future__ import annotations

import msgspec

from gs_hooks._config import _SECTIONS, ENV_VARS, Config


def main() -> None:
    defaults: dict[tuple[str, str], object] = {}
    top = Config()
    for section, cls in _SECTIONS.items():
        inst = getattr(top, section)
        for f in msgspec.structs.fields(cls):
            defaults[(section, f.name)] = getattr(inst, f.name)
    defaults[("", "state_path")] = top.state_path
    print("| variable | TOML key | default | meaning |")
    print("|---|---|---|---|")
    for v in ENV_VARS:
        d = defaults.get((v.section, v.field))
        if isinstance(d, tuple):
            d = ",".join(str(x) for x in d) or "(empty)"
        d = "(unset)" if d is None else (str(d) or "(empty)")
        key = f"[{v.section}] {v.field}" if v.section else v.field
        shown = d if d.startswith("(") else f"`{d}`"
        print(f"| `{v.name}` | `{key}` | {shown} | {v.help} |")


if __name__ == "__main__":
    main()
