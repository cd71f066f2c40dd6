// gcstorm: a bounded GC storm whose stderr is ingested end to end by the tests.
//
// It allocates a fixed amount (count-bounded, not time-bounded) while keeping a small live heap, writes an
// application line to stderr every few iterations (so runtime lines may be split by it), then runs one
// last runtime.GC() so that no cycle is still in flight, and prints runtime.MemStats.NumGC to stdout:
// the number of gctrace summary lines the runtime wrote to stderr.
// Run it with GODEBUG=gctrace=1 and a small GOGC. Stdlib only.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

type node struct {
	next *node
	val  [6]int64
}

var live *node

func main() {
	iterations := flag.Int("n", 200000, "allocation rounds")
	logEvery := flag.Int("logevery", 2000, "write an application line every N rounds (0: never)")
	flag.Parse()

	for i := 0; i < 20000; i++ {
		live = &node{next: live}
	}
	var keep [][]byte
	for i := 0; i < *iterations; i++ {
		keep = append(keep, make([]byte, 512<<uint(i%6)))
		if len(keep) > 32 {
			keep = keep[:0]
		}
		if *logEvery > 0 && i%*logEvery == 0 {
			fmt.Fprintf(os.Stderr, "app: round=%d goroutines=%d\n", i, runtime.NumGoroutine())
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Println(ms.NumGC)
	runtime.KeepAlive(live)
	runtime.KeepAlive(keep)
}
