#!/bin/sh
# Renders configuration templates, then runs a command: what containers use in front of
# postgres, pgbouncer, redis and nginx (docker-compose.yml), the same as scripts/lib/template.ts
# does for the local runner (npm run dev, the tests).
#
#   render.sh SRC DEST [SRC DEST ...] [-- COMMAND [ARGS...]]
#
# Every ${NAME} (capital letters, digits and _) in SRC is replaced by the environment
# variable NAME; an unset NAME is an error (an empty one is allowed). Nothing else changes:
# nginx's own $variables and anything not in braces are left alone.
set -eu
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  if [ $# -lt 2 ]; then
    echo "render.sh: $1 has no destination" >&2
    exit 2
  fi
  src=$1
  dest=$2
  shift 2
  mkdir -p "$(dirname "$dest")"
  awk '
    {
      line = $0
      out = ""
      while (match(line, /[$][{][A-Z][A-Z0-9_]*[}]/)) {
        name = substr(line, RSTART + 2, RLENGTH - 3)
        if (!(name in ENVIRON)) {
          printf "render.sh: %s line %d: %s is not set\n", FILENAME, NR, name > "/dev/stderr"
          bad = 1
        }
        out = out substr(line, 1, RSTART - 1) ENVIRON[name]
        line = substr(line, RSTART + RLENGTH)
      }
      print out line
    }
    END { if (bad) exit 1 }
  ' "$src" > "$dest.tmp"
  mv "$dest.tmp" "$dest"
done
if [ $# -gt 0 ]; then
  shift
  if [ $# -gt 0 ]; then exec "$@"; fi
fi
