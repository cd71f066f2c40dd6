// gcchurn allocates enough garbage to run a few dozen GC cycles, then forces three more, writing a few
// application lines to stderr between phases. Run with GODEBUG=gctrace=1: its stderr is a real mix of
// gctrace lines and application output.
package main

import (
	"fmt"
	"os"
	"runtime"
)

var sink [][]byte

func main() {
	fmt.Fprintln(os.Stderr, "gcchurn: starting")
	keep := make([][]byte, 0, 64)
	for i := 0; i < 4000; i++ {
		b := make([]byte, 64<<10)
		b[0] = byte(i)
		if i%100 == 0 {
			keep = append(keep, b)
		}
		sink = append(sink[:0], b)
	}
	fmt.Fprintf(os.Stderr, "gcchurn: kept %d buffers\n", len(keep))
	for i := 0; i < 3; i++ {
		runtime.GC()
		fmt.Fprintf(os.Stderr, "gcchurn: forced cycle %d\n", i)
	}
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	fmt.Fprintf(os.Stderr, "gcchurn: done numgc=%d\n", stats.NumGC)
}
