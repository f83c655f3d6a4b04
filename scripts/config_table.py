"""Print the README's configuration table from gs_hooks._config.ENV_VARS (derived from the settings' fields)."""

from __future__ import annotations

from gs_hooks._config import ENV_VARS


def main() -> None:
    print("| variable | TOML key | default | meaning |")
    print("|---|---|---|---|")
    for v in ENV_VARS:
        d = v.default
        if isinstance(d, tuple):
            d = ",".join(str(x) for x in d) or "(empty)"
        d = "(unset)" if d is None else (str(d) or "(empty)")
        key = f"[{v.section}] {v.field}" if v.section else v.field
        shown = d if d.startswith("(") else f"`{d}`"
        print(f"| `{v.name}` | `{key}` | {shown} | {v.help} |")


if __name__ == "__main__":
    main()
