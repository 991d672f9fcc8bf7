/*
 * failsafe.pml - a Promela model of ring.partition = "failsafe" (planned,
 * not in the code yet): the protocol doc/ring.md §13 specifies, checked
 * by spin (tests/model/check-failsafe.sh).
 *
 * One user, two backends (0 and 1), N directors (2 or 3), all listed in
 * P/directors (the peer set every node knows).  etcd is one linearizable
 * store; each step below is one atomic transaction on it, or one
 * node-to-node exchange.  The ring's own protocol (ring.pml, §2-§6) is
 * abstracted to what failsafe touches:
 *   - routing: a node's record of the user, else a pin in its view (a
 *     login takes a pin of its own against it, in etcd), else a prepared
 *     host change makes logins wait, else the hash of its view;
 *   - a host change (§4): every member pins its record's host and acks
 *     on its lease; any node commits once every member in etcd acked; the
 *     hash then points at the other backend;
 *   - a node's member key, ack and pin are on its lease, which etcd lets
 *     go only when the node is dead, or cut off from etcd past its
 *     deadline (the deadline comes first: §6, T1);
 *   - a node's view is a snapshot of some earlier etcd state (a full
 *     read), taken when it applies; ring.pml checks the watch's lag.
 *
 * Failsafe, as modelled (doc/ring.md §13 in words):
 *   past[n]     its fence deadline passed since its last renewal
 *   mode[n]     NORMAL, FAILSAFE (past its deadline, serving on its
 *               frozen view because every peer confirmed), FENCED
 *   conf[f]     bit c: f holds a valid confirmation from c ("c cannot
 *               reach etcd"), asked for while f is out of touch
 *   bind[c]     bit f: c gave f a confirmation that still binds c.
 *               Timing, as an ordering: a binding lapses only after the
 *               holder's copy lapsed (confirmation lifetime on the
 *               holder < binding on the confirmer, less drift and the
 *               answer's latency); the holder's copy lapsing fences it at
 *               once if it relies on it (a timer at the expiry, as the
 *               fence's).
 *   A node bound to anyone, or in FAILSAFE, is frozen: it routes on the
 *   view it had, applies nothing from etcd and writes nothing to etcd
 *   but its lease renewal (no ack, no commit, no pin).
 *
 * Configurations (-D at spin -a time):
 *   N                      directors (2, 3)
 *   MAXHC, MAXCUT, MAXISO, MAXCRASH   host changes; cuts from etcd; cuts
 *                          from the peers; crashes
 *   FENCE                  ring.partition = fence (the deadline fences)
 *   WITHOUT_ALLPEERS       failsafe on one peer's confirmation (N = 3)
 *   WITHOUT_BIND           a confirmation binds nobody: the confirmer, once
 *                          back in touch, reads etcd and writes at once
 *   WITHOUT_NORETURN       a node that fenced may go failsafe later
 *   WITHOUT_RESTARTWAIT    a restarted node forgets its bindings
 *   WITHOUT_RENEWED        a node back in touch keeps using confirmations
 *                          from before its renewal at its next deadline
 *   BIND_WRITES            bound nodes may ack and commit (not apply)
 *   BIND_READS             bound nodes may apply etcd's state (not write)
 *   ANY_CONFIRMS           a peer confirms even while it reaches etcd
 */

#ifndef N
#define N 2
#endif
#ifndef MAXHC
#define MAXHC 1
#endif
#ifndef MAXCUT
#define MAXCUT 3
#endif
#ifndef MAXISO
#define MAXISO 1
#endif
#ifndef MAXCRASH
#define MAXCRASH 0
#endif

#define NORMAL   0
#define FAILSAFE 1
#define FENCED   2

/* etcd */
bit e_hash;             /* P/hosts: the backend the user's hash names */
bit e_hc;               /* P/hostchange exists ... */
bit e_hcid;             /*   its id (which change) */
bit e_ack[N];           /* P/hostchange-ack/<n> (on n's lease) */
byte e_pin[N];          /* P/pins/.../<n>: 0 none, 1 backend 0, 2 backend 1 (lease) */
bit e_mem[N];           /* P/members/<n> (lease) */
bit la[N];              /* n's lease is alive in etcd */

/* each node */
bit alive[N];
bit cut[N];             /* cannot reach etcd */
bit iso[N];             /* cannot reach its peers */
bit past[N];            /* past its fence deadline since its last renewal */
byte mode[N];
byte conf[N];           /* bit c: holds c's confirmation */
byte bind[N];           /* bit f: bound by its confirmation to f */
/* its view (a snapshot of etcd) */
bit vh[N];
bit vhc[N];
bit vhcid[N];
byte vpin[N];           /* the host its view's pins name (0 none) */
/* its director */
bit rec[N];             /* a record of the user ... */
bit rhost[N];           /*   its host */
bit own[N];             /*   its own pin written */
bit dprep[N];           /* host change prepared (and acked) ... */
bit dprepid[N];         /*   which */
byte sess[N];           /* sessions: bit b = on backend b */

byte nhc, ncut, niso, ncrash;

#define OTHERS(n) (((1 << N) - 1) & ~(1 << (n)))
#define HAS(x, i) (((x) >> (i)) & 1)
#if N == 2
#define PSET (((e_pin[0] != 0) -> (1 << (e_pin[0] - 1)) : 0) | ((e_pin[1] != 0) -> (1 << (e_pin[1] - 1)) : 0))
#define ALLACK ((!e_mem[0] || e_ack[0]) && (!e_mem[1] || e_ack[1]))
#define ALLSESS (sess[0] | sess[1])
#define FORN(m) m(0); m(1)
#elif N == 3
#define PSET (((e_pin[0] != 0) -> (1 << (e_pin[0] - 1)) : 0) | ((e_pin[1] != 0) -> (1 << (e_pin[1] - 1)) : 0) | \
	((e_pin[2] != 0) -> (1 << (e_pin[2] - 1)) : 0))
#define ALLACK ((!e_mem[0] || e_ack[0]) && (!e_mem[1] || e_ack[1]) && (!e_mem[2] || e_ack[2]))
#define ALLSESS (sess[0] | sess[1] | sess[2])
#define FORN(m) m(0); m(1); m(2)
#else
#error N must be 2 or 3
#endif
/* the one host all pins name (§3), as a pin value: 0 none */
#define PHOST ((PSET == 0) -> 0 : ((PSET == 1) -> 1 : 2))

/* frozen: routes on its view, applies nothing, writes nothing */
#ifdef WITHOUT_BIND
#define BOUND(n) 0
#else
#define BOUND(n) (bind[n] != 0)
#endif
#define INTOUCH(n) (alive[n] && !cut[n] && la[n] && !past[n])
/* may apply etcd's state and write to it (the ring's normal life) */
#define ACTIVE(n) (INTOUCH(n) && mode[n] == NORMAL && !BOUND(n))
#ifdef BIND_WRITES
#define WRITER(n) (INTOUCH(n) && mode[n] == NORMAL)
#else
#define WRITER(n) ACTIVE(n)
#endif
#ifdef BIND_READS
#define READER(n) (INTOUCH(n) && mode[n] == NORMAL)
#else
#define READER(n) ACTIVE(n)
#endif
#define TALK(a, b) (alive[a] && alive[b] && !iso[a] && !iso[b])
/* the confirmation's condition on the confirmer: it cannot reach etcd */
#ifdef ANY_CONFIRMS
#define CANNOT(c) 1
#else
#define CANNOT(c) cut[c]
#endif
#ifdef WITHOUT_ALLPEERS
#define CONFIRMED(n) (conf[n] != 0)
#else
#define CONFIRMED(n) (conf[n] == OTHERS(n))
#endif

#define SHOW(k) printf("ST n%d alive%d cut%d iso%d past%d mode%d conf%d bind%d la%d view(h%d hc%d pin%d) rec%d@%d own%d prep%d sess%d\n", \
	k, alive[k], cut[k], iso[k], past[k], mode[k], conf[k], bind[k], la[k], vh[k], vhc[k], vpin[k], \
	rec[k], rhost[k], own[k], dprep[k], sess[k])
inline show_state()
{
	printf("ST etcd hash%d hc%d/%d pins%d\n", e_hash, e_hc, e_hcid, PSET);
	FORN(SHOW)
}

/* node n reads the whole state: its view is etcd's now */
inline apply(n)
{
	vh[n] = e_hash; vhc[n] = e_hc; vhcid[n] = e_hcid;
	assert(PSET != 3);      /* §3: all pins name one host */
	vpin[n] = PHOST;
	if :: !(vhc[n] && dprepid[n] == vhcid[n]) -> dprep[n] = 0 :: else -> skip fi
}

inline open(n, b)
{
	printf("MSC: n%d: session on backend %d\n", n, b);
	sess[n] = sess[n] | (1 << (b));
	assert(ALLSESS != 3)    /* never on two backends */
}

/* close its sessions, serve nothing */
inline fence(n)
{
	printf("MSC: n%d: fences\n", n);
	mode[n] = FENCED; sess[n] = 0
}

/* the user, the admins and the network, around node n */
proctype env(byte n)
{
end:
	do
	/* a login (director_route), wherever the node serves */
	:: atomic { alive[n] && mode[n] != FENCED ->
		if
		:: rec[n] -> open(n, rhost[n])
		:: !rec[n] && vpin[n] != 0 ->
			/* take a pin of its own against one naming the same
			 * host (§3, P2's fix); only a node that writes */
			if
			:: WRITER(n) && la[n] && PSET == (1 << (vpin[n] - 1)) ->
				e_pin[n] = vpin[n]; own[n] = 1;
				rec[n] = 1; rhost[n] = vpin[n] - 1;
				open(n, rhost[n])
			:: else -> skip         /* waits */
			fi
		:: !rec[n] && vpin[n] == 0 && vhc[n] && dprep[n] -> skip  /* waits */
		:: !rec[n] && vpin[n] == 0 && !(vhc[n] && dprep[n]) ->
			rec[n] = 1; rhost[n] = vh[n];
			open(n, rhost[n])
		fi }

	:: atomic { sess[n] != 0 -> printf("MSC: n%d: the user logs out\n", n); sess[n] = 0 }

	/* the record expires; its own pin is deleted first, and the node
	 * forgets the user once its view shows that (P1's fix) */
	:: atomic { rec[n] && sess[n] == 0 && !own[n] -> rec[n] = 0 }
	:: atomic { rec[n] && sess[n] == 0 && own[n] && ACTIVE(n) ->
		printf("MSC: n%d: its record expires, its pin goes\n", n);
		e_pin[n] = 0; own[n] = 0; rec[n] = 0; apply(n) }

	/* cut off from etcd, and back */
	:: atomic { alive[n] && !cut[n] && ncut < MAXCUT ->
		printf("MSC: n%d: cut off from etcd\n", n); ncut++; cut[n] = 1 }
	:: atomic { cut[n] ->
		printf("MSC: n%d: reaches etcd again\n", n);
		cut[n] = 0;
		if
		:: la[n] ->
			/* a renewal succeeds: a new deadline; confirmations
			 * count only from its next loss of touch; serving on
			 * its lease again (frozen while bound) */
			past[n] = 0;
#ifndef WITHOUT_RENEWED
			conf[n] = 0;
#endif
			if :: mode[n] == FAILSAFE -> mode[n] = NORMAL :: else -> skip fi
		:: else -> skip
		fi }

	/* cut off from its peers, and back */
	:: atomic { alive[n] && !iso[n] && niso < MAXISO ->
		printf("MSC: n%d: cut off from its peers\n", n); niso++; iso[n] = 1 }
	:: atomic { iso[n] -> printf("MSC: n%d: reaches its peers again\n", n); iso[n] = 0 }

	/* loftd dies; a restarted one waits out the bindings its previous
	 * run may have given (they stay here) */
	:: atomic { alive[n] && ncrash < MAXCRASH ->
		printf("MSC: n%d: crashes\n", n);
		ncrash++;
		alive[n] = 0; cut[n] = 0; iso[n] = 0; past[n] = 0; mode[n] = NORMAL; conf[n] = 0;
#ifdef WITHOUT_RESTARTWAIT
		bind[n] = 0;
#endif
		rec[n] = 0; rhost[n] = 0; own[n] = 0; dprep[n] = 0; dprepid[n] = 0; sess[n] = 0;
		vh[n] = 0; vhc[n] = 0; vhcid[n] = 0; vpin[n] = 0 }
	/* ... and starts again once its old lease is gone (a simplification:
	 * ring.pml has both leases): a new lease, serving after a read */
	:: atomic { !alive[n] && !la[n] ->
		printf("MSC: n%d: starts again\n", n);
		alive[n] = 1; la[n] = 1; e_mem[n] = 1; mode[n] = FENCED }

	/* etcd lets its lease go: dead, or cut off past its deadline */
	:: atomic { la[n] && (!alive[n] || (cut[n] && past[n])) ->
		printf("MSC: n%d: its lease expires\n", n);
		la[n] = 0; e_mem[n] = 0; e_ack[n] = 0; e_pin[n] = 0 }
	od
}

/* what the node's ring does by itself */
proctype ring(byte n)
{
end:
	do
	/* the watch: its view catches up */
	:: atomic { READER(n) &&
		    (vh[n] != e_hash || vhc[n] != e_hc || vhcid[n] != e_hcid || vpin[n] != PHOST) ->
		apply(n) }

	/* ring_change_prepare: pin its record's host, ack (one
	 * transaction comparing that the change is in flight and the pin
	 * moves nobody: P3's fix) */
	:: atomic { WRITER(n) && vhc[n] && !(dprep[n] && dprepid[n] == vhcid[n]) ->
		if
		:: e_hc && e_hcid == vhcid[n] &&
		   (!rec[n] || PSET == (1 << rhost[n]) || (PSET == 0 && e_hash == rhost[n])) ->
			printf("MSC: n%d: prepares the host change (pins: %d), acks\n", n, rec[n]);
			if :: rec[n] -> e_pin[n] = rhost[n] + 1; own[n] = 1 :: else -> skip fi;
			e_ack[n] = 1; dprep[n] = 1; dprepid[n] = vhcid[n]
		:: else -> skip
		fi }

	/* ring_change_commit: every member acked */
	:: atomic { WRITER(n) && vhc[n] && e_hc && e_hcid == vhcid[n] && ALLACK ->
		printf("MSC: n%d: commits the host change\n", n);
		e_hash = 1 - e_hash; e_hc = 0;
		e_ack[0] = 0; e_ack[1] = 0;
#if N == 3
		e_ack[2] = 0;
#endif
		skip }

	/* the fence deadline: failsafe if every peer confirmed since it
	 * lost touch, else fence */
	:: atomic { alive[n] && cut[n] && !past[n] ->
		past[n] = 1;
		if
#ifdef FENCE
		:: mode[n] != FENCED -> fence(n)
#else
		:: mode[n] != FENCED && CONFIRMED(n) ->
			printf("MSC: n%d: past its deadline: failsafe\n", n);
			mode[n] = FAILSAFE
		:: mode[n] != FENCED && !CONFIRMED(n) -> fence(n)
#endif
		:: else -> skip
		fi }

#ifdef WITHOUT_NORETURN
	/* a fenced node goes failsafe after all, on its old view */
	:: atomic { mode[n] == FENCED && alive[n] && past[n] && CONFIRMED(n) ->
		printf("MSC: n%d: fenced, goes failsafe\n", n);
		mode[n] = FAILSAFE }
#endif

	/* back in touch but its lease gone: it fences (its sessions'
	 * pins are gone) ... */
	:: atomic { mode[n] == FAILSAFE && alive[n] && !cut[n] && !la[n] -> fence(n) }

	/* ... and, bound to nobody, joins again: a new lease if it lost
	 * its own (its records forgotten: R1), a full read, serving */
	:: atomic { mode[n] == FENCED && alive[n] && !cut[n] && !BOUND(n) ->
		printf("MSC: n%d: reads the ring again, serves\n", n);
		if
		:: !la[n] ->
			la[n] = 1; e_mem[n] = 1;
			rec[n] = 0; own[n] = 0; dprep[n] = 0
		:: else -> skip
		fi;
		past[n] = 0; conf[n] = 0; mode[n] = NORMAL;
		apply(n) }
	od
}

/* node n's exchanges with its peers, and their timers */
proctype peers(byte n)
{
	byte c;
end:
	do
	/* out of touch (before its deadline, or serving failsafe), it
	 * asks peer c; c confirms if it cannot reach etcd either, and is
	 * bound by it */
	:: atomic { alive[n] && cut[n] &&
#ifndef WITHOUT_NORETURN
		    mode[n] != FENCED &&
#endif
		    conf[n] != OTHERS(n) ->
		if
		:: c = 0
		:: c = 1
#if N == 3
		:: c = 2
#endif
		fi;
		if
		:: c != n && !HAS(conf[n], c) && TALK(n, c) && CANNOT(c) ->
			printf("MSC: n%d: n%d confirms\n", n, c);
			conf[n] = conf[n] | (1 << c);
			bind[c] = bind[c] | (1 << n)
		:: else -> skip
		fi;
		c = 0 }

	/* a confirmation it holds lapses (not renewed in time): it fences
	 * at once if it serves failsafe on it */
	:: atomic { conf[n] != 0 ->
		if
		:: c = 0
		:: c = 1
#if N == 3
		:: c = 2
#endif
		fi;
		if
		:: HAS(conf[n], c) ->
			printf("MSC: n%d: n%d's confirmation lapses\n", n, c);
			conf[n] = conf[n] & ~(1 << c);
			if :: mode[n] == FAILSAFE -> fence(n) :: else -> skip fi
		:: else -> skip
		fi;
		c = 0 }

	/* a binding lapses, after the holder's copy did */
	:: atomic { bind[n] != 0 ->
		if
		:: c = 0
		:: c = 1
#if N == 3
		:: c = 2
#endif
		fi;
		if
		:: HAS(bind[n], c) && !HAS(conf[c], n) ->
			printf("MSC: n%d: its binding to n%d lapses\n", n, c);
			bind[n] = bind[n] & ~(1 << c)
		:: else -> skip
		fi;
		c = 0 }

	/* back in touch, its lease alive: it tells peer c, which is no
	 * longer bound by what it confirmed to n before */
	:: atomic { INTOUCH(n) ->
		if
		:: c = 0
		:: c = 1
#if N == 3
		:: c = 2
#endif
		fi;
		if
		:: c != n && HAS(bind[c], n) && TALK(n, c) ->
			printf("MSC: n%d: tells n%d it is in touch\n", n, c);
			bind[c] = bind[c] & ~(1 << n)
		:: else -> skip
		fi;
		c = 0 }
	od
}

/* the admin: a host change that moves the user's hash */
active proctype admin()
{
end:
	do
	:: atomic { nhc < MAXHC && !e_hc ->
		printf("MSC: admin: host change\n");
		e_hc = 1; e_hcid = nhc & 1; nhc++ }
	od
}

init {
	atomic {
		byte i = 0;
		do
		:: i < N ->
			alive[i] = 1; la[i] = 1; e_mem[i] = 1;
			run env(i); run ring(i); run peers(i);
			i++
		:: else -> break
		od
	}
}
