// Package memberlist is Herald's speaker membership: the speakers form a
// hashicorp/memberlist cluster (each member named after its node) that
// tells every speaker which speakers are alive, and they gossip through it
// the IPs each one currently announces with the time it took each over
// (its claims, []election.Claim). The layer-2 election (package election)
// takes both as input. This is the only package that imports
// hashicorp/memberlist.
//
// New validates Options and starts nothing; Run(ctx) starts memberlist,
// joins the seeds and serves until ctx ends, then leaves gracefully (the
// others drop this member at once and take over its IPs) before shutting
// down. Members, Known, Claims, SetClaims, SetSeeds, Changes and Synced
// are safe for concurrent use at any time. Seeds known only after New (Node
// addresses once the caches synced) are passed with SetSeeds before Run.
//
// # Invariants
//
//   - Claims() holds only live members (self included): when memberlist
//     reports a member dead or gone, its claims are dropped at once. Each
//     claim is an IP and its claim epoch (election.Claim.Epoch, the Unix
//     milliseconds of the takeover), gossiped as the claimant set it; a
//     new epoch on a claimed IP is a change like any other.
//   - Known() holds the members seen live since this process started,
//     self included, less those that left gracefully: a member that
//     failed (crashed, frozen, cut off) stays known; one that comes back
//     is live again. See "Graceful leaves" below.
//   - Each member's claim set carries a version (epoch, seq), not to be
//     confused with the claim epochs: epoch is the start time of the
//     speaker process in Unix nanoseconds, seq counts the changes within
//     the process. A version older than the one held loses, whatever the
//     path it came by; so does any data of a member that is not live
//     (only its version is kept, as a floor). A member that hears of its
//     own name at a newer version (a previous process whose clock ran
//     ahead) moves its epoch past it.
//   - A member that (re)joins has unknown claims until its record arrives
//     (push/pull, gossip, or a pull): never the claims of an earlier life.
//   - Synced() becomes true once this member merged a push/pull state of
//     another member (joining does one, so a fresh joiner knows every
//     claim its seed knew), or it has no seed other than itself, or three
//     rounds of join attempts failed (it is alone). The speaker should not
//     take over IPs before.
//
// # Claims gossip
//
// Push/pull (LocalState/MergeRemoteState, TCP, every PushPullInterval and
// on every join) carries every known claim set: it is the anti-entropy
// that repairs anything lost. Changes go out at once as gossip broadcasts
// through a TransmitLimitedQueue (UDP, retransmitted to random members;
// receivers relay every message that carries a version new to them, so a
// change reaches everyone in O(log N) gossip rounds). A UDP packet holds
// about 1,400 bytes, so for each change SetClaims sends the first that
// fits in maxGossipMsg (1,000 bytes):
//
//  1. the whole claim set (idempotent; up to about 470 claims on a run of
//     IPv4 addresses taken over together, fewer when the addresses are
//     scattered or IPv6 or the claims were taken over at different
//     times);
//  2. else the delta from the previous version (claims added or
//     re-dated, addresses removed), applied only by members holding
//     exactly that previous version;
//  3. else a notice "my claims are at version v".
//
// A member that learns of a version it does not hold pulls the record
// from its owner over TCP (memberlist's reliable user messages): at once
// after a notice; after twice the gossip interval after a delta whose
// base it lacks or a member that joined (the missing delta, or the join's
// push/pull, may still bring it); again every second while no progress
// is made. The pull carries the newest version of the owner's name the
// puller heard of, so an owner whose epoch went backwards (clock stepped
// back across a restart) moves past it. A change of thousands of
// IPs (a failover onto this node) thus costs one tiny broadcast and one
// TCP round trip per member, instead of dozens of chunked packets, and
// arrives within a gossip round (10,000 claims reached two members in
// about 50 ms in TestLargeClaimSetsPropagate). Chunked deltas were
// rejected: reassembly state, loss of one chunk loses the change, and
// each chunk costs a gossip slot.
// Failover itself does not wait for claims: the survivors elect from the
// membership change alone; claims only keep owners sticky afterwards.
//
// Encoding (wire.go, format 2; format 1 had no claim epochs and is
// refused) is compact binary: a run of consecutive IPv4 addresses costs
// one byte each (delta-encoded uvarints), IPv6 addresses are front-coded
// (two bytes each in a run); each claim epoch follows as the zigzag varint
// of its difference to the previous one, one byte for claims taken over
// in the same millisecond (a failover), three to five for takeovers
// minutes to weeks apart. 10,000 IPv4 claims taken over together take
// about 20 KB, IPv6 ones about 30 KB; 10,000 IPv4 claims taken over at
// random times in a year about 62 KB (TestWireSizes).
//
// # Failure detection: the trade-off
//
// Defaults: ProbeInterval 200 ms, ProbeTimeout 100 ms, SuspicionMult 2,
// GossipInterval 50 ms, PushPullInterval 15 s, gossip to the dead for 3 s.
// memberlist's LAN defaults are 1 s / 500 ms / 4 / 200 ms / 30 s.
//
// A member that dies silently (crash, SIGKILL, SIGSTOP, power or link loss) is
// noticed when a probe fails: the probe waits ProbeTimeout for a direct
// ack, then asks up to three others to probe it indirectly (and tries
// TCP) until the end of the ProbeInterval; then the member is suspect for
// SuspicionMult x ProbeInterval x max(1, log10(N)) before it is declared
// dead, to give it time to refute. Measured on loopback with three
// members (TestSilentDeathTiming): median 0.75-0.77 s from the death to both
// survivors' NotifyLeave with these defaults; 0.95 s with SuspicionMult 3;
// 5.95 s with memberlist's LAN defaults (the figure MetalLB users see).
// A graceful leave is seen by the others at once: the leaver tells each of
// them in one UDP packet before memberlist's own leave (see below).
//
// The price of speed is false positives: a member that cannot answer a
// probe within ~200 ms and refute a suspicion within ~400 ms (CPU
// starvation, a long GC or stop-the-world pause, packet loss above a few
// percent, a saturated link) is declared dead. Its IPs then move to
// another node, and when it refutes (it learns it was declared dead
// from gossip, which goes to the dead for 3 s, or from push/pull) both
// claim them, the refuting member with the older epochs of its own
// takeovers; the election keeps each IP on the member that took it over
// last (the newest claim) and the refuting member stops announcing: one
// move instead of none. memberlist's Lifeguard extensions soften this: a
// member that misses its own acks raises its own probe timeouts
// (awareness), and with SuspicionMult >= 3 and more than three members
// the suspicion timeout starts higher and shrinks as other members
// confirm the suspicion. On busy or lossy networks raise
// ProbeInterval/ProbeTimeout and SuspicionMult (e.g. 500 ms / 250 ms / 4);
// failover time grows about linearly with them.
//
// Encryption: with SecretKey set every packet and stream is AES-GCM
// encrypted and unencrypted ones are refused; members with different keys
// cannot form a cluster.
//
// Partitions: memberlist stops talking to members declared dead after the
// gossip-to-the-dead window, so two halves of a healed partition would
// stay apart; Run therefore joins again, every ReconnectInterval, the
// seeds that are not live members. When the halves merge, both claim the
// IPs that moved; the election resolves each to one owner, the one that
// took it over last.
//
// Logging: memberlist's *log.Logger output is parsed and re-emitted on
// the logr.Logger of Options (errors as errors, WARN at V(0), INFO at
// V(1), DEBUG at V(2)); nothing goes to stderr.
//
// # Graceful leaves
//
// Known() tells a member that left (its speaker shut down: a rolling
// update, a drained node) from one that failed, so that a quorum over
// the known members shrinks when a member leaves but not when it
// disappears. memberlist knows the difference (a leave is a dead message
// sent by the member itself) but does not pass it on: the Node given to
// NotifyLeave always says StateAlive in v0.5.4 (hashicorp/memberlist#293).
// So Run, when ctx ends, first sets its node meta to "herald/leaving"
// (leavingMeta) and waits until memberlist has gossiped that update, then
// leaves; a member whose last meta says leaving is taken as left. A
// member that missed the update, or got the leave first, counts the
// leaver as failed: it stays known, the safe side for a quorum guard.
// A member killed silently (SIGKILL, crash, a test's abortSilently) stays
// known until this process restarts.
//
// Both steps wait for gossip rounds (about 150 ms in all), so before them
// Run sends every member a kindLeave message straight away (UDP, best
// effort): its receivers drop the leaver from Members and Known at once,
// unless the message is older than the leaver's record they hold (an
// earlier process of it). A lost packet costs only the gossip rounds.
//
// # Interfaces without link
//
// SetNoLink puts in the node meta the interface sets on which this member
// has no working link ("herald/nolink", then one set per line); memberlist
// gossips the update (UpdateNode, from a goroutine of its own: it waits
// for the broadcast) and the others read it with NoLink, with a change
// notification. The speakers leave such a member out of the candidates for
// the addresses answered on those sets, so a node whose VLAN or bond for
// the addresses fails hands them over although memberlist, over another
// interface, still sees it alive. A leaving member's meta is leavingMeta,
// which carries no sets: a leaver is gone anyway.
package memberlist
