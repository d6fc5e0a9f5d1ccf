package allocator

// runTree is an ordered set of runs keyed by start: a treap whose nodes
// live in one slice and link by index. Compared with a general B-tree
// (google/btree was the first version) it runs several times faster for
// this job because it compares u128 inline, and because a node found by a
// search can be changed in place: moving a run's start or end between
// its neighbours keeps the in-order sequence sorted, so most takes and
// releases change one node and never restructure the tree. Nodes hold no
// pointers, so the garbage collector does not scan them.
//
// Expected cost O(log n) per operation for n runs, whatever the order of
// operations (priorities come from a fixed-seed generator, so the shape
// is reproducible). Memory: 48 bytes per run; freed nodes are reused, and
// the slice keeps room for the most runs ever held at once.
type runTree struct {
	nodes []rnode // nodes[0] is unused: index 0 means "none"
	root  int32
	free  int32 // freed nodes, linked through left
	n     int
	rnd   uint64
}

type rnode struct {
	run
	left, right int32
	prio        uint32
}

func (t *runTree) prio() uint32 {
	// splitmix64
	t.rnd += 0x9e3779b97f4a7c15
	z := t.rnd
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return uint32((z ^ z>>31) >> 32)
}

func (t *runTree) alloc(r run) int32 {
	var i int32
	if t.free != 0 {
		i = t.free
		t.free = t.nodes[i].left
	} else {
		if len(t.nodes) == 0 {
			t.nodes = append(t.nodes, rnode{})
		}
		t.nodes = append(t.nodes, rnode{})
		i = int32(len(t.nodes) - 1)
	}
	t.nodes[i] = rnode{run: r, prio: t.prio()}
	t.n++
	return i
}

func (t *runTree) dispose(i int32) {
	t.nodes[i] = rnode{left: t.free}
	t.free = i
	t.n--
}

// at returns node i for reading or changing in place. Changing its start
// or end must keep start <= end and the runs ordered and disjoint.
func (t *runTree) at(i int32) *rnode { return &t.nodes[i] }

// floor returns the node with the greatest start <= x, or 0.
func (t *runTree) floor(x u128) int32 {
	best := int32(0)
	for i := t.root; i != 0; {
		n := &t.nodes[i]
		if x.less(n.start) {
			i = n.left
		} else {
			best, i = i, n.right
		}
	}
	return best
}

// higher returns the node with the least start > x, or 0.
func (t *runTree) higher(x u128) int32 {
	best := int32(0)
	for i := t.root; i != 0; {
		n := &t.nodes[i]
		if x.less(n.start) {
			best, i = i, n.left
		} else {
			i = n.right
		}
	}
	return best
}

// min returns the node with the least start, or 0.
func (t *runTree) min() int32 {
	i := t.root
	if i == 0 {
		return 0
	}
	for t.nodes[i].left != 0 {
		i = t.nodes[i].left
	}
	return i
}

// insert adds r, whose start is not in the tree.
func (t *runTree) insert(r run) {
	t.root = t.insertAt(t.root, t.alloc(r))
}

func (t *runTree) insertAt(root, i int32) int32 {
	if root == 0 {
		return i
	}
	if t.nodes[i].start.less(t.nodes[root].start) {
		l := t.insertAt(t.nodes[root].left, i)
		t.nodes[root].left = l
		if t.nodes[l].prio > t.nodes[root].prio {
			// Rotate right: l becomes the subtree's root.
			t.nodes[root].left = t.nodes[l].right
			t.nodes[l].right = root
			return l
		}
		return root
	}
	r := t.insertAt(t.nodes[root].right, i)
	t.nodes[root].right = r
	if t.nodes[r].prio > t.nodes[root].prio {
		// Rotate left: r becomes the subtree's root.
		t.nodes[root].right = t.nodes[r].left
		t.nodes[r].left = root
		return r
	}
	return root
}

// delete removes the run starting at start, which is in the tree.
func (t *runTree) delete(start u128) {
	t.root = t.deleteAt(t.root, start)
}

func (t *runTree) deleteAt(root int32, start u128) int32 {
	n := &t.nodes[root] // no node is allocated while deleting
	switch c := start.cmp(n.start); {
	case c < 0:
		n.left = t.deleteAt(n.left, start)
	case c > 0:
		n.right = t.deleteAt(n.right, start)
	default:
		m := t.merge(n.left, n.right)
		t.dispose(root)
		return m
	}
	return root
}

// merge joins two treaps, every start of a below every start of b.
func (t *runTree) merge(a, b int32) int32 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	case t.nodes[a].prio > t.nodes[b].prio:
		t.nodes[a].right = t.merge(t.nodes[a].right, b)
		return a
	default:
		t.nodes[b].left = t.merge(a, t.nodes[b].left)
		return b
	}
}
