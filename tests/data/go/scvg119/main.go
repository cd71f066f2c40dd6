// scvg119: allocates and frees a large heap in rounds (with FreeOSMemory), so that under
// GODEBUG=gctrace=1,scavtrace=1 Go 1.19 prints its KiB scavenger lines between gc lines and its own output.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

var sink [][]byte

func main() {
	for round := 0; round < 6; round++ {
		for i := 0; i < 2000; i++ {
			sink = append(sink, make([]byte, 64<<10))
		}
		sink = nil
		debug.FreeOSMemory()
		fmt.Fprintf(os.Stderr, "scvgdemo: round %d\n", round)
	}
}
