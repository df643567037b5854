# Persistence from a shell: nohup, setsid and a plain background job, each rewriting a beacon
# file in the workdir with MARKER (from the environment) in its argv; the script exits at once.
loop='trap "" TERM HUP; while :; do date +%s%N > "$1"; sleep 0.1; done'
nohup sh -c "$loop" "$MARKER" beacon-nohup >/dev/null 2>&1 &
setsid sh -c "$loop" "$MARKER" beacon-setsid >/dev/null 2>&1 < /dev/null &
( sh -c "$loop" "$MARKER" beacon-bg >/dev/null 2>&1 & ) &
echo detached
