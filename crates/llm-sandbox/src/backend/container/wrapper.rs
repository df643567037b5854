//! The commands a container backend runs around the code, whatever the engine: the run
//! wrapper, the OOM-kill probe and the kill of everything the code's user left.

/// The shell script every command runs under: run the command, then kill every other process
/// of the code's user (what the run left behind), and exit with the command's status. The
/// command is passed as arguments, never interpolated; the shell's own messages (such as
/// "Killed") are silenced so that stderr is the command's alone.
///
/// The code runs as the same user as the wrapper and may signal it: a catchable signal still
/// ends in the kill (the trap runs once the command is gone; handlers do not pass to the
/// command), and whatever a SIGKILL'd wrapper left is killed when the next command starts.
pub const RUN_WRAPPER: &str = r#"exec 4>&2 2>/dev/null
trap 'kill -9 -1; exit 143' HUP INT QUIT TERM USR1 USR2 ALRM
kill -9 -1
n=$1; shift
while [ "$n" -gt 0 ]; do
    case $1 in
        r) rm -rf -- "$2" || true ;;
        d) mkdir -p -- "$2" && { chmod "$3" -- "$2" || true; } ;;
        f) printf '%s' "$4" >"$2" && chmod "$3" -- "$2" ;;
    esac || { printf 'llm-sandbox: preparing %s failed\n' "$2" >&4; exit 126; }
    n=$((n - 1)); shift 4
done
command -v "$1" >/dev/null || { printf 'llm-sandbox: %s: command not found\n' "$1" >&4; exit 127; }
"$@" 2>&4 4>&-
status=$?
kill -9 -1
exit $status"#;
/// Prints the container's OOM-kill counters (cgroup v1 or v2), readable by the code's user.
pub const READ_OOM_KILLS: &str =
    "cat /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events 2>/dev/null; exit 0";
/// Kills every process of the code's user (after a timeout).
pub const KILL_ALL: &str = "kill -9 -1 2>/dev/null; exit 0";

/// The largest OOM-kill count in what [`READ_OOM_KILLS`] printed (0 when there is none).
pub fn oom_kills(printed: &[u8]) -> u64 {
    String::from_utf8_lossy(printed)
        .lines()
        .filter_map(|line| line.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kills_are_read_from_v1_and_v2_counters() {
        assert_eq!(
            oom_kills(b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            3
        );
        assert_eq!(oom_kills(b"low 0\nhigh 0\nmax 2\noom 2\noom_kill 2\n"), 2);
        assert_eq!(oom_kills(b""), 0);
    }
}
