package lab

import (
	"context"
	"sync"
	"sync/atomic"
)

// parallel runs f(i) for i in [from, to) on workers goroutines and
// returns the first error (or ctx's); the others stop at their next i.
func parallel(ctx context.Context, workers, from, to int, f func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	next.Store(int64(from))
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= to || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
