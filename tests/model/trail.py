#!/usr/bin/python3
"""Renders a spin trail of ring.pml in words: each step's MSC line, then
what changed in etcd and in the nodes (from the model's "ST" lines).

    spin -t [-D...] ring.pml | trail.py N [K]

N: the nodes, K: the watch's lag before it is compacted (-DN, -DK).
"""
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2
K = int(sys.argv[2]) if len(sys.argv) > 2 else 2
MOVE = N
B_HOSTS, B_HC, B_HCID, B_MV, B_MVID, B_MVT, B_MEM = 0, 1, 2, 3, 4, 5, 6
B_HCACK, B_HCAV, B_MVACK, B_MVAV = 6 + N, 6 + 2 * N, 6 + 3 * N, 6 + 4 * N
B_PINOLD = 2 * (N + 1)
GHOSTS = {1: "pins+ack", 2: "move ack", 3: "take pin", 4: "delete pin",
          5: "commit", 6: "finish move"}


def bit(x, i):
    return (x >> i) & 1


def pins(p, node_view=False):
    out = []
    for h in range(N + 1):
        v = (p >> (2 * h)) & 3
        if v:
            name = "@move" if h == MOVE else "n%d" % h
            old = "(old lease)" if h < N and bit(p, B_PINOLD + h) and not node_view else ""
            out.append("%s=b%d%s" % (name, v - 1, old))
    return "{" + " ".join(out) + "}"


def etcd(m, p):
    s = ["hash->b%d" % bit(m, B_HOSTS)]
    if bit(m, B_HC):
        s.append("hostchange#%d" % bit(m, B_HCID))
    acks = ["n%d#%d" % (n, bit(m, B_HCAV + n)) for n in range(N) if bit(m, B_HCACK + n)]
    if acks:
        s.append("hc-acks[%s]" % " ".join(acks))
    if bit(m, B_MV):
        s.append("move#%d->b%d" % (bit(m, B_MVID), bit(m, B_MVT)))
    acks = ["n%d#%d" % (n, bit(m, B_MVAV + n)) for n in range(N) if bit(m, B_MVACK + n)]
    if acks:
        s.append("mv-acks[%s]" % " ".join(acks))
    s.append("members[%s]" % " ".join("n%d" % n for n in range(N) if bit(m, B_MEM + n)))
    s.append("pins" + pins(p))
    return " ".join(s)


def node(f):
    (k, alive, cut, fenced, paused, rec, rhost, own, pown, dprep, cprep, sess, vm, vp,
     lag, la, ol, ghost, mid, rel) = f
    if not alive:
        st = "down"
    else:
        st = "paused" if paused else "fenced" if fenced else "cut" if cut else "up"
    s = ["n%d %s" % (k, st)]
    if alive:
        s.append("lag %d" % lag if lag <= K else "watch compacted")
        s.append("record b%d%s%s" % (rhost, " own-pin" if own else "",
                                    " (deleting its pin)" if rel else "") if rec else "no record")
        if dprep:
            s.append("rings prepared")
        b = [str(i) for i in range(2) if sess >> i & 1]
        s.append("sessions on b%s" % ",b".join(b) if b else "no sessions")
        if bit(vm, B_MV):
            s.append("holds move#%d" % mid)
        s.append("sees pins%s" % pins(vp, True))
    if ghost:
        s.append("late request: %s" % GHOSTS.get(ghost & 7, "?"))
    if not la:
        s.append("lease gone")
    if ol:
        s.append("old lease alive")
    return ", ".join(s)


def main():
    last = {}
    events = []
    cur = {}
    for line in sys.stdin:
        line = line.strip()
        if "MSC: " in line:
            events.append(line.split("MSC: ", 1)[1])
        elif line.startswith("ST etcd"):
            cur = {"etcd": etcd(*[int(x) for x in line.split()[2:4]])}
        elif line.startswith("ST node"):
            f = [int(x) for x in line.split()[2:]]
            cur["n%d" % f[0]] = node(f)
            if f[0] == N - 1:
                changed = [v for k, v in cur.items() if last.get(k) != v]
                if events or changed:
                    print("- %s" % ("; ".join(events) or "(a step)"))
                    for c in changed:
                        print("      %s" % c)
                last = dict(cur)
                events = []
        elif "Error: assertion violated" in line:
            if events:
                print("- %s" % "; ".join(events))
                events = []
            print("!! " + line)
        elif "<<<<<START OF CYCLE>>>>>" in line:
            print("== the cycle starts here (it repeats forever)")
    if events:
        print("- %s" % "; ".join(events))


main()
