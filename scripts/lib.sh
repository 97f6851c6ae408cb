# shellcheck shell=bash
# Shared by the set-up scripts: where msb keeps its data (mirrors msb_ctx_new).
msb_data_dir() {
        if [ -n "${MSB_HOME:-}" ]; then
                echo "$MSB_HOME"
        elif [ "$(id -u)" = 0 ]; then
                echo /var/lib/msb
        else
                echo "${XDG_DATA_HOME:-$HOME/.local/share}/msb"
        fi
}
say() { printf '==> %s\n' "$*" >&2; }
