package memberlist

import (
	"bytes"

	ml "github.com/hashicorp/memberlist"
)

// delegate connects memberlist to a Membership without putting
// memberlist's callbacks in the Membership API. memberlist calls the
// EventDelegate methods with its node lock held: they must not call back
// into memberlist, and they are the only place where reading the *ml.Node
// they get does not race.
type delegate struct {
	m *Membership
}

var (
	_ ml.Delegate      = delegate{}
	_ ml.EventDelegate = delegate{}
	_ ml.Broadcast     = (*broadcast)(nil)
)

// NodeMeta is our node meta: leavingMeta once Run leaves gracefully,
// else our interface sets without link (SetNoLink), if any.
func (d delegate) NodeMeta(limit int) []byte {
	if d.m.leaving.Load() {
		return bytes.Clone(leavingMeta)
	}
	if p := d.m.noLinkMeta.Load(); p != nil && len(*p) <= limit {
		return bytes.Clone(*p)
	}
	return nil
}

func (d delegate) NotifyMsg(b []byte) { d.m.handleMsg(b) }

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.queue.GetBroadcasts(overhead, limit)
}

func (d delegate) LocalState(bool) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	return d.m.table.localState()
}

func (d delegate) MergeRemoteState(b []byte, _ bool) { d.m.mergeRemote(b) }

func (d delegate) NotifyJoin(n *ml.Node) { d.m.memberUp(n) }

func (d delegate) NotifyLeave(n *ml.Node) { d.m.memberDown(n.Name, leftGracefully(n)) }

// leftGracefully reports whether n, reported gone by NotifyLeave, left
// rather than failed. memberlist knows (the leave is a dead message sent
// by the member itself) but, up to v0.5.4 at least, does not tell:
// NotifyLeave's Node.State stays StateAlive (hashicorp/memberlist#293).
// So a member leaving gracefully first sets its node meta to
// leavingMeta and waits until memberlist has gossiped that update, then
// leaves: the others normally get the update before the death. One that
// misses the update, or gets the death first (it then ignores the late
// update, which has the same incarnation), counts the leaver as failed:
// the safe side for a quorum. Node.State is honoured too, for a
// memberlist that sets it.
func leftGracefully(n *ml.Node) bool {
	return n.State == ml.StateLeft || bytes.Equal(n.Meta, leavingMeta)
}

func (d delegate) NotifyUpdate(n *ml.Node) { d.m.memberUpdated(n) }

// broadcast is a claims message in the gossip queue: our own, or one we
// relay. A whole record or a notice of a member replaces the queued
// messages about that member at the same or an older version; a delta
// replaces nothing (later deltas build on it).
type broadcast struct {
	node  string
	v     version
	delta bool
	msg   []byte
}

func (b *broadcast) Invalidates(other ml.Broadcast) bool {
	o, ok := other.(*broadcast)
	return ok && !b.delta && o.node == b.node && !b.v.less(o.v)
}

func (b *broadcast) Message() []byte { return b.msg }

func (*broadcast) Finished() {}
