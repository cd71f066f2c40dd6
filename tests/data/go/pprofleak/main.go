// pprofleak: a service serving net/http/pprof with goroutine leaks at known functions and one known
// heavy allocator, for the profile intake tests. Stdlib only; builds with Go 1.19 and later.
//
//	leakParked  blocks on a channel the program still references: the count and the wait show it, the
//	            goroutineleak profile (Go 1.26+) cannot prove it.
//	leakOrphan  blocks sending on a channel nobody else can reach: the goroutineleak profile proves it.
//	allocHot    allocates far more than anything else (allocCold allocates a little).
//
// -grow adds parked goroutines at an interval, so snapshots differ over time.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"time"
)

var (
	parked   []chan int
	hotSink  [][]byte
	coldSink [][]byte
)

func leakParked(ch chan int) {
	<-ch
}

func leakOrphan(ch chan int) {
	ch <- 1
}

func startParked(n int) {
	for i := 0; i < n; i++ {
		ch := make(chan int)
		parked = append(parked, ch)
		go leakParked(ch)
	}
}

func startOrphans(n int) {
	for i := 0; i < n; i++ {
		go leakOrphan(make(chan int))
	}
}

func allocHot() {
	for {
		hotSink = append(hotSink, make([]byte, 256<<10))
		if len(hotSink) > 8 {
			hotSink = hotSink[:0]
		}
		time.Sleep(time.Millisecond)
	}
}

func allocCold() {
	for {
		coldSink = append(coldSink, make([]byte, 4<<10))
		if len(coldSink) > 8 {
			coldSink = coldSink[:0]
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	parkedN := flag.Int("parked", 40, "parked goroutines at start")
	orphans := flag.Int("orphans", 15, "orphaned senders at start")
	grow := flag.Duration("grow", 0, "add 5 parked goroutines at this interval (0: never)")
	flag.Parse()

	startParked(*parkedN)
	startOrphans(*orphans)
	go allocHot()
	go allocCold()
	if *grow > 0 {
		go func() {
			for range time.Tick(*grow) {
				startParked(5)
			}
		}()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
