"""What a system under test costs, from /proc: CPU seconds and
proportional resident memory of a process and all its descendants (a master with its workers or
its per-session children)."""
import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    # the command name may hold spaces: split after its closing parenthesis
    return data[data.rindex(")") + 2:].split()


def tree(root):
    """root and its live descendants."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat(int(name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(roots):
    """utime+stime of every process in the trees, plus what the roots have
    collected from children that already exited (cutime+cstime)."""
    ticks = 0
    for root in roots:
        for pid in tree(root):
            try:
                f = _stat(pid)
            except OSError:
                continue
            ticks += int(f[11]) + int(f[12])
            if pid == root:
                ticks += int(f[13]) + int(f[14])
    return ticks / CLK_TCK


def run_queue_seconds(roots):
    """How long the threads of the trees' live processes were runnable
    but waiting for a CPU (/proc/<pid>/task/<tid>/schedstat, its second
    field): on cores the proxy shares with the load generator and the
    backend, the scheduler's share of a latency."""
    ns = 0
    for root in roots:
        for pid in tree(root):
            try:
                tids = os.listdir("/proc/%d/task" % pid)
            except OSError:
                continue
            for tid in tids:
                try:
                    with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                        ns += int(f.read().split()[1])
                except (OSError, IndexError, ValueError):
                    continue
    return ns / 1e9


def _smaps_kib(roots, field):
    """The sum of an smaps_rollup field over every process in the trees."""
    total = 0
    for root in roots:
        for pid in tree(root):
            try:
                with open("/proc/%d/smaps_rollup" % pid) as f:
                    for line in f:
                        if line.startswith(field):
                            total += int(line.split()[1])
                            break
            except OSError:
                continue
    return total


def private_dirty_kib(roots):
    """Memory the processes of the trees wrote and share with no other
    process (Private_Dirty: heap, stacks, buffers), in KiB. Unlike the
    PSS or all private pages, it does not fall when another process (the
    load generator) maps the same libraries."""
    return _smaps_kib(roots, "Private_Dirty:")


def pss_kib(roots):
    """Proportional set size of every process in the trees, in KiB: the
    resident memory with shared pages divided among their sharers, so a
    process per session is not counted as many copies of one binary."""
    return _smaps_kib(roots, "Pss:")


def named(roots, name):
    """The processes of the trees whose command name is name."""
    out = []
    for root in roots:
        for pid in tree(root):
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() == name:
                        out.append(pid)
            except OSError:
                continue
    return out


def unread_bytes(ip, port):
    """Bytes received and not yet read on the established TCP sockets
    whose local address is ip:port (IPv4): what a proxy listening there
    has still to read from its clients."""
    want = "%08X:%04X" % (int.from_bytes(bytes(int(x) for x in ip.split(".")), "little"),
                          port)
    total = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want and fields[3] == "01":	# ESTABLISHED
                total += int(fields[4].split(":")[1], 16)
    return total
