/*
 * ring.pml - a Promela model of the director ring's protocol as the code
 * implements it (src/ring/ring*.c, src/director/director_{pins,move}.c),
 * checked by spin: tests/model/check.sh, `make check-model`, doc/ring.md
 * §11.
 *
 * One user, two backends (0 and 1), N nodes (2 or 3).  etcd is one
 * linearizable store: every request is one atomic transaction on it, its
 * compares evaluated when etcd runs it.  A request may also time out and
 * run later, after newer writes, or never (a "ghost": the etcd client's
 * UNKNOWN outcome; etcd-gateway.md measured one commit 7.8 s late).  Each
 * node follows etcd through a watch that delivers every revision in order
 * with any delay up to K revisions; a node further behind finds its watch
 * compacted and reads the whole state again (ring.c ring_watch_update).
 *
 * Time is abstract.  What the code's timing provides is kept as an
 * ordering: etcd lets a node's lease go only once the node is dead, or cut
 * off from etcd and fenced (ring_lease.c: the fence deadline counts from
 * when the last successful renewal was sent, so it comes before etcd's
 * expiry); the @move pin (user_expire, minutes) outlives every live
 * node's watch lag.  user_expire for records, user_kick_delay and
 * user_move_timeout are "some time later", any time.
 *
 * The property (safety): the user is never in session on two backends at
 * once, on one node or on two (asserted where a session opens, the only
 * step that can break it; sess[] bits are backends).  A second assertion
 * checks doc/ring.md §3's claim that all pins of a user name one host.
 * Liveness (LTL, weak fairness): a move in flight finishes, a host change
 * commits, when the nodes they wait for are alive or their leases end.
 *
 * Configurations (-D at spin -a time; check.sh runs the list):
 *   N, K                 nodes (2, 3); watch lag before compaction (1-3)
 *   MAXHC, MAXMOVE       host changes, moves the admins make
 *   MAXCRASH, MAXCUT     node crashes, partitions from etcd
 *   MAXGHOST             requests that time out (run late or never)
 *   SERVE                ring.partition = serve: a cut-off node never fences
 *   PAUSE, MAXPAUSE      a node stopped (SIGSTOP) past its lease
 *   BUG_EARLY_ACK        a node acks a move before its sessions are gone
 *                        (the check's own test: expected to fail)
 *   LIVENESS             the state liveness needs (tried, forever)
 *   CLAIM_<name>         the one LTL claim to build
 *
 * Without FIX_ flags this is the code as it was when the model was
 * written, and safety fails (doc/ring.md §11 has the trails).  Each FIX_
 * flag is the change a finding proposed; the code makes all of them now
 * (check.sh checks the model with all, and without each one to show it
 * is needed):
 *   FIX_RELEASE   P1: a node deletes its own pin (retrying, comparing the
 *                 pin's version) and forgets the user only once its watch
 *                 shows the deletion; logins of the user wait till then
 *   FIX_TAKE      P2: a login takes its pin only against a pin naming the
 *                 host it will go to
 *   FIX_HCPIN     P3: a host change's pin counts only once written, and
 *                 compares that the change is in flight and that it moves
 *                 nobody (the user's pins, else its hash, name its host)
 *   FIX_OWNREC    P4: a node's own pin it does not remember writing (one
 *                 that ran late) makes a record of the user there too
 *   FIX_REJOIN    R1: a node back with a new lease forgets its records
 *                 and its pin map before it reads the ring again
 *   FIX_REAPPLY   P5: a pin key written again with another host or lease
 *                 is taken back and applied again
 *   FIX_MOVEID    M1: a full read that finds another move of the user
 *                 under the same key holds that one
 */

#ifndef N
#define N 2
#endif
#ifndef K
#define K 2
#endif
#ifndef MAXHC
#define MAXHC 1
#endif
#ifndef MAXMOVE
#define MAXMOVE 1
#endif
#ifndef MAXCRASH
#define MAXCRASH 0
#endif
#ifndef MAXCUT
#define MAXCUT 0
#endif
#ifndef MAXGHOST
#define MAXGHOST 0
#endif
#ifndef MAXPAUSE
#define MAXPAUSE 0
#endif

/*
 * etcd's state is two words, so that a revision is one snapshot.
 * The main word (P = ring.prefix):
 *   HOSTS        P/hosts: the backend the user's hash points at
 *   HC, HCID     P/hostchange exists; its id (one bit: which change)
 *   MV, MVID, MVT  P/moves/<hash>/<tag> exists; its id; its target host
 *   MEM+n        P/members/<n>
 *   HCACK+n, HCAV+n   P/hostchange-ack/<n> exists; its value (a change id)
 *   MVACK+n, MVAV+n   P/moves-ack/<hash>/<tag>/<n>; its value (a move id)
 * The pins word: PIN(h) = P/pins/<hash>/<tag>/<h>: 0 none, 1 backend 0,
 * 2 backend 1; holders 0..N-1 are nodes, holder N is "@move"; PINOLD+n:
 * node n's pin is on the lease of its previous run (ring_pins.c decides
 * "own" by the key's lease).
 */
#define B_HOSTS 0
#define B_HC    1
#define B_HCID  2
#define B_MV    3
#define B_MVID  4
#define B_MVT   5
#define B_MEM   6
#define B_HCACK (6 + N)
#define B_HCAV  (6 + 2 * N)
#define B_MVACK (6 + 3 * N)
#define B_MVAV  (6 + 4 * N)
#define MOVEPIN N
#define B_PINOLD (2 * (N + 1))
/* FIX_RELEASE with late requests: node n's pin's version (its mod
 * revision, modulo 4) */
#if defined(FIX_RELEASE) && MAXGHOST > 0
#define PINVER
#endif
#define B_PINV   (B_PINOLD + N)
#ifdef PINVER
#define PV(p, n) (((p) >> (B_PINV + 2 * (n))) & 3)
#else
#define PV(p, n) 0
#endif

#define BIT(s, i)       (((s) >> (i)) & 1)
#define SETB(s, i, v)   s = ((s) & ~(1 << (i))) | ((v) << (i))
#define PIN(p, h)       (((p) >> (2 * (h))) & 3)
#define SETPIN(p, h, v) p = ((p) & ~(3 << (2 * (h)))) | ((v) << (2 * (h)))
#define NMASK           ((1 << N) - 1)
#define HCACKS          ((NMASK << B_HCACK) | (NMASK << B_HCAV))
#define MVACKS          ((NMASK << B_MVACK) | (NMASK << B_MVAV))

/* acks as ring_change_acked / ring_moves_ack_apply count them: present
 * and naming the change or move in flight */
#define HCACKED(v, m)    (BIT(v, B_HCACK + m) && BIT(v, B_HCAV + m) == BIT(v, B_HCID))
#define MVACKED(v, m, i) (BIT(v, B_MVACK + m) && BIT(v, B_MVAV + m) == (i))
#define MEMB(v, m)       BIT(v, B_MEM + m)
#if N == 2
#define FORN(m) m(0); m(1)
#define ALLHC(v) ((!MEMB(v, 0) || HCACKED(v, 0)) && (!MEMB(v, 1) || HCACKED(v, 1)))
#define ALLMV(v, i) ((!MEMB(v, 0) || MVACKED(v, 0, i)) && (!MEMB(v, 1) || MVACKED(v, 1, i)))
#define PB(p, h) ((PIN(p, h) != 0) -> (1 << (PIN(p, h) - 1)) : 0)
#define PINSET(p) (PB(p, 0) | PB(p, 1) | PB(p, 2))
#define ALLSESS (sess[0] | sess[1])
#elif N == 3
#define FORN(m) m(0); m(1); m(2)
#define ALLHC(v) ((!MEMB(v, 0) || HCACKED(v, 0)) && (!MEMB(v, 1) || HCACKED(v, 1)) && \
	(!MEMB(v, 2) || HCACKED(v, 2)))
#define ALLMV(v, i) ((!MEMB(v, 0) || MVACKED(v, 0, i)) && (!MEMB(v, 1) || MVACKED(v, 1, i)) && \
	(!MEMB(v, 2) || MVACKED(v, 2, i)))
#define PB(p, h) ((PIN(p, h) != 0) -> (1 << (PIN(p, h) - 1)) : 0)
#define PINSET(p) (PB(p, 0) | PB(p, 1) | PB(p, 2) | PB(p, 3))
#define ALLSESS (sess[0] | sess[1] | sess[2])
#else
#error N must be 2 or 3
#endif
#if K < 1 || K > 3
#error K must be 1 to 3
#endif

/* the watch: hm/hp[i] is etcd's state i revisions ago, [0] now; node n
 * has applied up to lag[n] revisions ago; lag K + 1: its watch was
 * compacted away, it must read everything again */
int hm[K + 1];
int hp[K + 1];
#define SM hm[0]
#define SP hp[0]

/* each node: loftd's process, its ring (ring_*.c) and its director's
 * record of the user (director/users.c) */
bit alive[N];   /* loftd runs */
bit cut[N];     /* cannot reach etcd: no events, no requests */
bit fenced[N];  /* ring_lease_check: past its deadline, serves nothing */
bit paused[N];  /* SIGSTOP: does nothing at all */
bit ldreq[N];   /* must read the whole state (joining, back after a fence,
                 * its watch compacted) before it serves */
int vm[N];      /* the state it applied (main word) */
int vp[N];      /* ... and the pins it applied (its pin map) */
byte lag[N];
bit rec[N];     /* director: a record of the user */
bit loc[N];     /* ... that a login here routed by: only such a record is
                 * pinned at a host change (ring_prepare_collect: one that
                 * only another node's pin made is kept by that pin) */
bit rhost[N];   /*   its host (u->host) */
bit own[N];     /*   u->own_pin */
bit pown[N];    /* ring_pins.c: its own-name pin key was applied as its own */
bit rel[N];     /* FIX_RELEASE: its own pin is being deleted ... */
bit reldone[N]; /*   the deletion ran */
byte relat[N];  /*   revisions its watch must apply to see it */
byte myver[N];  /*   the version of its pin it knows */
bit dprep[N];   /* director: rings prepared (logins of the user wait) */
bit cprep[N];   /* ring: ch->prepared (pins and ack sent) */
bit mid[N];     /* its ring_move's id and target (set when first seen) */
bit mtg[N];
byte sess[N];   /* live sessions of the user: bit b = on backend b */
short ghost[N]; /* a request that timed out: may run later */
#ifdef LIVENESS
byte tried[N];  /* the kinds of its duties' requests that changed
                 * nothing: not sent again before its view moves on (no
                 * busy loop; one bit per request type) */
#define TRIED(n, tt) ((tried[n] >> (tt)) & 1)
#define SET_TRIED(n, tt) tried[n] = tried[n] | (1 << (tt))
#define CLEAR_TRIED(n) tried[n] = 0
#else
#define TRIED(n, tt) 0
#define SET_TRIED(n, tt) skip
#define CLEAR_TRIED(n) skip
#endif

/* leases, in etcd: each node's current lease, and at most one older one
 * (its previous run's, which ring.c does not revoke); kold: which of its
 * keys (other than the pin, see PINOLD) are on the older one */
bit la[N];
bit ol[N];
byte kold[N];
#define K_MEM   1
#define K_HCACK 2
#define K_MVACK 4

byte nhc, nmv, ncrash, ncut, nghost, npause;
#ifdef LIVENESS
bit forever;    /* the node that crashed or was cut off never comes back */
#define FOREVER forever
#define MAYBE_FOREVER if :: skip :: forever = 1 fi
#else
#define FOREVER 0
#define MAYBE_FOREVER skip
#endif

/* scratch: zero between steps */
int om, nm;
int op, np, xp;
byte h, v, t;
bit ok, to, dm, chg, ld, gx;
short g;

#define CONN(n) (alive[n] && !cut[n] && !paused[n])
#define SERVING(n) (CONN(n) && !ldreq[n])    /* ring_change_settle runs */
#define RUNS(n) (alive[n] && !paused[n])
#define DMOVE(n) BIT(vm[n], B_MV)

/* the remote pins node n's director counts in map xp (u->remote_pins):
 * every pin but its own-name key applied as its own */
#define RP1(n, p, hh) ((PIN(p, hh) != 0 && !((hh) == (n) && pown[n])) -> 1 : 0)
#if N == 2
#define RPINS(n, p) (RP1(n, p, 0) + RP1(n, p, 1) + RP1(n, p, 2))
#else
#define RPINS(n, p) (RP1(n, p, 0) + RP1(n, p, 1) + RP1(n, p, 2) + RP1(n, p, 3))
#endif

/* the state after a step, for trail.py (printed only when a trail is
 * replayed) */
#define SHOWN(k) printf("ST node %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d\n", \
	k, alive[k], cut[k], fenced[k], paused[k], rec[k], rhost[k], own[k], pown[k], \
	dprep[k], cprep[k], sess[k], vm[k], vp[k], lag[k], la[k], ol[k], ghost[k], mid[k], rel[k])
inline reset()
{
	printf("ST etcd %d %d\n", SM, SP);
	FORN(SHOWN);
	om = 0; nm = 0; op = 0; np = 0; xp = 0; h = 0; v = 0; t = 0;
	ok = 0; to = 0; dm = 0; chg = 0; ld = 0; gx = 0; g = 0
}

/* zero the history no node still needs */
#define LAGOK(k) ((alive[k] && lag[k] <= K) -> lag[k] : 0)
#if N == 2
#define MAXLAG ((LAGOK(0) > LAGOK(1)) -> LAGOK(0) : LAGOK(1))
#else
#define MAX2(a, b) (((a) > (b)) -> (a) : (b))
#define MAXLAG MAX2(LAGOK(0), MAX2(LAGOK(1), LAGOK(2)))
#endif
inline tidy()
{
	t = MAXLAG;
	if :: t < 1 -> hm[1] = 0; hp[1] = 0 :: else -> skip fi;
#if K >= 2
	if :: t < 2 -> hm[2] = 0; hp[2] = 0 :: else -> skip fi;
#endif
#if K >= 3
	if :: t < 3 -> hm[3] = 0; hp[3] = 0 :: else -> skip fi;
#endif
	t = 0
}

#define LAG_INC(k) if :: alive[k] && lag[k] <= K -> lag[k]++ :: else -> skip fi

/* a ghost: type (3 bits), three arguments, and whether its lease became
 * the node's older one */
#define T_PREP   1  /* a: pin value, b: with a pin, c: the change's id */
#define T_MVACK  2  /* c: the move's id */
#define T_TAKE   3  /* its own pin, against another */
#define T_PINDEL 4  /* its own pin's key; a, b: the version it knows (FIX_RELEASE) */
#define T_COMMIT 5  /* c: the change's id */
#define T_FINISH 6  /* a: target, c: the move's id */
#define LEASED(tt) ((tt) <= T_TAKE)
#define G(tt, a, b, c) ((tt) | ((a) << 3) | ((b) << 4) | ((c) << 5))
#define G_OLD 64

#ifdef PINVER
/* a delete of node k's pin that timed out compares the mod revision of
 * the pin it meant: any write of the key makes it fail for good */
#define KEYBITS(p, k) (PIN(p, k) | (BIT(p, B_PINOLD + k) << 2) | (PV(p, k) << 3))
#define KILLDEL(k) if :: (ghost[k] & 7) == T_PINDEL && KEYBITS(np, k) != KEYBITS(SP, k) -> \
	ghost[k] = 0 :: else -> skip fi
#else
#define KILLDEL(k) skip
#endif

/* nm/np become etcd's state: one new revision (none if nothing changed) */
inline commit_ns()
{
	if
	:: nm != SM || np != SP ->
		chg = 1;
		FORN(KILLDEL);
#if K >= 3
		hm[3] = hm[2]; hp[3] = hp[2];
#endif
#if K >= 2
		hm[2] = hm[1]; hp[2] = hp[1];
#endif
		hm[1] = hm[0]; hp[1] = hp[0];
		SM = nm; SP = np;
		FORN(LAG_INC);
		assert(PINSET(SP) != 3);    /* doc/ring.md §3: one host per user */
		tidy()
	:: else -> skip
	fi
}

/* ---- node n applies what etcd says (watch events, or a full read) -------- */

/* the director counts a pin key gone (director_user_remote_pin / own_pin) */
inline pin_drop(n, hh)
{
	SETPIN(xp, hh, 0);
	if
	:: hh == n && pown[n] ->
		pown[n] = 0; own[n] = 0
	:: else ->
		/* the last pin gone: follow the hash, unless this node has
		 * sessions, its own pin or a move of the user */
		if
		:: rec[n] && RPINS(n, xp) == 0 && sess[n] == 0 && !own[n] && !dm && !rel[n] ->
			rec[n] = 0; loc[n] = 0
		:: else -> skip
		fi
	fi
}

/* ... and a pin key new to its map (a key written again changes nothing) */
inline pin_add(n, hh, val, isold)
{
	SETPIN(xp, hh, val + 1);
	if
	:: hh == n && !(isold) ->
		pown[n] = 1;
#ifdef FIX_RELEASE
		if :: !rel[n] || !reldone[n] -> myver[n] = PV(np, n) :: else -> skip fi;
#endif
#ifdef FIX_OWNREC
		/* P4's fix: its own pin, even one it does not remember
		 * writing, holds the user here too */
		if :: !rec[n] -> rec[n] = 1; rhost[n] = val :: else -> skip fi;
#endif
		if :: rec[n] && !rel[n] -> own[n] = 1 :: else -> skip fi
	:: else ->
		if
		:: !rec[n] -> rec[n] = 1; rhost[n] = val
		:: rec[n] && !dm -> rhost[n] = val  /* the ring is right */
		:: else -> skip
		fi
	fi
}

#ifdef FIX_REAPPLY
/* P5's fix: a key written again with another host or lease is taken
 * back and applied again */
#define KCHG(hh) (PIN(op, hh) != PIN(np, hh) || \
	((hh) < N && BIT(op, B_PINOLD + (hh)) != BIT(np, B_PINOLD + (hh))))
#else
#define KCHG(hh) 0
#endif
/* a key gone, new, or (only with FIX_REAPPLY) written again changed */
#define PDROP(n, hh, c) if :: PIN(op, hh) != 0 && ((!(c) && PIN(np, hh) == 0) || ((c) && KCHG(hh))) -> \
	pin_drop(n, hh) :: else -> skip fi
#define PADD(n, hh, c) if :: PIN(np, hh) != 0 && ((!(c) && PIN(op, hh) == 0) || ((c) && KCHG(hh))) -> \
	pin_add(n, hh, PIN(np, hh) - 1, ((hh) < N && BIT(np, B_PINOLD + (hh)))) :: else -> skip fi
#if N == 2
#define PDROPS(n, c) PDROP(n, 0, c); PDROP(n, 1, c); PDROP(n, 2, c)
#define PADDS(n, c) PADD(n, 0, c); PADD(n, 1, c); PADD(n, 2, c)
#else
#define PDROPS(n, c) PDROP(n, 0, c); PDROP(n, 1, c); PDROP(n, 2, c); PDROP(n, 3, c)
#define PADDS(n, c) PADD(n, 0, c); PADD(n, 1, c); PADD(n, 2, c); PADD(n, 3, c)
#endif

/* director_user_move_hold: every node holds the user's logins, records it
 * on the target and closes its sessions (they end later: the duty
 * process; the ack waits for that) */
inline move_hold(n)
{
	dm = 1; mid[n] = BIT(nm, B_MVID); mtg[n] = BIT(nm, B_MVT);
	rec[n] = 1; rhost[n] = mtg[n]
}

/*
 * Node n goes from its view (vm, vp) to (nm, np), as the code's handlers
 * see the keys: ld is a full read (ring_state_load: members, moves,
 * then the rest in key order; pins not read again dropped last), else
 * the events of one transaction in its operations' order.
 */
inline absorb(n)
{
	om = vm[n]; op = vp[n]; xp = op; dm = BIT(om, B_MV);
	if
	:: ld ->
		/* a move new to it is held; a move it knew under the same key
		 * stays the one it knew (ring_moves_apply: "seen") */
		if
		:: BIT(nm, B_MV) && !dm -> move_hold(n)
#ifdef FIX_MOVEID
		/* M1's fix: another move under the same key: the one it knew
		 * is over, this one is held */
		:: BIT(nm, B_MV) && dm && mid[n] != BIT(nm, B_MVID) -> move_hold(n)
#endif
		:: else -> skip
		fi;
		/* ring_change_proposed(NULL), then P/hostchange and P/hosts:
		 * the rings are committed, prepared again at the next settle */
		cprep[n] = 0; dprep[n] = 0;
		PDROPS(n, 1); PADDS(n, 1);
		PADDS(n, 0);
		if :: !BIT(nm, B_MV) && dm -> dm = 0 :: else -> skip fi;
		PDROPS(n, 0)
	:: else ->
		if :: BIT(om, B_HOSTS) != BIT(nm, B_HOSTS) -> dprep[n] = 0 :: else -> skip fi;
		if
		:: BIT(om, B_HC) != BIT(nm, B_HC) || BIT(om, B_HCID) != BIT(nm, B_HCID) ->
			if :: cprep[n] -> dprep[n] = 0 :: else -> skip fi;
			cprep[n] = 0
		:: else -> skip
		fi;
		PDROPS(n, 0); PDROPS(n, 1);
		PADDS(n, 0); PADDS(n, 1);
		if
		:: BIT(nm, B_MV) && !dm -> move_hold(n)
		:: !BIT(nm, B_MV) && dm -> dm = 0      /* ring_move_end: logins go on */
		:: else -> skip
		fi
	fi;
	vm[n] = nm; vp[n] = np; CLEAR_TRIED(n)
}

/* ---- requests -------------------------------------------------------------- */

/* node n's pin put on its current (or older) lease */
#ifdef PINVER
#define PUTPIN(n, val, o) SETPIN(np, n, (val) + 1); SETB(np, B_PINOLD + n, o); \
	np = (np & ~(3 << (B_PINV + 2 * (n)))) | (((PV(np, n) + 1) & 3) << (B_PINV + 2 * (n))); \
	if :: !gx -> myver[n] = PV(np, n) :: else -> skip fi
#else
#define PUTPIN(n, val, o) SETPIN(np, n, (val) + 1); SETB(np, B_PINOLD + n, o)
#endif
#define KBIT(n, k, o) kold[n] = ((o) -> (kold[n] | (k)) : (kold[n] & ~(k)))

/*
 * etcd runs request gg of node n now: one atomic transaction, one inline
 * per kind of request (X_...).  ok: it committed (or found what it
 * needed).  A put with a lease fails once that lease is gone; h: the
 * request's lease became the node's older one.
 */
inline x_begin(n, gg)
{
	h = ((gg) >> 6) & 1;
	ok = (!LEASED((gg) & 7) || (h && ol[n]) || (!h && la[n]));
	nm = SM; np = SP
}

/* ring_change_prepare: the pin and the ack, plain puts */
inline X_PREP(n, gg)
{
	x_begin(n, gg);
#ifdef FIX_HCPIN
	/* P3's fix: compare that the change is still in flight and that
	 * the pin changes no node's routing now: the user's pins name the
	 * same host, or there are none and its hash does */
	ok = ok && BIT(SM, B_HC) && BIT(SM, B_HCID) == BIT(gg, 5) &&
		(!BIT(gg, 4) || PINSET(SP) == (1 << BIT(gg, 3)) ||
		 (PINSET(SP) == 0 && BIT(SM, B_HOSTS) == BIT(gg, 3)));
#endif
	if
	:: ok ->
		if :: BIT(gg, 4) -> PUTPIN(n, BIT(gg, 3), h) :: else -> skip fi;
		SETB(nm, B_HCACK + n, 1); SETB(nm, B_HCAV + n, BIT(gg, 5));
		KBIT(n, K_HCACK, h)
	:: else -> skip
	fi;
	commit_ns()
}

/* ring_move_ack: a plain put */
inline X_MVACK(n, gg)
{
	x_begin(n, gg);
	if
	:: ok ->
		SETB(nm, B_MVACK + n, 1); SETB(nm, B_MVAV + n, BIT(gg, 5));
		KBIT(n, K_MVACK, h)
	:: else -> skip
	fi;
	commit_ns()
}

/* ring_pin_read + ring_pin_taken: a pin other than its own (on its
 * lease) still there: its own, with that one's value */
inline X_TAKE(n, gg)
{
	x_begin(n, gg);
	v = 0;
	if :: PIN(SP, MOVEPIN) != 0 -> v = PIN(SP, MOVEPIN) :: else -> skip fi;
	if :: PIN(SP, 0) != 0 && (n != 0 || BIT(SP, B_PINOLD + 0)) -> v = PIN(SP, 0) :: else -> skip fi;
	if :: PIN(SP, 1) != 0 && (n != 1 || BIT(SP, B_PINOLD + 1)) -> v = PIN(SP, 1) :: else -> skip fi;
#if N == 3
	if :: PIN(SP, 2) != 0 && (n != 2 || BIT(SP, B_PINOLD + 2)) -> v = PIN(SP, 2) :: else -> skip fi;
#endif
#ifdef FIX_TAKE
	/* P2's fix: only a pin naming the host the login goes to */
	ok = ok && v != 0 && v - 1 == rhost[n];
#else
	ok = ok && v != 0;
#endif
	if :: ok -> PUTPIN(n, v - 1, h) :: else -> skip fi;
	commit_ns()
}

inline X_PINDEL(n, gg)
{
	x_begin(n, gg);
#ifdef FIX_RELEASE
	/* P1's fix: only the version of its pin it knows */
	ok = PIN(SP, n) != 0 && PV(SP, n) == (((gg) >> 3) & 3);
	if :: ok -> SETPIN(np, n, 0); SETB(np, B_PINOLD + n, 0) :: else -> skip fi;
#else
	/* ring_pin_forgotten: a plain delete of its key */
	SETPIN(np, n, 0); SETB(np, B_PINOLD + n, 0);
#endif
	commit_ns()
}

/* ring_change_commit: compare P/hostchange's revision; P/hosts, the
 * change and its acks */
inline X_COMMIT(n, gg)
{
	x_begin(n, gg);
	ok = BIT(SM, B_HC) && BIT(SM, B_HCID) == BIT(gg, 5);
	if
	:: ok -> nm = (nm ^ (1 << B_HOSTS)) & ~(1 << B_HC) & ~HCACKS
	:: else -> skip
	fi;
	commit_ns()
}

/* ring_move_lease_granted: compare the move's revision; the user's pins
 * go, @move names the target, the move and its acks go */
inline X_FINISH(n, gg)
{
	x_begin(n, gg);
	ok = BIT(SM, B_MV) && BIT(SM, B_MVID) == BIT(gg, 5);
	if
	:: ok ->
		np = np & (((1 << (2 * N)) - 1) << B_PINV);  /* (versions stay) */
		SETPIN(np, MOVEPIN, BIT(gg, 3) + 1);
		nm = nm & ~(1 << B_MV) & ~MVACKS
	:: else -> skip
	fi;
	commit_ns()
}

/* any of them: a request that timed out, running late */
inline exec(n, gg)
{
	t = (gg) & 7;
	if
	:: t == T_PREP -> X_PREP(n, gg)
	:: t == T_MVACK -> X_MVACK(n, gg)
	:: t == T_TAKE -> X_TAKE(n, gg)
	:: t == T_PINDEL -> X_PINDEL(n, gg)
	:: t == T_COMMIT -> X_COMMIT(n, gg)
	:: t == T_FINISH -> X_FINISH(n, gg)
	fi
}

/* node n sends request g of kind X: etcd runs it now, or it times out
 * (to) and may run at any later time (macros: X names an inline) */
#define send(n, X) \
	if \
	:: X(n, g) \
	:: nghost < MAXGHOST && ghost[n] == 0 -> \
		printf("MSC: node %d: request %d times out\n", n, g & 7); \
		ghost[n] = g; nghost++; ok = 0; to = 1 \
	fi

/* a duty's request; one that changed nothing waits for news */
#define dsend(n, X) \
	send(n, X); \
	if :: !to && !chg -> SET_TRIED(n, g & 7) :: else -> skip fi

/* ring_change_prepare: prepare the rings; pin the user if it has a
 * record and is not being moved (it would move: always, here); the pin
 * and the ack in one transaction of plain puts */
inline prepare(n)
{
	printf("MSC: node %d: prepares the host change (pins the user: %d), acks\n", n,
	       rec[n] && loc[n] && !DMOVE(n));
	dprep[n] = 1;
	v = 0;
#ifdef FIX_HCPIN
	if :: rec[n] && loc[n] && !DMOVE(n) -> v = 1 :: else -> skip fi;
#else
	/* ring_pins_collect_one: its own pin is counted at once */
	if :: rec[n] && loc[n] && !DMOVE(n) -> v = 1; own[n] = 1 :: else -> skip fi;
#endif
	g = G(T_PREP, rhost[n], v, BIT(vm[n], B_HCID));
	dsend(n, X_PREP);
#ifdef FIX_HCPIN
	/* ... only once it is written */
	if :: ok && v -> own[n] = 1; rel[n] = 0; reldone[n] = 0 :: else -> skip fi;
#endif
	cprep[n] = ok
}

/* ring_change_settle, as far as it runs with the events that called it:
 * the host change is prepared at once (the acks and commits it sends
 * are requests like any other: the duty process) */
inline settle(n)
{
	if
	:: SERVING(n) && BIT(vm[n], B_HC) && !cprep[n] -> prepare(n)
	:: else -> skip
	fi
}

/* FIX_RELEASE: its watch has reached the deletion: the record goes
 * unless something else holds it */
inline release_end(n)
{
	if
	:: rel[n] && reldone[n] && relat[n] == 0 ->
		rel[n] = 0; reldone[n] = 0;
		if
		:: pown[n] ->
			/* a newer write of its pin (one that timed out) is there:
			 * it holds the user again */
			own[n] = 1; myver[n] = PV(vp[n], n)
		:: !pown[n] && RPINS(n, vp[n]) == 0 && sess[n] == 0 && !DMOVE(n) -> rec[n] = 0; loc[n] = 0
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* a session of the user opens on node n, on backend v */
inline open(n)
{
	sess[n] = sess[n] | (1 << v); loc[n] = 1;
	printf("MSC: node %d: session on backend %d\n", n, v);
	assert(ALLSESS != 3)    /* never on two backends */
}

/* ---- leases ------------------------------------------------------------------- */

/* etcd deletes node n's keys on its older (o = 1) or current lease */
inline lease_gone(n, o)
{
	if :: MEMB(nm, n) && BIT(kold[n], 0) == o -> SETB(nm, B_MEM + n, 0) :: else -> skip fi;
	if :: BIT(nm, B_HCACK + n) && BIT(kold[n], 1) == o ->
		SETB(nm, B_HCACK + n, 0); SETB(nm, B_HCAV + n, 0) :: else -> skip fi;
	if :: BIT(nm, B_MVACK + n) && BIT(kold[n], 2) == o ->
		SETB(nm, B_MVACK + n, 0); SETB(nm, B_MVAV + n, 0) :: else -> skip fi;
	if :: PIN(np, n) != 0 && BIT(np, B_PINOLD + n) == o ->
		SETPIN(np, n, 0); SETB(np, B_PINOLD + n, 0) :: else -> skip fi;
	/* its requests on that lease can only fail now */
	if :: ghost[n] != 0 && LEASED(ghost[n] & 7) && BIT(ghost[n], 6) == o -> ghost[n] = 0
	:: else -> skip fi;
	if :: o -> ol[n] = 0; kold[n] = 0 :: else -> la[n] = 0 fi
}

/* node n takes a new lease (ring_lease_grant_start) and registers
 * (ring_register: P/members/<n> on it); a current lease still alive
 * becomes its older one, which nobody revokes (an even older one is let
 * expire here, as etcd may do any time) */
inline new_lease(n)
{
	if :: ol[n] -> lease_gone(n, 1) :: else -> skip fi;
	if
	:: la[n] ->
		ol[n] = 1; kold[n] = K_MEM | K_HCACK | K_MVACK;
		if :: PIN(np, n) != 0 -> SETB(np, B_PINOLD + n, 1) :: else -> skip fi;
		if :: ghost[n] != 0 && LEASED(ghost[n] & 7) -> ghost[n] = ghost[n] | G_OLD
		:: else -> skip fi
	:: else -> skip
	fi;
	la[n] = 1;
	SETB(nm, B_MEM + n, 1); KBIT(n, K_MEM, 0)
}

/* FIX_RELEASE: delete its own pin (until etcd answers); the record goes
 * once its watch shows the deletion, and its logins wait till then */
inline release(n)
{
	if
	:: CONN(n) && !reldone[n] ->
		printf("MSC: node %d: deletes its pin\n", n);
		g = G(T_PINDEL, myver[n] & 1, myver[n] >> 1, 0);
		dsend(n, X_PINDEL);
		/* answered: deleted, or its key is gone or newer (then its
		 * watch brings the newer one) */
		if :: !to -> reldone[n] = 1; relat[n] = lag[n] :: else -> skip fi
	:: else -> skip
	fi;
	release_end(n)
}

/* ---- the processes ----------------------------------------------------------- */

/* ring_watch_update: events in revision order; a compacted watch, a full
 * read (a process of its own: weak fairness delivers every event) */
proctype watch(byte n)
{
end:
	do
	:: atomic { CONN(n) && (ldreq[n] || lag[n] > 0) ->
		if
		:: ldreq[n] || lag[n] > K ->
			printf("MSC: node %d: reads the whole state\n", n);
			nm = SM; np = SP; ld = 1
		:: else ->
			printf("MSC: node %d: applies the next revision\n", n);
			nm = hm[lag[n] - 1]; np = hp[lag[n] - 1]; ld = 0
		fi;
		absorb(n);
		if
		:: ld ->
			/* ring_loaded: serving (again) */
			lag[n] = 0; relat[n] = 0; ldreq[n] = 0; fenced[n] = 0
		:: else ->
			lag[n]--;
			if :: relat[n] > 0 -> relat[n]-- :: else -> skip fi
		fi;
		tidy();
		release_end(n);
		settle(n);
		reset() }
	od
}

/* ring_change_settle, ring_moves_settle and the fence: what a node does
 * by itself, one process per node so that weak fairness makes it act */
proctype duty(byte n)
{
end:
	do
	/* ring_change_prepare again, a second after it failed */
	:: atomic { SERVING(n) && !TRIED(n, T_PREP) && BIT(vm[n], B_HC) && !cprep[n] ->
		prepare(n);
		reset() }

#ifdef FIX_RELEASE
	:: atomic { SERVING(n) && !TRIED(n, T_PINDEL) && rel[n] && !reldone[n] -> release(n); reset() }
#endif

	/* ring_change_commit: once every member it sees acknowledged */
	:: atomic { SERVING(n) && !TRIED(n, T_COMMIT) && BIT(vm[n], B_HC) && ALLHC(vm[n]) ->
		printf("MSC: node %d: commits the host change\n", n);
		g = G(T_COMMIT, 0, 0, BIT(vm[n], B_HCID));
		dsend(n, X_COMMIT);
		reset() }

	/* director_move_kill: the user's sessions close */
	:: atomic { RUNS(n) && DMOVE(n) && sess[n] != 0 ->
		printf("MSC: node %d: its sessions close for the move\n", n);
		sess[n] = 0; reset() }

	/* ring_move_ack: its sessions gone, it acks (with the id it knows) */
	:: atomic { SERVING(n) && !TRIED(n, T_MVACK) && DMOVE(n) &&
#ifndef BUG_EARLY_ACK
		sess[n] == 0 &&
#endif
		!MVACKED(vm[n], n, mid[n]) ->
		printf("MSC: node %d: acks move#%d\n", n, mid[n]);
		g = G(T_MVACK, 0, 0, mid[n]);
		dsend(n, X_MVACK);
		reset() }

	/* ring_move_finish: every member it sees acknowledged (after
	 * user_kick_delay and a lease for the pin) */
	:: atomic { SERVING(n) && !TRIED(n, T_FINISH) && DMOVE(n) && ALLMV(vm[n], mid[n]) ->
		printf("MSC: node %d: finishes the move\n", n);
		g = G(T_FINISH, mtg[n], 0, BIT(vm[n], B_MVID));
		dsend(n, X_FINISH);
		reset() }

#ifndef SERVE
	/* ring_lease_check: past its deadline a cut-off node fences: its
	 * proxied sessions closed, no logins (proxy_set_serving) */
	:: atomic { RUNS(n) && cut[n] && !fenced[n] ->
		printf("MSC: node %d: fenced\n", n);
		sess[n] = 0; fenced[n] = 1; reset() }
#endif
	od
}

/*
 * What happens to node n: logins, sessions ending, its record expiring;
 * crashes and restarts, partitions, leases ending, late requests.
 */
proctype env(byte n)
{
end:
	do
	/* a login: director_route */
	:: atomic { RUNS(n) && !fenced[n] ->
		if
		:: DMOVE(n) -> printf("MSC: node %d: a login waits for the move\n", n)
		:: !DMOVE(n) && rel[n] -> skip   /* FIX_RELEASE: waits for the delete */
		:: !DMOVE(n) && !rel[n] && rec[n] && RPINS(n, vp[n]) > 0 && !own[n] ->
			/* only others pin it: take a pin of its own first
			 * (the login waits; it goes on at a later try) */
			if
			:: CONN(n) ->
				printf("MSC: node %d: takes a pin of its own\n", n);
				g = G(T_TAKE, 0, 0, 0);
				send(n, X_TAKE);
				if :: ok -> own[n] = 1 :: else -> skip fi
			:: else -> skip
			fi
		:: !DMOVE(n) && !rel[n] && rec[n] && (RPINS(n, vp[n]) == 0 || own[n]) ->
			v = rhost[n]; open(n)
		:: !DMOVE(n) && !rel[n] && !rec[n] && dprep[n] -> skip  /* waits for the commit */
		:: !DMOVE(n) && !rel[n] && !rec[n] && !dprep[n] ->
			rec[n] = 1; rhost[n] = BIT(vm[n], B_HOSTS);
			v = rhost[n]; open(n)
		fi;
		reset() }

	/* the user logs out */
	:: atomic { sess[n] != 0 && !paused[n] ->
		printf("MSC: node %d: the user's sessions end\n", n);
		sess[n] = 0; reset() }

	/* user_directory_expire: idle for user_expire, the record goes; its
	 * own pin is deleted (ring_pin_forgotten: once, answer ignored) */
	:: atomic { RUNS(n) && rec[n] && !rel[n] && sess[n] == 0 && !DMOVE(n) &&
		    RPINS(n, vp[n]) == 0 ->
		printf("MSC: node %d: its record of the user expires\n", n);
#ifndef FIX_RELEASE
		rec[n] = 0; loc[n] = 0;
#endif
		if
		:: own[n] ->
			own[n] = 0;
#ifdef FIX_RELEASE
			rel[n] = 1;
			release(n)
#else
			if
			:: CONN(n) -> g = G(T_PINDEL, 0, 0, 0); send(n, X_PINDEL)
			:: else -> skip         /* etcd unreachable: lost */
			fi
#endif
		:: else -> rec[n] = 0; loc[n] = 0
		fi;
		reset() }

	/* loftd dies, its sessions with it; its lease lives on in etcd until
	 * it expires, its requests in flight may still run */
	:: atomic { alive[n] && ncrash < MAXCRASH ->
		printf("MSC: node %d: crashes\n", n);
		ncrash++;
		MAYBE_FOREVER;
		alive[n] = 0; cut[n] = 0; fenced[n] = 0; paused[n] = 0; ldreq[n] = 0;
		rec[n] = 0; loc[n] = 0; rhost[n] = 0; own[n] = 0; pown[n] = 0; rel[n] = 0; reldone[n] = 0; relat[n] = 0; myver[n] = 0; dprep[n] = 0; cprep[n] = 0;
		mid[n] = 0; mtg[n] = 0; sess[n] = 0; CLEAR_TRIED(n);
		lag[n] = 0; vm[n] = 0; vp[n] = 0;
		tidy(); reset() }

	/* loftd starts again: a new lease, its member key, a full read */
	:: atomic { !alive[n] && !FOREVER ->
		printf("MSC: node %d: starts again\n", n);
		nm = SM; np = SP;
		new_lease(n);
		commit_ns();
		alive[n] = 1; fenced[n] = 1; ldreq[n] = 1;
		reset() }

	/* cut off from etcd */
	:: atomic { RUNS(n) && !cut[n] && ncut < MAXCUT ->
		printf("MSC: node %d: cut off from etcd\n", n);
		ncut++; cut[n] = 1;
		MAYBE_FOREVER; reset() }

	/* etcd answers again (ring_keepalive_done): its lease alive, it
	 * reads everything again if it had fenced, else its watch goes on;
	 * its lease gone, a new lease and a full join */
	:: atomic { RUNS(n) && cut[n] && !FOREVER ->
		printf("MSC: node %d: reaches etcd again\n", n);
		cut[n] = 0;
		if
		:: la[n] && fenced[n] -> ldreq[n] = 1
		:: la[n] && !fenced[n] -> skip
		:: !la[n] ->
			nm = SM; np = SP;
			new_lease(n);
			commit_ns();
#ifdef FIX_REJOIN
			/* R1's fix: the ring went on without it; what it
			 * remembers of users is not the ring's */
			rec[n] = 0; loc[n] = 0; own[n] = 0; rel[n] = 0; reldone[n] = 0; relat[n] = 0; myver[n] = 0; pown[n] = 0; vp[n] = 0;
#endif
			fenced[n] = 1; ldreq[n] = 1
		fi;
		reset() }

	/* a node that ran on with its lease gone (after a pause): its next
	 * renewal says so; it fences and joins again */
	:: atomic { CONN(n) && !la[n] ->
		printf("MSC: node %d: its lease is gone\n", n);
		sess[n] = 0;
		nm = SM; np = SP;
		new_lease(n);
		commit_ns();
#ifdef FIX_REJOIN
		rec[n] = 0; loc[n] = 0; own[n] = 0; rel[n] = 0; reldone[n] = 0; relat[n] = 0; myver[n] = 0; pown[n] = 0; vp[n] = 0;
#endif
		fenced[n] = 1; ldreq[n] = 1;
		reset() }

#ifdef PAUSE
	/* SIGSTOP, SIGCONT */
	:: atomic { RUNS(n) && npause < MAXPAUSE ->
		printf("MSC: node %d: stopped (SIGSTOP)\n", n);
		npause++; paused[n] = 1; reset() }
	:: atomic { paused[n] ->
		printf("MSC: node %d: continues (SIGCONT)\n", n);
		paused[n] = 0; reset() }
#endif

	/* etcd expires its current lease: only once it is dead, or cut off
	 * and fenced (its deadline comes first) */
	:: atomic { la[n] && (!alive[n] || paused[n] || (cut[n] && fenced[n])
#ifdef SERVE
		|| cut[n]
#endif
		) ->
		printf("MSC: node %d: its lease expires\n", n);
		nm = SM; np = SP; lease_gone(n, 0);
		commit_ns(); reset() }

	/* its previous run's lease expires */
	:: atomic { ol[n] ->
		printf("MSC: node %d: its older lease expires\n", n);
		nm = SM; np = SP; lease_gone(n, 1);
		commit_ns(); reset() }

	/* a request that timed out runs now */
	:: atomic { ghost[n] != 0 ->
		printf("MSC: node %d: a timed-out request runs late\n", n);
		g = ghost[n]; ghost[n] = 0; gx = 1;
		exec(n, g);
		reset() }
	od
}

#define SEEN1(k) (!alive[k] || !la[k] || (CONN(k) && PIN(vp[k], MOVEPIN) != 0))
#if N == 2
#define MOVEPIN_SEEN (SEEN1(0) && SEEN1(1))
#else
#define MOVEPIN_SEEN (SEEN1(0) && SEEN1(1) && SEEN1(2))
#endif

/* admins, on any node, and the @move pin's lease */
proctype admin()
{
	byte a;
end:
	do
	/* ring_change_request: a host change that makes the user's hash
	 * point at the other backend; compare: P/hosts unchanged, no change
	 * in flight (moves in flight do not matter) */
	:: atomic { nhc < MAXHC && !BIT(SM, B_HC) ->
		printf("MSC: admin: host change\n");
		nm = SM | (1 << B_HC); SETB(nm, B_HCID, nhc & 1); np = SP;
		nhc++;
		commit_ns(); reset() }

	/* ring_move_request on node a, to backend v: refused while a sees a
	 * host change or a move of the user; answered at once if the user
	 * is there already (its record, else its hash); else create the
	 * move if no move and no host change exists */
	:: atomic { nmv < MAXMOVE && !BIT(SM, B_MV) && !BIT(SM, B_HC) ->
		if
		:: a = 0
		:: a = 1
#if N == 3
		:: a = 2
#endif
		fi;
		if :: v = 0 :: v = 1 fi;
		if
		:: CONN(a) && !fenced[a] && !BIT(vm[a], B_HC) && !DMOVE(a) &&
		   ((rec[a] && rhost[a] != v) || (!rec[a] && BIT(vm[a], B_HOSTS) != v)) ->
			printf("MSC: admin: move to backend %d on node %d\n", v, a);
			nm = SM | (1 << B_MV); SETB(nm, B_MVID, nmv & 1); SETB(nm, B_MVT, v);
			np = SP;
			nmv++;
			commit_ns()
		:: else -> skip
		fi;
		a = 0;
		reset() }

	/* the @move pin's lease (user_expire, minutes) ends, long after
	 * every node with a live lease has seen it: a watch lags by seconds
	 * at most, a node cut off fences within a lease TTL */
	:: atomic { PIN(SP, MOVEPIN) != 0 && MOVEPIN_SEEN ->
		printf("MSC: the move's pin expires\n");
		nm = SM; np = SP; SETPIN(np, MOVEPIN, 0);
		commit_ns(); reset() }
	od
}

init {
	atomic {
		byte i = 0;
		do
		:: i < N ->
			alive[i] = 1; la[i] = 1;
			SM = SM | (1 << (B_MEM + i));
			i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < N -> vm[i] = SM; i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < N -> run watch(i); run duty(i); run env(i); i++
		:: else -> break
		od;
		i = 0;
		run admin()
	}
}

/* liveness, under weak fairness (pan -a -f): check.sh picks one claim
 * with -DCLAIM_<name> (so that spin -t replays the same one) */
#define MVX BIT(hm[0], B_MV)
#define HCX BIT(hm[0], B_HC)
#if defined(CLAIM_move_finishes) || !defined(CLAIM_hostchange_commits)
ltl move_finishes { [] (MVX -> <> !MVX) }
#endif
#if defined(CLAIM_hostchange_commits) || !defined(CLAIM_move_finishes)
ltl hostchange_commits { [] (HCX -> <> !HCX) }
#endif
