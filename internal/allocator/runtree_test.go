package allocator

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// checkTree verifies the treap: in-order starts strictly increasing, heap
// order on priorities, node count, and the free list.
func checkTree(t *testing.T, tr *runTree) {
	t.Helper()
	seen := 0
	var walk func(i int32, lo, hi *u128)
	walk = func(i int32, lo, hi *u128) {
		if i == 0 {
			return
		}
		seen++
		n := tr.nodes[i]
		if (lo != nil && !lo.less(n.start)) || (hi != nil && !n.start.less(*hi)) {
			t.Fatalf("node %d start %v out of order", i, n.start)
		}
		for _, c := range []int32{n.left, n.right} {
			if c != 0 && tr.nodes[c].prio > n.prio {
				t.Fatalf("node %d: child %d has a higher priority", i, c)
			}
		}
		walk(n.left, lo, &n.start)
		walk(n.right, &n.start, hi)
	}
	walk(tr.root, nil, nil)
	if seen != tr.len() {
		t.Fatalf("%d nodes reachable, len %d", seen, tr.len())
	}
	free := 0
	for i := tr.free; i != 0; i = tr.nodes[i].left {
		free++
	}
	if len(tr.nodes) > 0 && seen+free != len(tr.nodes)-1 {
		t.Fatalf("%d reachable + %d free != %d nodes", seen, free, len(tr.nodes)-1)
	}
}

func TestRunTree(t *testing.T) {
	var tr runTree
	if tr.min() != 0 || tr.floor(u128{}) != 0 || tr.higher(u128{}) != 0 {
		t.Fatal("empty tree finds something")
	}
	var ref []u128 // sorted starts; each run is [s, s]
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 30000 {
		x := u128{hi: uint64(rnd.IntN(2)), lo: uint64(rnd.IntN(500))}
		j, found := slices.BinarySearchFunc(ref, x, func(a, b u128) int { return a.cmp(b) })
		if found {
			tr.delete(x)
			ref = slices.Delete(ref, j, j+1)
		} else {
			tr.insert(run{start: x, end: x})
			ref = slices.Insert(ref, j, x)
		}
		// floor, higher and min against the reference.
		q := u128{hi: uint64(rnd.IntN(2)), lo: uint64(rnd.IntN(520))}
		k, found := slices.BinarySearchFunc(ref, q, func(a, b u128) int { return a.cmp(b) })
		wantFloor, wantHigher := -1, k
		if found {
			wantFloor, wantHigher = k, k+1
		} else if k > 0 {
			wantFloor = k - 1
		}
		if got := tr.floor(q); (got == 0) != (wantFloor < 0) || got != 0 && tr.at(got).start != ref[wantFloor] {
			t.Fatalf("op %d: floor(%v) wrong", i, q)
		}
		if got := tr.higher(q); (got == 0) != (wantHigher >= len(ref)) || got != 0 && tr.at(got).start != ref[wantHigher] {
			t.Fatalf("op %d: higher(%v) wrong", i, q)
		}
		if got := tr.min(); (got == 0) != (len(ref) == 0) || got != 0 && tr.at(got).start != ref[0] {
			t.Fatalf("op %d: min wrong", i)
		}
		if i%500 == 0 {
			checkTree(t, &tr)
			var got []u128
			tr.each(func(r run) { got = append(got, r.start) })
			if d := cmp.Diff(ref, got, cmp.AllowUnexported(u128{}), cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("op %d: in-order starts (-want +got):\n%s", i, d)
			}
		}
	}
	if len(tr.nodes) > 1100 {
		t.Errorf("%d nodes allocated for at most 1000 runs: free nodes are not reused", len(tr.nodes))
	}
}

func TestHashCollisions(t *testing.T) {
	collideAll = true
	defer func() { collideAll = false }()
	t.Run("reference", TestAgainstReferenceModel)
	t.Run("sharing", TestSharing)
	t.Run("set config", TestSetConfig)
	t.Run("current", TestCurrent)
}

func (t *runTree) len() int { return t.n }

// each calls fn for every run in order.
func (t *runTree) each(fn func(run)) {
	var walk func(int32)
	walk = func(i int32) {
		if i == 0 {
			return
		}
		walk(t.nodes[i].left)
		fn(t.nodes[i].run)
		walk(t.nodes[i].right)
	}
	walk(t.root)
}
