"""An independent model of doveadm's formatters (reference §9), to check
loftadm's bytes against the rules rather than against itself."""
import json as _json

SCREEN = 80  # stdout is a pipe in the tests


def table(cols, rows, hide=False):
    """cols: [(title, flags)] with flags in {"right", "expand"}."""
    n = len(cols)
    widths, mins = [], []
    for c, (title, _) in enumerate(cols):
        lens = [len(title)] + [len(r[c]) for r in rows[:100]]
        widths.append(max(lens))
        mins.append(min(lens))
    total = sum(widths) + n - 1
    if total > SCREEN:
        for c in range(n - 1, -1, -1):
            diff = widths[c] - mins[c]
            if total - diff <= SCREEN:
                widths[c] -= total - SCREEN
                break
            widths[c] -= 1 if diff == 1 else diff // 2
    elif total < SCREEN:
        grow = next((c for c, (_, f) in enumerate(cols) if "expand" in f), n - 1)
        widths[grow] += (SCREEN - total) // 2

    def line(values):
        cells = []
        for c, v in enumerate(values):
            cells.append(v.rjust(widths[c]) if "right" in cols[c][1] else v.ljust(widths[c]))
        return " ".join(cells) + "\n"
    out = "" if hide else line([t for t, _ in cols])
    return out + "".join(line(r) for r in rows)


def tab(cols, rows, hide=False):
    out = "" if hide else "\t".join(t for t, _ in cols) + "\n"
    return out + "".join("\t".join(r) + "\n" for r in rows)


def flow(cols, rows):
    return "".join(" ".join("%s=%s" % (t, v) for (t, _), v in zip(cols, r)) + "\n"
                   for r in rows)


def pager(cols, rows):
    return "\f\n".join("".join("%s: %s\n" % (t, v) for (t, _), v in zip(cols, r))
                       for r in rows)


def json(keys, rows):
    return "[" + ",".join("{" + ",".join("%s:%s" % (_json.dumps(k), _json.dumps(v))
                                         for k, v in zip(keys, r)) + "}"
                          for r in rows) + "]"
