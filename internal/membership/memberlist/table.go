package memberlist

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/internal/election"
)

// table is what one member knows about claims: its own claim set and the
// latest claim set of every other member, with the bookkeeping that
// decides which incoming data wins and when to pull a record from its
// owner. It does no I/O and is not safe for concurrent use (Membership
// holds its mutex around every call).
//
// Rules:
//   - A record (full, reply, push/pull) of a live member replaces ours when
//     its version is newer, or equal while ours is unknown (after the
//     member rejoined). Older versions lose.
//   - A delta applies only on top of exactly its base version.
//   - Data of members that are not live is not kept: only its version
//     stays, as a floor against stale gossip.
//   - A live member whose record is unknown, or older than a version heard
//     of, is pulled from the member itself: at once after a notice, after
//     pullDelay after a join or a delta gap (what is missing may still
//     arrive by push/pull or gossip), again every pullRetry while no
//     progress is made, and at once when progress leaves it still behind.
//   - A member seen live stays known (see known) until it leaves
//     gracefully; failing does not make it unknown, forgetting its
//     version floor neither.
type table struct {
	self string
	own  wireRecord
	recs map[string]*record
	// seen holds the members seen live that did not leave gracefully
	// since; self is not in it.
	seen      map[string]struct{}
	pullDelay time.Duration
	pullRetry time.Duration
	// state caches the encoded push/pull state; nil when stale.
	state []byte
}

// record is what the table knows about one other member.
type record struct {
	v      version          // version of claims; only a floor when !known
	claims []election.Claim // canonical; never modified in place
	known  bool             // claims holds the member's claims at v
	heard  version          // the newest version heard of, in any message
	live   bool

	dueAt  time.Time // when to pull; zero when not behind
	leftAt time.Time // when it stopped being live
}

// effect tells Membership what a table change calls for.
type effect struct {
	changed     bool // Members(), Known() or Claims() changed
	rebroadcast bool // the message carried a version new to us: pass it on
	behind      bool // a member fell behind: a pull is due soon
	reannounce  bool // our own record got a new version: announce it
}

func (e *effect) add(o effect) {
	e.changed = e.changed || o.changed
	e.rebroadcast = e.rebroadcast || o.rebroadcast
	e.behind = e.behind || o.behind
	e.reannounce = e.reannounce || o.reannounce
}

// forgetAfter is how long the version floor of a departed member is kept.
// Gossip about it is long gone by then.
const forgetAfter = 10 * time.Minute

func newTable(self string, epoch uint64, pullDelay, pullRetry time.Duration) *table {
	return &table{
		self:      self,
		own:       wireRecord{name: self, v: version{epoch: epoch}},
		recs:      make(map[string]*record),
		seen:      make(map[string]struct{}),
		pullDelay: pullDelay,
		pullRetry: pullRetry,
	}
}

func (t *table) get(name string) *record {
	r := t.recs[name]
	if r == nil {
		r = &record{}
		t.recs[name] = r
	}
	return r
}

// setOwn replaces our claim set (canonical) and returns the delta from the
// previous one; false when nothing changed (a changed epoch is a change).
func (t *table) setOwn(claims []election.Claim) (wireDelta, bool) {
	if slices.Equal(claims, t.own.claims) {
		return wireDelta{}, false
	}
	added, removed := diff(t.own.claims, claims)
	base := t.own.v.seq
	t.own.v.seq++
	t.own.claims = claims
	t.state = nil
	return wireDelta{name: t.self, base: base, v: t.own.v, added: added, removed: removed}, true
}

// seenOwn handles a version of our own name seen elsewhere: one newer
// than ours (an earlier process of ours whose clock ran ahead, or a
// member heard of it) makes us jump past it.
func (t *table) seenOwn(v version) effect {
	if !t.own.v.less(v) {
		return effect{} // our own message coming back, or an old one
	}
	t.own.v = version{epoch: v.epoch + 1}
	t.state = nil
	return effect{reannounce: true}
}

// hear records that version v of name exists.
func (r *record) hear(v version) bool {
	if r.heard.less(v) {
		r.heard = v
		return true
	}
	return false
}

// merge takes a whole record (gossiped full set, pull reply, push/pull).
func (t *table) merge(in wireRecord, now time.Time) effect {
	if in.name == "" {
		return effect{}
	}
	if in.name == t.self {
		return t.seenOwn(in.v)
	}
	r := t.get(in.name)
	e := effect{rebroadcast: r.hear(in.v)}
	switch {
	case r.live && (r.v.less(in.v) || r.v == in.v && !r.known):
		e.changed = !r.known || !slices.Equal(r.claims, in.claims)
		r.v, r.claims, r.known = in.v, in.claims, true
		t.state = nil
		r.dueAt = time.Time{} // progress: if still behind, pull again at once
		e.behind = t.check(r, now, 0)
		return e
	case !r.live && r.v.less(in.v):
		r.v = in.v
	}
	e.behind = t.check(r, now, t.pullDelay)
	return e
}

// applyDelta applies a gossiped delta when we hold exactly its base.
func (t *table) applyDelta(d wireDelta, now time.Time) effect {
	if d.name == "" {
		return effect{}
	}
	if d.name == t.self {
		return t.seenOwn(d.v)
	}
	r := t.get(d.name)
	e := effect{rebroadcast: r.hear(d.v)}
	if r.live && r.known && r.v == (version{epoch: d.v.epoch, seq: d.base}) {
		claims := patch(r.claims, d.added, d.removed)
		e.changed = !slices.Equal(claims, r.claims)
		r.v, r.claims = d.v, claims
		t.state = nil
	}
	e.behind = t.check(r, now, t.pullDelay)
	return e
}

// notice records that name's claims are at version v.
func (t *table) notice(name string, v version, now time.Time) effect {
	if name == "" {
		return effect{}
	}
	if name == t.self {
		return t.seenOwn(v)
	}
	r := t.get(name)
	e := effect{rebroadcast: r.hear(v)}
	e.behind = t.check(r, now, 0) // nothing else will bring it
	return e
}

// mergeState takes the records of a push/pull state.
func (t *table) mergeState(recs []wireRecord, now time.Time) effect {
	var e effect
	for _, r := range recs {
		e.add(t.merge(r, now))
	}
	e.rebroadcast = false // push/pull is point to point; nothing to pass on
	return e
}

// join marks name live (and known). Its claims are unknown until a
// record arrives.
func (t *table) join(name string, now time.Time) effect {
	if name == t.self || name == "" {
		return effect{}
	}
	r := t.get(name)
	if r.live {
		return effect{}
	}
	t.seen[name] = struct{}{}
	r.live = true
	r.leftAt = time.Time{}
	return effect{changed: true, behind: t.check(r, now, t.pullDelay)}
}

// leave marks name dead or gone and drops its claims. A member that left
// gracefully (left) is no longer known; one that failed still is.
func (t *table) leave(name string, left bool, now time.Time) effect {
	r := t.recs[name]
	if name == t.self || r == nil || !r.live {
		return effect{}
	}
	if left {
		delete(t.seen, name)
	}
	r.live, r.known, r.claims = false, false, nil
	r.dueAt = time.Time{}
	r.leftAt = now
	t.state = nil
	return effect{changed: true}
}

// leaveNotice handles name's word that it is leaving gracefully, sent
// at version v: unless it comes from an earlier process of name (v older
// than what we hold of it), name leaves.
func (t *table) leaveNotice(name string, v version, now time.Time) effect {
	r := t.recs[name]
	if name == t.self || r == nil || !r.live || v.less(r.v) {
		return effect{}
	}
	return t.leave(name, true, now)
}

// leaveAll marks every other member gone (we left the cluster); they
// stay known, they did not leave.
func (t *table) leaveAll(now time.Time) effect {
	var e effect
	for name := range t.recs {
		e.add(t.leave(name, false, now))
	}
	return e
}

func (r *record) needsPull() bool {
	return r.live && (!r.known || r.v.less(r.heard))
}

// check schedules a pull of r, delay from now, when it needs one and none
// is scheduled; it reports whether it did.
func (t *table) check(r *record, now time.Time, delay time.Duration) bool {
	if !r.needsPull() {
		r.dueAt = time.Time{}
		return false
	}
	if r.dueAt.IsZero() {
		r.dueAt = now.Add(delay)
		return true
	}
	return false
}

// pullsDue returns the members to pull from now, sorted, and when the
// next pull falls due (zero when none is pending). It also forgets
// members gone for longer than forgetAfter.
func (t *table) pullsDue(now time.Time) (names []string, next time.Time) {
	for name, r := range t.recs {
		if !r.live && !r.leftAt.IsZero() && now.Sub(r.leftAt) > forgetAfter {
			delete(t.recs, name)
			continue
		}
		if !r.needsPull() {
			r.dueAt = time.Time{}
			continue
		}
		if r.dueAt.IsZero() {
			r.dueAt = now.Add(t.pullDelay)
		}
		if !now.Before(r.dueAt) {
			names = append(names, name)
			r.dueAt = now.Add(t.pullRetry)
		}
		if next.IsZero() || r.dueAt.Before(next) {
			next = r.dueAt
		}
	}
	slices.Sort(names)
	return names, next
}

// heardOf returns the newest version of name we heard of.
func (t *table) heardOf(name string) version {
	if r := t.recs[name]; r != nil {
		return r.heard
	}
	return version{}
}

// members returns the live members, self included, sorted.
func (t *table) members() []string {
	out := []string{t.self}
	for name, r := range t.recs {
		if r.live {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// known returns the members seen live since the table was made that did
// not leave gracefully since (failed ones included), self included,
// sorted.
func (t *table) known() []string {
	out := make([]string, 0, len(t.seen)+1)
	out = append(out, t.self)
	for name := range t.seen {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// claims returns the non-empty claim sets of live members, self included.
// The slices are shared, never modified.
func (t *table) claims() map[string][]election.Claim {
	out := make(map[string][]election.Claim, len(t.recs)+1)
	if len(t.own.claims) > 0 {
		out[t.self] = t.own.claims
	}
	for name, r := range t.recs {
		if r.live && r.known && len(r.claims) > 0 {
			out[name] = r.claims
		}
	}
	return out
}

// localState returns the encoded push/pull state: our record and every
// known record of a live member.
func (t *table) localState() []byte {
	if t.state != nil {
		return t.state
	}
	recs := []wireRecord{t.own}
	for name, r := range t.recs {
		if r.live && r.known {
			recs = append(recs, wireRecord{name: name, v: r.v, claims: r.claims})
		}
	}
	slices.SortFunc(recs[1:], func(a, b wireRecord) int { return strings.Compare(a.name, b.name) })
	t.state = encodeState(t.self, recs)
	return t.state
}

// diff returns what to set in and remove from the canonical claims from
// to get the canonical claims to: added holds the claims of to that from
// lacks, a claim whose epoch changed included; removed the addresses of
// from that to lacks.
func diff(from, to []election.Claim) (added []election.Claim, removed []netip.Addr) {
	i, j := 0, 0
	for i < len(from) || j < len(to) {
		switch c := compareNext(from, i, to, j); {
		case c < 0:
			removed = append(removed, from[i].IP)
			i++
		case c > 0:
			added = append(added, to[j])
			j++
		default:
			if from[i].Epoch != to[j].Epoch {
				added = append(added, to[j])
			}
			i++
			j++
		}
	}
	return added, removed
}

// patch returns the canonical claims set without the addresses of
// removed and with the claims of added (replacing those of the same
// address); set is not modified.
func patch(set, added []election.Claim, removed []netip.Addr) []election.Claim {
	out := make([]election.Claim, 0, len(set)+len(added))
	i, j, k := 0, 0, 0
	for i < len(set) || j < len(added) {
		switch c := compareNext(set, i, added, j); {
		case c > 0:
			out = append(out, added[j])
			j++
			continue
		case c == 0:
			out = append(out, added[j])
			i++
			j++
			continue
		}
		a := set[i]
		i++
		for k < len(removed) && removed[k].Compare(a.IP) < 0 {
			k++
		}
		if k < len(removed) && removed[k] == a.IP {
			continue
		}
		out = append(out, a)
	}
	return out
}

// compareNext compares the addresses of x[i] and y[j] for a merge of
// the two sorted lists: an exhausted list compares after the other.
func compareNext(x []election.Claim, i int, y []election.Claim, j int) int {
	switch {
	case i == len(x):
		return 1
	case j == len(y):
		return -1
	}
	return x[i].IP.Compare(y[j].IP)
}
