package main

import (
	"context"
	"runtime/debug"
	"time"
)

// node is a pointer-carrying object: the collector has to trace every one of them on every cycle.
type node struct {
	next    *node
	payload [3]int64
}

// stormRoot keeps the storm's live set reachable: ~400k nodes (~13 MiB) the GC must mark each cycle.
var stormRoot *node

// storm allocates short-lived garbage at a steady rate over a pointer-heavy live set with GOGC=10, so
// the heap goal sits barely above the live heap and the collector runs back to back.
func storm(ctx context.Context) {
	debug.SetGCPercent(10)
	for i := 0; i < 400_000; i++ {
		stormRoot = &node{next: stormRoot, payload: [3]int64{int64(i)}}
	}
	const chunk = 32 << 10
	const allocMBps = 150
	var sink []byte
	start, allocated := time.Now(), 0
	for i := 0; ctx.Err() == nil; i++ {
		sink = make([]byte, chunk)
		sink[i%chunk] = byte(i)
		allocated += chunk
		if allocated%(1<<20) == 0 { // pace to the target rate instead of burning every core
			ahead := time.Duration(float64(allocated)/float64(allocMBps<<20)*float64(time.Second)) - time.Since(start)
			if ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	_ = sink
}

// leak starts goroutines that wait on a channel nobody ever sends to (the classic forgotten result
// channel of a timed-out call), 20 per second, each holding an 8 KiB buffer.
func leak(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		result := make(chan []byte)
		go func() {
			buf := make([]byte, 8<<10)
			buf[0] = 1
			result <- buf // blocks forever: nobody receives
		}()
		// Some ordinary short-lived work so the process is not idle.
		tmp := make([]byte, 32<<10)
		tmp[0] = 1
	}
}
